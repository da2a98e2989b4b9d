"""``llmcache prune`` and the played record: only what tests that passed did not play goes, with a
``.bak``; cassettes of skipped, failed or erroring tests are left alone; records of several
sessions (CI shards) act together."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import chat as interaction
from test_cli import write

from pytest_llmcache import cassette as cassette_file
from pytest_llmcache import played

RECORD = Path(".pytest_cache") / played.DEFAULT_RELATIVE


def digests(path: Path) -> list[str]:
    return [entry.digest for entry in cassette_file.load_entries(path)]


def contents(path: Path) -> list[str]:
    return [item["request"]["body"]["json"]["messages"][0]["content"] for item in cassette_file.load(path)]


def record_of(root: Path, uses: dict[str, tuple[list[int], bool]], unused: set[str] | None = None) -> played.PlayedRecord:
    """A played record for `root` in which cassette name -> (indexes played, complete)."""
    record = played.PlayedRecord(root.resolve(), root.name, unused=unused)
    for name, (indexes, complete) in uses.items():
        all_digests = digests(root / name)
        record.cassettes[name] = played.CassetteUse(set(all_digests), {all_digests[index] for index in indexes}, {f"test {name}": complete})
    return record


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose last session left cassettes and a played record in the default place."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cassettes"
    write(root / "t" / "test_partly.yaml", interaction("a"), interaction("b"), interaction("c"))
    write(root / "t" / "test_all.yaml", interaction("d"))
    write(root / "t" / "test_none.yaml", interaction("e"))
    write(root / "t" / "test_failed.yaml", interaction("f"), interaction("g"))
    write(root / "t" / "test_skipped.yaml", interaction("h"))  # its test was collected but did not run
    write(root / "t" / "test_gone.yaml", interaction("i"))  # no collected test uses it
    write(root / "t" / "test_rerecorded.yaml", interaction("j"))
    record = record_of(
        root,
        {
            "t/test_partly.yaml": ([0, 2], True),
            "t/test_all.yaml": ([0], True),
            "t/test_none.yaml": ([], True),
            "t/test_failed.yaml": ([0], False),
            "t/test_rerecorded.yaml": ([0], True),
        },
        unused={"t/test_gone.yaml"},
    )
    write(root / "t" / "test_rerecorded.yaml", interaction("j"), interaction("k"))  # changed since
    played.write(tmp_path / RECORD, record)
    return root


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_dry_run_lists_the_changes_and_changes_nothing(cli, session: Path):
    before = snapshot(session)
    code, out, _ = cli("prune", session)
    assert code == 0
    assert "would remove 1 of 3 interactions from cassettes/t/test_partly.yaml (#1)" in out
    assert "would remove cassettes/t/test_none.yaml (1 interaction(s), none played)" in out
    assert "would remove cassettes/t/test_gone.yaml (1 interaction(s); no collected test uses it)" in out
    assert "skipped cassettes/t/test_failed.yaml: not every test using it ran and passed" in out
    assert "skipped cassettes/t/test_rerecorded.yaml: changed since the session" in out
    assert "test_all.yaml" not in out and "test_skipped.yaml" not in out
    assert "note: 1 cassette(s) were used by no test of the session(s) and are left alone" in out
    assert snapshot(session) == before


def test_yes_applies_keeps_a_bak_of_every_file_it_changes_or_deletes_and_is_idempotent(cli, session: Path):
    before = snapshot(session)
    code, out, _ = cli("prune", session, "--yes", "--json")
    report = json.loads(out)
    assert code == 0 and report["applied"]
    changed = sorted(Path(change["path"]).name for change in report["changes"])
    assert changed == ["test_gone.yaml", "test_none.yaml", "test_partly.yaml"]
    folder = session / "t"
    assert contents(folder / "test_partly.yaml") == ["a", "c"]
    for name in changed:  # the content before prune, byte for byte, as a regular file
        backup = folder / (name + ".bak")
        assert not backup.is_symlink() and backup.read_bytes() == before[folder / name]
    assert not (folder / "test_none.yaml").exists() and not (folder / "test_gone.yaml").exists()
    for name in ("test_all.yaml", "test_failed.yaml", "test_skipped.yaml", "test_rerecorded.yaml"):
        assert (folder / name).read_bytes() == before[folder / name]
    assert not list(session.rglob("*.tmp"))

    code, out, _ = cli("prune", session, "--yes")
    assert code == 0 and "nothing to prune" in out


def test_several_records_act_on_their_union(cli, tmp_path: Path):
    """Two CI shards: each used one half of a shared cassette; together they played all of it."""
    root = tmp_path / "cassettes"
    write(root / "shared.yaml", interaction("a"), interaction("b"), interaction("c"))
    write(root / "other.yaml", interaction("d"), interaction("e"))
    shard1 = record_of(root, {"shared.yaml": ([0], True), "other.yaml": ([0], True)}, unused=set())
    shard2 = record_of(root, {"shared.yaml": ([1], True), "other.yaml": ([], False)}, unused={"other.yaml"})
    played.write(tmp_path / "shard1.json", shard1)
    played.write(tmp_path / "shard2.json", shard2)
    code, out, _ = cli("prune", root, "--played", tmp_path / "shard1.json", tmp_path / "shard2.json", "--yes")
    assert code == 0, out
    assert contents(root / "shared.yaml") == ["a", "b"]  # c: played by neither
    assert contents(root / "other.yaml") == ["d", "e"]  # a test using it failed in shard 2; used, so not unused
    # one shard alone would have removed b
    write(root / "shared.yaml", interaction("a"), interaction("b"), interaction("c"))
    cli("prune", root, "--played", tmp_path / "shard1.json", "--yes")
    assert contents(root / "shared.yaml") == ["a"]


def test_a_missing_unusable_or_foreign_record_is_an_error_naming_it(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cassettes"
    write(root / "t.yaml", interaction())
    code, _, err = cli("prune", root, "--yes")
    assert code == 2 and "no played record found" in err and "--played" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = cli("prune", root, "--played", bad)
    assert code == 2 and "bad.json can't be used" in err
    bad.write_text(json.dumps({"version": 1, "cassettes": {"t.yaml": {"interactions": 1, "played": []}}}))  # the old format
    code, _, err = cli("prune", root, "--played", bad, "--yes")
    assert code == 2 and "not a played record of version 2" in err
    other = tmp_path / "other" / "recordings"
    other.mkdir(parents=True)
    played.write(tmp_path / "other.json", played.PlayedRecord(other, "other/recordings", unused={"t.yaml"}))
    code, _, err = cli("prune", root, "--played", tmp_path / "other.json", "--yes")
    assert code == 2 and "is about the cassette directory" in err
    assert (root / "t.yaml").exists()


def test_a_corrupt_cassette_is_left_alone(cli, tmp_path: Path, corrupt: Path):
    root = tmp_path / "cassettes"
    played.write(tmp_path / "record.json", played.PlayedRecord(root.resolve(), "cassettes", unused={"test_broken/test_half.yaml"}))
    before = corrupt.read_bytes()
    code, out, err = cli("prune", root, "--played", tmp_path / "record.json", "--yes")
    assert code == 2 and corrupt.read_bytes() == before
    assert "test_half.yaml: the file is truncated" in err and "nothing to prune" in out


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "cassettes" / "test_broken" / "test_half.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(cassette_file.dumps([interaction()])[:-40], encoding="utf-8")
    return path


# -- after real sessions -------------------------------------------------------------------------

OUTCOMES = '''
import openai, pytest

def ask(text):
    return openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

def test_passes(llm_cassette):
    assert ask("b").choices[0].message.content == "answer b"

@pytest.mark.skip(reason="not today")
def test_skipped(llm_cassette):
    ask("x")

def test_fails(llm_cassette):
    ask("x")
    assert False

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

def test_errors(llm_cassette, broken):
    ask("x")

@pytest.mark.llm(cassette="shared/both")
def test_shared_passes(llm_cassette):
    ask("x")

@pytest.mark.llm(cassette="shared/both")
@pytest.mark.skipif(True, reason="not here")
def test_shared_skipped(llm_cassette):
    ask("y")
'''


def test_after_a_session_with_skipped_failed_and_erroring_tests_only_what_passing_tests_did_not_play_goes(cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(pytester.path)
    pytester.makepyfile(test_q=OUTCOMES)
    cassettes = pytester.path / "cassettes"
    folder = cassettes / "test_q"
    write(folder / "test_passes.yaml", interaction("a", "answer a"), interaction("b", "answer b"))
    for name in ("test_skipped", "test_fails", "test_errors"):
        write(folder / f"{name}.yaml", interaction("x", "answer x"), interaction("unplayed"))
    write(cassettes / "shared" / "both.yaml", interaction("x", "answer x"), interaction("y", "answer y"))
    write(cassettes / "old" / "test_gone.yaml", interaction("z"))
    before = snapshot(cassettes)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=2, failed=1, errors=1)
    assert snapshot(cassettes) == before  # a replay-only session writes nothing there
    assert (pytester.path / RECORD).is_file()

    code, out, _ = cli("prune", cassettes, "--yes")
    assert code == 0, out
    assert contents(folder / "test_passes.yaml") == ["b"]
    assert (folder / "test_passes.yaml.bak").read_bytes() == before[folder / "test_passes.yaml"]
    for name in ("test_skipped", "test_fails", "test_errors"):
        assert (folder / f"{name}.yaml").read_bytes() == before[folder / f"{name}.yaml"], name
    assert (cassettes / "shared" / "both.yaml").read_bytes() == before[cassettes / "shared" / "both.yaml"]  # y: its skipped test's
    assert not (cassettes / "old" / "test_gone.yaml").exists() and (cassettes / "old" / "test_gone.yaml.bak").exists()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2, skipped=2, failed=1, errors=1)
    assert cli("prune", cassettes)[1].strip().endswith("\nnothing to prune")


SHARDED = '''
import openai, pytest

def ask(text):
    return openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

@pytest.mark.llm(cassette="shared")
def test_a(llm_cassette):
    ask("a")

@pytest.mark.llm(cassette="shared")
def test_b(llm_cassette):
    ask("b")
'''


def test_shards_write_their_own_records_and_prune_takes_their_union(cli, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(pytester.path)
    pytester.makepyfile(test_s=SHARDED)
    cassettes = pytester.path / "cassettes"
    write(cassettes / "shared.yaml", interaction("a", "A"), interaction("b", "B"), interaction("stale"))
    for shard in ("a", "b"):
        pytester.runpytest("-p", "no:cacheprovider", "-k", f"test_{shard}", f"--llm-played=shard-{shard}.json").assert_outcomes(passed=1)
    # Alone, each shard's record shows the other shard's test as not run: the shared cassette is left alone.
    code, out, _ = cli("prune", cassettes, "--played", "shard-a.json")
    assert "skipped cassettes/shared.yaml: not every test using it ran and passed" in out
    code, out, _ = cli("prune", cassettes, "--played", "shard-a.json", "shard-b.json", "--yes")
    assert code == 0 and "removed 1 of 3 interactions from cassettes/shared.yaml (#2)" in out
    assert contents(cassettes / "shared.yaml") == ["a", "b"]


FOREIGN = '''
import openai

def ask(text):
    return openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

def test_old_and_new(llm_cassette):
    assert ask("old").choices[0].message.content == "recorded long ago"
    ask("new")
'''


def test_a_foreign_cassette_written_anew_keeps_what_its_test_played(cli, suite):
    """A plain vcrpy cassette's interactions are written anew (scrubbed, in this format) when a
    test records into it: the record names them as written, so prune keeps the one it played."""
    import yaml
    from builders import vcrpy_interaction

    suite.write(FOREIGN)
    suite.monkeypatch.chdir(suite.pytester.path)
    old = vcrpy_interaction(
        "https://api.openai.com/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "old"}]},
        {"object": "chat.completion", "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant", "content": "recorded long ago"}, "finish_reason": "stop"}]},
    )
    old["request"]["body"] = old["request"]["body"].replace(", ", ",").replace(": ", ":")  # as the SDK sends it
    path = suite.cassettes / "test_x" / "test_old_and_new.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"version": 1, "interactions": [old]}))
    suite.live()
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=1)
    assert len(cassette_file.load(path)) == 2
    code, out, _ = cli("prune", suite.cassettes, "--yes")
    assert code == 0 and out.strip() == "nothing to prune", out
    suite.offline()
    suite.run().assert_outcomes(passed=1)
