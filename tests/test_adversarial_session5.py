"""Inputs aimed at this session's two changes: what a scrubber learns from the environment, read once
per environment (65a4f87, `scrubbing._environment_credentials`), and a cassette file read with one
os.read when it returns the size fstat gave (2e5b9a3, `cassette._read_bounded`).

Three inputs broke the promise that a live key in the environment never reaches a log record, a
warning or a cassette (older than this session, in the code the change rests on): a key set after
the test's scrubber was made, logged or warned about before any request, and an Azure endpoint
written with a trailing dot (``contoso.openai.azure.com.``), whose dotless form was not masked.
The other tests pin what held under attack."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from builders import interaction
from conftest import OPENAI_KEY, InnerSuite
from pytest_llmcache import cassette, scrubbing
from pytest_llmcache.errors import CassetteError
from pytest_llmcache.scrubbing import Scrubber

# -- a key set after the scrubber was made, shown before any request --------------------------------

LOGGED_INNER = r'''
import logging, os, warnings

def test_logged(llm_cassette, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-" + "logged-after-set".upper() + "-0123456789")
    logging.getLogger("inner").warning("using %s", os.environ["ANTHROPIC_API_KEY"])

def test_warned(llm_cassette, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIza" + "warned-after-set".upper() + "0123456789")
    warnings.warn("using " + os.environ["GEMINI_API_KEY"])
'''


def test_a_key_set_after_the_scrubber_was_made_never_reaches_a_log_record_or_a_warning(suite: InnerSuite) -> None:
    """The key is in the environment when the record is made and the warning shown: live logging,
    the log file and the warnings summary must mask it like any learned key, not only once a request
    or the failure report has made the scrubber read the environment again."""
    suite.write(LOGGED_INNER)
    log_file = suite.pytester.path / "run.log"
    result = suite.run("-o", "log_cli=true", "-o", "log_cli_level=WARNING", f"--log-file={log_file}", "-rA")
    result.assert_outcomes(passed=2, warnings=1)
    shown = result.stdout.str() + result.stderr.str() + log_file.read_text()
    assert "using <redacted>" in shown
    assert "LOGGED-AFTER-SET" not in shown and "WARNED-AFTER-SET" not in shown


def outputs_and_files(suite: InnerSuite) -> tuple[dict, str]:
    """What the inner tests saw live (not a stored file: removed), and every file the run left."""
    outputs = suite.read_outputs()
    suite.outputs.unlink()
    return outputs, suite.files_text()


# -- an Azure endpoint written as a fully qualified name (a trailing dot) -----------------------------

DOTTED_INNER = '''
import openai

def test_dotted(llm_cassette, out):
    answer = openai.OpenAI().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "deployed at Contoso-Dotted.openai.azure.com"}])
    out(answer.choices[0].message.content)
'''


@pytest.mark.parametrize("endpoint", ["https://contoso-dotted.openai.azure.com./", "contoso-dotted.openai.azure.com.:443"])
def test_an_endpoint_with_a_trailing_dot_keeps_its_host_out_of_the_cassette(suite: InnerSuite, endpoint: str) -> None:
    """``contoso-dotted.openai.azure.com.`` names the same resource as the dotless form: a prompt
    (and the answer echoing it) naming the resource must be stored with the placeholder host, and
    replay with the server stopped."""
    suite.write(DOTTED_INNER)
    suite.live()
    suite.monkeypatch.setenv("AZURE_INFERENCE_ENDPOINT", endpoint)  # watched; the OpenAI client ignores it
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    recorded, stored = outputs_and_files(suite)
    assert "contoso-dotted" not in stored.lower() and OPENAI_KEY not in stored
    assert "placeholder.openai.azure.com" in stored
    suite.offline()
    suite.run("--llm-record-mode=none").assert_outcomes(passed=1)
    assert recorded == {"test_x.py::test_dotted": "echo: deployed at Contoso-Dotted.openai.azure.com"}  # live
    assert suite.read_outputs() == {"test_x.py::test_dotted": "echo: deployed at placeholder.openai.azure.com"}


# -- what held: keys set in the middle of a recording, through a stand-in os.environ, not UTF-8 ------

LATER = "sk-proj-set-in-the-middle-0123456789"
STANDIN = "sk-ant-from-a-stand-in-mapping-0123456789"

MIDDLE_INNER = '''
import os
import openai

LATER = %r
STANDIN = %r

def ask(client, text):
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}]).choices[0].message.content

def test_set_between_requests(llm_cassette, out):
    client = openai.OpenAI()
    first = ask(client, "remember " + LATER)  # recorded before the key is in the environment
    os.environ["ANTHROPIC_API_KEY"] = LATER
    out([first, ask(client, "second")])

def test_set_after_the_last_request(llm_cassette, out):
    out(ask(openai.OpenAI(), "remember " + LATER))
    os.environ["ANTHROPIC_API_KEY"] = LATER

def test_set_with_monkeypatch_then_sent(llm_cassette, monkeypatch, out):
    monkeypatch.setenv("GEMINI_API_KEY", LATER[::-1])
    out(ask(openai.OpenAI(), "sent " + LATER[::-1]))

def test_stand_in_swapped_in_and_back(llm_cassette, monkeypatch, out):
    real, client = os.environ, openai.OpenAI()
    monkeypatch.setattr(os, "environ", {**real, "ANTHROPIC_API_KEY": STANDIN})
    first = ask(client, "one " + STANDIN)
    monkeypatch.setattr(os, "environ", real)
    out([first, ask(client, "two " + STANDIN)])
'''


def test_keys_set_mid_test_or_through_a_stand_in_environ_never_reach_a_cassette_and_replay(suite: InnerSuite) -> None:
    """A key put in the environment after a request that holds it was recorded (with more requests
    after it, or none), one set with monkeypatch after the scrubber was made, and one held by a
    plain dict standing in for os.environ and swapped back before the next request: none reaches
    the cassettes. Requests holding a key the environment held when they were sent replay offline
    (keyed with the key masked, as stored: before the fix, replay keyed them unmasked and missed)."""
    suite.write(MIDDLE_INNER % (LATER, STANDIN))
    suite.live()
    suite.monkeypatch.delenv("ANTHROPIC_API_KEY")
    suite.monkeypatch.delenv("GEMINI_API_KEY")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=4)
    recorded, stored = outputs_and_files(suite)
    assert LATER not in stored and LATER[::-1] not in stored and STANDIN not in stored and OPENAI_KEY not in stored
    assert recorded["test_x.py::test_set_after_the_last_request"] == f"echo: remember {LATER}"  # live, unmasked
    echoes = ["remember <redacted>", "one <redacted>", "two <redacted>", "sent <redacted>"]
    assert [stored.count(f"content: 'echo: {text}'") for text in echoes] == [2, 1, 1, 1]
    # (A request holding a key before the key is in the environment is stored masked, so it can't
    # be matched on replay, where it is not masked yet: those two tests are left out.)
    suite.offline()
    suite.run("--llm-record-mode=none", "-k", "stand_in or monkeypatch").assert_outcomes(passed=2, deselected=2)
    assert suite.read_outputs() == {
        "test_x.py::test_set_with_monkeypatch_then_sent": "echo: sent <redacted>",
        "test_x.py::test_stand_in_swapped_in_and_back": ["echo: one <redacted>", "echo: two <redacted>"],
    }


FAILING_INNER = r'''
import os

def test_not_utf8(llm_cassette):
    os.environb[b"ANTHROPIC_API_KEY"] = b"sk-ant-" + b"not-utf8".upper() + b"-\xff\xfe-0123456789"
    value = os.environ["ANTHROPIC_API_KEY"]
    assert value == "x", value

def test_padded(llm_cassette, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", " \t" + "AIzaPadded".upper() + "0123456789abcdef \n")
    value = os.environ["GEMINI_API_KEY"]
    assert value == "x", repr(value)

def test_stand_in(llm_cassette, monkeypatch):
    monkeypatch.setattr(os, "environ", {"OPENAI_API_KEY": "sk-" + "stand-in".upper() + "-0123456789"})
    value = os.environ["OPENAI_API_KEY"]
    assert value == "x", value
'''


def test_keys_not_utf8_padded_or_in_a_stand_in_environ_never_reach_the_failure_output(suite: InnerSuite) -> None:
    """Set after the scrubber was made, through os.environb (bytes that are not UTF-8), with
    whitespace around it, or in a dict standing in for os.environ: pytest's failure output (the
    message, the assertion's diff, -l's locals, the short summary) masks each."""
    suite.write(FAILING_INNER)
    result = suite.run("-l", "-vv", "-rA")
    result.assert_outcomes(failed=3)
    shown = result.stdout.str()
    assert shown.count("<redacted>") >= 9
    for secret in ("NOT-UTF8", "AIZAPADDED", "STAND-IN"):
        assert secret not in shown, secret


# -- what held: the cache of what an environment holds --------------------------------------------

def test_every_environment_is_learned_however_many_the_cache_has_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """More environments than `_environment_credentials` keeps (16), each seen twice in turn: a fresh
    scrubber, and one made before the change, learn the key each holds and nothing of the others."""
    for name in scrubbing._WATCHED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    keys = [f"sk-churned-environment-{index:04d}" for index in range(40)]
    old = Scrubber()
    for key in [*keys, *keys[::-1]]:
        monkeypatch.setenv("OPENAI_API_KEY", key)
        assert set(Scrubber().secrets) == {key}
        old.learn_environment()
        assert key in old.secrets
    assert set(old.secrets) == set(keys)


def test_environments_that_differ_only_in_an_endpoint_or_in_bytes_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two environments whose values read alike (the same text, or bytes that decode alike but for
    one byte that is not UTF-8) are different environments; an os.environ stand-in holding the same
    text as os.environ's table is learned from all the same."""
    for name in scrubbing._WATCHED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://first-resource.openai.azure.com")
    assert set(Scrubber().hosts) == {"first-resource.openai.azure.com"}
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://second-resource.openai.azure.com")
    assert set(Scrubber().hosts) == {"second-resource.openai.azure.com"}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-undone-after-the-test-0001")  # so that monkeypatch removes it again
    os.environb[b"OPENAI_API_KEY"] = b"sk-bytes-key-0123456789-\xff"
    assert set(Scrubber().secrets) == {"sk-bytes-key-0123456789-\udcff"}
    os.environb[b"OPENAI_API_KEY"] = b"sk-bytes-key-0123456789-\xfe"
    assert set(Scrubber().secrets) == {"sk-bytes-key-0123456789-\udcfe"}
    standing_in = dict(os.environ)
    monkeypatch.setattr(os, "environ", standing_in)
    scrubber = Scrubber()
    assert set(scrubber.secrets) == {"sk-bytes-key-0123456789-\udcfe"} and set(scrubber.hosts) == {"second-resource.openai.azure.com"}
    standing_in["OPENAI_API_KEY"] = "sk-changed-in-the-stand-in-0001"
    scrubber.learn_environment()
    assert "sk-changed-in-the-stand-in-0001" in scrubber.secrets


