"""pytest -n 4: every test's interactions in its own cassette, none lost or duplicated; one API
cache file shared by the workers loses no entry; the session summary adds up the workers."""
from __future__ import annotations

import sqlite3

import yaml

TESTS = 16  # 12 plain tests and 4 parametrized cases
SUITE = '''
import os
import openai, pytest
from tinytroupe.openai_utils import OpenAIClient

def library():
    return OpenAIClient(cache_api_calls=True, cache_file_name=os.environ["SHARED_CACHE"])

def exchange(name):
    sdk = openai.OpenAI(max_retries=0)
    for turn in range(3):  # three requests of its own
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"{name} turn {turn}"}])
    client = library()
    assert client.send_message([{"role": "user", "content": f"cached {name}"}])["content"] == f"echo: cached {name}"
    # the same request from every test and worker at once: one cache key, many writers
    assert client.send_message([{"role": "user", "content": "shared"}])["content"] == "echo: shared"
    client.reset()
''' + "".join(
    f'''
def test_{index:02d}(llm_cassette, request):
    exchange(request.node.name)
'''
    for index in range(12)
) + '''
@pytest.mark.parametrize("case", ["a", "b", "a b", "a/b"])
def test_param(llm_cassette, request, case):
    exchange(request.node.name)
'''


def contents(path) -> list[str]:
    document = yaml.safe_load(path.read_text())
    return [interaction["request"]["body"]["json"]["messages"][-1]["content"] for interaction in document["interactions"]]


def cache_entries(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [value for (value,) in db.execute("SELECT value FROM entries")]


def test_four_workers_record_and_replay_without_losing_or_mixing_anything(suite):
    suite.write(SUITE)
    suite.live()
    record_cache = suite.pytester.path / "record-cache.sqlite3"
    suite.monkeypatch.setenv("SHARED_CACHE", str(record_cache))
    recorded = suite.run("-n", "4", "--llm-record-mode=once", subprocess=True)
    recorded.assert_outcomes(passed=TESTS)
    output = recorded.stdout.str()
    assert "4 workers" in output

    cassettes = sorted(suite.cassettes.rglob("*.yaml"))
    assert len(cassettes) == TESTS  # one per test, none shared or lost
    names = set()
    for path in cassettes:
        asked = contents(path)
        name = asked[0].removesuffix(" turn 0")
        names.add(name)
        # its own three turns, then its own cached prompt and the shared one (if this worker was
        # first to ask it: the shared cache answers the others without a call)
        assert asked[:4] == [f"{name} turn 0", f"{name} turn 1", f"{name} turn 2", f"cached {name}"], path
        assert asked[4:] in ([], ["shared"]), path
    assert len(names) == TESTS
    calls = suite.server.hits
    shared_calls = calls - TESTS * 4
    assert 1 <= shared_calls <= 4  # at most once per worker: the cache is shared across processes
    assert len(cache_entries(record_cache)) == TESTS + 1  # every cached answer, each key once
    assert f"llmcache: 0 replayed, {calls} recorded, 0 missing in {TESTS} cassette(s)" in output

    suite.offline()
    replayed = suite.run("-n", "4", subprocess=True)  # the same shared cache: it answers the library's calls
    replayed.assert_outcomes(passed=TESTS)
    assert f"llmcache: {TESTS * 3} replayed, 0 recorded, 0 missing in {TESTS} cassette(s)" in replayed.stdout.str()
    assert len(cache_entries(record_cache)) == TESTS + 1
    assert suite.server.hits == calls
