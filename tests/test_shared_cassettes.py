"""A cassette shared by several tests (the marker's cassette=) loses no recording: `rewrite` is
fresh once per session, and saves merge with what is on disk under a lock, whether the other
saver is a test of the same session, an xdist worker or another pytest process."""
from __future__ import annotations

import subprocess
import sys

import yaml

SHARED = '''
import os, time
from pathlib import Path
import openai, pytest

def meet(name):
    """Wait until the other test has loaded the cassette too, so both save over the same file."""
    barrier = os.environ.get("LLM_BARRIER")
    if not barrier:
        return
    Path(barrier, name).touch()
    other = "b" if name == "a" else "a"
    for _ in range(600):
        if Path(barrier, other).exists():
            return
        time.sleep(0.05)

def ask(text):
    openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

@pytest.mark.llm(cassette="shared")
def test_a(llm_cassette):
    meet("a")
    ask("from a")

@pytest.mark.llm(cassette="shared")
def test_b(llm_cassette):
    meet("b")
    ask("from b")
'''


def asked(suite) -> list[str]:
    document = yaml.safe_load((suite.cassettes / "shared.yaml").read_text())
    return sorted(item["request"]["body"]["json"]["messages"][-1]["content"] for item in document["interactions"])


def replays(suite) -> None:
    suite.offline()
    suite.run("--llm-strict").assert_outcomes(passed=2)


def test_rewrite_keeps_every_test_of_the_session_and_drops_what_came_before(suite):
    suite.write(SHARED)
    suite.live()
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=2)
    suite.write(SHARED.replace('ask("from b")', 'ask("from b, changed")'))
    suite.run("--llm-record-mode=rewrite").assert_outcomes(passed=2)
    assert asked(suite) == ["from a", "from b, changed"]  # the old "from b" went, both of this session stayed
    suite.run("--llm-record-mode=rewrite").assert_outcomes(passed=2)
    assert asked(suite) == ["from a", "from b, changed"]  # a second session starts afresh again
    replays(suite)


def test_rewrite_under_xdist_is_fresh_once_for_the_whole_session(suite):
    suite.write(SHARED)
    suite.live()
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=2)
    barrier = suite.pytester.mkdir("barrier")
    suite.monkeypatch.setenv("LLM_BARRIER", str(barrier))
    suite.run("-n", "2", "--llm-record-mode=rewrite", subprocess=True).assert_outcomes(passed=2)
    assert asked(suite) == ["from a", "from b"]
    suite.monkeypatch.delenv("LLM_BARRIER")
    replays(suite)


def test_new_episodes_under_xdist_keeps_both_workers_recordings(suite):
    suite.write(SHARED)
    suite.live()
    barrier = suite.pytester.mkdir("barrier")
    suite.monkeypatch.setenv("LLM_BARRIER", str(barrier))
    suite.run("-n", "2", "--llm-record-mode=new_episodes", subprocess=True).assert_outcomes(passed=2)
    assert asked(suite) == ["from a", "from b"]
    suite.monkeypatch.delenv("LLM_BARRIER")
    replays(suite)


def test_two_pytest_processes_recording_one_cassette_keep_both(suite):
    suite.write(SHARED)
    suite.live()
    barrier = suite.pytester.mkdir("barrier")
    suite.monkeypatch.setenv("LLM_BARRIER", str(barrier))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--llm-record-mode=once"]
    processes = [subprocess.Popen([*command, "-k", f"test_{name}"], cwd=suite.pytester.path, stdout=subprocess.PIPE, text=True) for name in "ab"]
    for process in processes:
        output = process.communicate(timeout=300)[0]
        assert process.returncode == 0, output
    assert asked(suite) == ["from a", "from b"]
    suite.monkeypatch.delenv("LLM_BARRIER")
    replays(suite)


ALL_MODE = '''
import openai, pytest

def ask(text):
    return openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])

@pytest.mark.llm(cassette="shared")
def test_twice(llm_cassette):
    ask("same")
    ask("same")

@pytest.mark.llm(cassette="shared")
def test_once(llm_cassette):
    ask("same")
'''


def test_all_mode_replaces_only_recordings_made_before_the_session(suite):
    suite.write(ALL_MODE)
    suite.live()
    suite.run("--llm-record-mode=all").assert_outcomes(passed=2)
    assert asked(suite) == ["same"] * 3  # test_once's save kept test_twice's two recordings
    suite.run("--llm-record-mode=all").assert_outcomes(passed=2)
    assert asked(suite) == ["same"] * 3  # the previous session's three were replaced
    suite.offline()
    suite.run().assert_outcomes(passed=2)


def test_a_session_removes_the_records_of_sessions_older_than_two_days(tmp_path):
    import os

    from pytest_llmcache.recorder import RecordingSession

    folder = tmp_path / "sessions"
    folder.mkdir()
    old, recent = folder / "old.json", folder / "recent.json"
    for path in (old, recent):
        path.write_text("{}")
    os.utime(old, (0, 0))
    RecordingSession("now", folder).add(tmp_path / "c.yaml", ["d1"])
    assert sorted(path.name for path in folder.iterdir()) == ["now.json", "recent.json"]
    assert RecordingSession("now", folder).written(tmp_path / "c.yaml") == {"d1"}