def test_nothing_holding_a_snapshot_shows_its_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-a-repr-0123456789")
    scrubber = Scrubber()
    snapshot = scrubbing._environment_snapshot(scrubbing._WATCHED_ENV_VARS)
    shown = " ".join([repr(snapshot), str(snapshot), f"{snapshot}", repr(scrubber), str(scrubber), repr(scrubber._environment), repr([snapshot])])
    assert "never-in-a-repr" not in shown
    assert f"<environment snapshot of {len(scrubbing._WATCHED_ENV_VARS)} variable(s)>" in shown


# -- what held: reading a cassette file --------------------------------------------------------------

def saved(path: Path, answer: str) -> str:
    cassette.save(path, [interaction({"q": "question"}, {"answer": answer})])
    return path.read_text(encoding="utf-8")


def test_a_cassette_renamed_over_while_read_is_read_as_it_was_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process saves (renames a new file over) the cassette between its open and its read:
    the open file is read whole, as it was, not a mix of the two."""
    path = tmp_path / "c.yaml"
    before = saved(path, "the first answer")
    after_path = tmp_path / "next.yaml"
    after = saved(after_path, "a second, much longer answer " * 20)
    real_read = os.read

    def renamed_first(descriptor: int, size: int) -> bytes:
        if after_path.exists():
            os.replace(after_path, path)
        return real_read(descriptor, size)

    monkeypatch.setattr(os, "read", renamed_first)
    assert cassette._read_text(path) == before
    monkeypatch.undo()
    assert cassette._read_text(path) == after


@pytest.mark.parametrize("seen_size", [0, 1, "half", "all-but-one"])
def test_a_file_larger_than_fstat_said_is_read_to_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seen_size: object) -> None:
    """A procfs-like file (st_size 0 whatever it holds), or one that grew between fstat and the read:
    its whole content is read, not the size fstat gave."""
    path = tmp_path / "c.yaml"
    text = saved(path, "an answer " * 2000)  # over 16 kB: more than one read after the first
    size = {"half": len(text) // 2, "all-but-one": len(text) - 1}.get(str(seen_size), seen_size)
    real_fstat = os.fstat

    class Seen:
        def __init__(self, status: os.stat_result) -> None:
            self.st_mode, self.st_size = status.st_mode, size

    monkeypatch.setattr(os, "fstat", lambda descriptor: Seen(real_fstat(descriptor)))
    assert cassette._read_text(path) == text


@pytest.mark.parametrize("piece", [1, 7, 64])
def test_a_file_that_shrank_before_its_read_is_read_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    """fstat saw more than the file holds when read (cut meanwhile), read in short pieces: what is
    there is read, and a cut cassette is refused with its name, never taken as whole."""
    path = tmp_path / "c.yaml"
    text = saved(path, "an answer")
    real_fstat, real_read = os.fstat, os.read

    def cut_then_fstat(descriptor: int) -> object:
        status = real_fstat(descriptor)
        os.truncate(path, len(text) // 2)
        return status

    monkeypatch.setattr(os, "fstat", cut_then_fstat)
    monkeypatch.setattr(os, "read", lambda descriptor, size: real_read(descriptor, min(size, piece)))
    assert cassette._read_text(path) == text[: len(text) // 2]
    with pytest.raises(CassetteError, match=r"c\.yaml"):
        cassette.load_entries(path)


def test_a_file_exactly_at_the_limit_is_read_and_one_byte_over_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    text = saved(path, "an answer")
    monkeypatch.setattr(cassette, "MAX_CASSETTE_BYTES", len(text))
    assert cassette._read_text(path) == text
    real_fstat = os.fstat

    def grown_after_fstat(descriptor: int) -> os.stat_result:
        status = real_fstat(descriptor)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("#")
        return status

    monkeypatch.setattr(os, "fstat", grown_after_fstat)
    with pytest.raises(CassetteError, match=rf"c\.yaml can't be used: it is over the {len(text):,}-byte limit"):
        cassette._read_text(path)


def test_a_symlinked_cassette_is_read_whole_through_its_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "c.yaml"
    target.parent.mkdir()
    text = saved(target, "an answer " * 500)
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    assert cassette._read_text(link) == text
    assert [entry.replay()[2] for entry in cassette.load_entries(link)] == [entry.replay()[2] for entry in cassette.load_entries(target)]
