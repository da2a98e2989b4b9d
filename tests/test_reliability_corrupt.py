"""A corrupt, truncated or unreadable cassette or cache is never overwritten, emptied or taken for
empty: the test fails naming the file and the problem; a rewrite keeps the old file aside."""
from __future__ import annotations

import json
import sqlite3

import pytest

from builders import interaction
from pytest_llmcache import cassette
from tinytroupe.cache import ApiCache
from tinytroupe.errors import CacheError

GOOD = cassette.dumps(
    [
        interaction({"model": "m", "messages": [{"role": "user", "content": "old question"}]}, {"string": "old answer"})
    ]
)
BROKEN = {  # test name -> (file content, or None for a directory in its place; what the message says)
    "test_truncated": (GOOD[: len(GOOD) // 2], "the file is truncated"),
    "test_empty": ("", "the file is empty"),
    "test_not_yaml": ("interactions: [unclosed\n", "not valid YAML"),
    "test_binary": (b"\x89PNG\r\n\x1a\n\x00\xff", "not UTF-8 text"),
    "test_future_version": ("version: 7\ninteractions: []\n", "format version 7"),
    "test_no_interactions": ("just: a mapping\n", "no 'interactions' list"),
    "test_malformed_interaction": ("version: 1\ninteractions:\n- request: {method: POST}\n  response: {}\n", "interaction #0 is malformed"),
    "test_hand_edit_broken": (GOOD.replace("content: old question", "content: [unclosed"), "interaction #0 is not valid YAML"),
    "test_a_directory": (None, "can't be read"),
}
TESTS = "import openai\n" + "".join(
    f'''
def {name}(llm_cassette):
    openai.OpenAI().chat.completions.create(model="m", messages=[{{"role": "user", "content": "new question"}}])
'''
    for name in BROKEN
)


def plant(suite) -> dict[str, bytes | None]:
    folder = suite.cassettes / "test_x"
    folder.mkdir(parents=True, exist_ok=True)
    planted = {}
    for name, (content, _) in BROKEN.items():
        path = folder / f"{name}.yaml"
        if content is None:
            path.mkdir()
            planted[name] = None
        else:
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            path.write_bytes(data)
            planted[name] = data
    return planted


@pytest.mark.parametrize("mode", ["none", "once", "new_episodes", "all"])
def test_a_broken_cassette_fails_its_test_naming_the_file_and_is_left_exactly_as_it_was(suite, mode):
    suite.write(TESTS)
    planted = plant(suite)
    suite.live()
    result = suite.run(f"--llm-record-mode={mode}")
    result.assert_outcomes(errors=len(BROKEN))
    output = result.stdout.str()
    for name, (_, problem) in BROKEN.items():
        path = suite.cassettes / "test_x" / f"{name}.yaml"
        assert f"CassetteError: cassette {path} can't be used: " in output, name
        assert problem in output, name
        if planted[name] is None:
            assert path.is_dir()
        else:
            assert path.read_bytes() == planted[name], name  # not re-recorded, not emptied
        assert not path.with_name(path.name + ".bak").exists()
    assert "Fix or restore the file" in output and "or delete it and record again" in output
    assert "Traceback" not in output and "yaml.scanner" not in output and "KeyError" not in output
    assert suite.server.hits == 0  # nothing was recorded in place of the broken file


def test_rewrite_records_afresh_and_keeps_the_broken_file_aside(suite):
    suite.write(TESTS)
    planted = plant(suite)
    suite.live()
    result = suite.run("--llm-record-mode=rewrite", "-k", "not a_directory")
    result.assert_outcomes(passed=len(BROKEN) - 1)
    for name, data in planted.items():
        if data is None:
            continue
        path = suite.cassettes / "test_x" / f"{name}.yaml"
        assert path.with_name(path.name + ".bak").read_bytes() == data  # the old file, kept aside
        assert "new question" in path.read_text()


def test_a_cassette_whose_lines_were_shuffled_by_a_merge_is_not_replayed_as_something_else(suite):
    """A merge or an editor may keep the index comments but damage what follows: parsed, reported."""
    suite.write(TESTS.split("\ndef test_empty")[0])
    folder = suite.cassettes / "test_x"
    folder.mkdir(parents=True)
    text = GOOD.replace("old question", "new question").replace("  response:", "  respons:")
    (folder / "test_truncated.yaml").write_text(text)
    result = suite.run()
    result.assert_outcomes(errors=1)
    assert "interaction #0 is malformed: missing 'response'" in result.stdout.str()


# -- the API cache -------------------------------------------------------------------------------


def filled_cache(path, entries: int = 200):
    cache = ApiCache(path)
    for index in range(entries):
        cache.put(str(index), {"choices": [{"message": {"content": "x" * 300}}], "index": index})
    cache.close()
    return path.read_bytes()


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.9, -100, -1])
def test_a_truncated_cache_is_refused_whole_and_left_alone(tmp_path, cut):
    path = tmp_path / "cache.sqlite3"
    data = filled_cache(path)
    kept = data[: int(len(data) * cut) if cut > 0 else len(data) + cut]
    path.write_bytes(kept)
    with pytest.raises(CacheError, match="truncated") as error:
        ApiCache(path)
    assert str(path) in str(error.value) and "delete it to start a new cache" in str(error.value)
    assert path.read_bytes() == kept


@pytest.mark.parametrize("damage", ["garbage page", "directory", "foreign table"])
def test_a_damaged_cache_raises_cache_error_naming_the_file_through_the_client(tmp_path, monkeypatch, server, damage):
    from tinytroupe.openai_utils import OpenAIClient

    path = tmp_path / "cache.sqlite3"
    if damage == "directory":
        path.mkdir()
    else:
        data = bytearray(filled_cache(path))
        if damage == "garbage page":
            data[4096 * 2 : 4096 * 3] = b"\xde\xad" * 2048
            path.write_bytes(bytes(data))
        elif damage == "foreign table":
            with sqlite3.connect(path) as db:
                db.execute("UPDATE meta SET value = 'someone-else' WHERE name = 'format'")
    before = path.read_bytes() if path.is_file() else None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    client = OpenAIClient(cache_api_calls=True, cache_file_name=str(path))
    with pytest.raises(CacheError) as error:
        client.send_message([{"role": "user", "content": "q"}], max_attempts=1)
    assert str(path) in str(error.value) and ("delete it" in str(error.value) or "move it away" in str(error.value))
    if before is not None:
        assert path.read_bytes() == before
    assert server.hits == 0  # refused before any call, not after writing into the damaged file


def test_an_entry_that_is_not_json_is_reported_with_its_key(tmp_path):
    path = tmp_path / "cache.sqlite3"
    filled_cache(path, 3)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET value = 'not json' WHERE key = '1'")
    cache = ApiCache(path)
    assert cache.get("0")["index"] == 0
    with pytest.raises(CacheError, match=r"cache\.sqlite3: entry 1 is not valid JSON"):
        cache.get("1")


def test_a_cache_shared_with_a_live_writer_is_not_mistaken_for_truncated(tmp_path):
    path = tmp_path / "cache.sqlite3"
    writer = ApiCache(path)
    for index in range(100):
        writer.put(str(index), {"index": index, "text": "y" * 500})
    reader = ApiCache(path)  # WAL pending: the size check defers to SQLite's recovery
    assert len(reader) == 100 and reader.get("99") == {"index": 99, "text": "y" * 500}
    reader.close()
    writer.close()
    assert json.loads(json.dumps(ApiCache(path).get("0"))) == {"index": 0, "text": "y" * 500}


@pytest.mark.parametrize("command", ["verify", "list", "stats"])
def test_the_llmcache_command_exits_non_zero_naming_a_broken_cassette(tmp_path, capsys, command):
    from pytest_llmcache.cli import main

    folder = tmp_path / "cassettes"
    folder.mkdir()
    (folder / "cut.yaml").write_text(GOOD[: len(GOOD) // 2])
    (folder / "good.yaml").write_text(GOOD)
    assert main([command, str(folder)]) != 0
    captured = capsys.readouterr()
    assert "cut.yaml" in captured.out + captured.err and "truncated" in captured.out + captured.err
    assert (folder / "cut.yaml").read_text() == GOOD[: len(GOOD) // 2]
