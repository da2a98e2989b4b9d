"""What a newcomer sees when a request has no recording: the plugin's message as the failure (no
openai / httpx2 / vcrpy frames), a short summary line naming the request, and one route to fix it
that --llm-strict agrees with."""
from __future__ import annotations

import re
import shlex

import pytest

SDK_TEST = '''
import os
import openai

def test_asks(llm_cassette):
    client = openai.OpenAI()  # the SDK's default: two retries
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": os.environ["QUESTION"]}])
    assert reply.choices[0].message.content
'''

SWALLOWING_TEST = '''
import os

def test_asks(llm_client):
    reply = llm_client.send_message([{"role": "user", "content": os.environ["QUESTION"]}], max_attempts=2)
    assert reply["content"]  # tinytroupe returned None: a TypeError here, not the real cause
'''

LIBRARY_FRAME = re.compile(r"(openai|httpx2?|httpcore2?|vcr)[/\\][\w/\\]*\.py:\d+")


def recorded_then_changed(suite, source: str) -> pytest.RunResult:
    suite.write(source)
    suite.live()
    suite.monkeypatch.setenv("QUESTION", "What is the capital of France?")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.offline()
    suite.monkeypatch.setenv("QUESTION", "What is the capital of Spain?")
    result = suite.run()
    result.assert_outcomes(failed=1)
    return result


def check_short_and_clean(result: pytest.RunResult) -> str:
    lines = result.outlines
    output = "\n".join(lines)
    assert len(lines) < 40, output
    assert not LIBRARY_FRAME.search(output), output
    assert "Traceback" not in output and "APIConnectionError" not in output and "TypeError" not in output, output
    assert "No recorded response for POST /v1/chat/completions  model='gpt-4o-mini'  last message: 'What is the capital of Spain?'" in output
    assert "The closest recorded request is interaction #0" in output and '+      "content": "What is the capital of Spain?",' in output
    assert "    pytest test_x.py::test_asks --llm-record-mode=rewrite" in output
    summary = next(line for line in lines if line.startswith("FAILED test_x.py::test_asks"))
    assert summary.startswith("FAILED test_x.py::test_asks - no recording: POST /v1/chat/completions"), summary
    return summary


@pytest.mark.parametrize("source", [SDK_TEST, SWALLOWING_TEST], ids=["sdk-raises", "tinytroupe-swallows"])
def test_a_missing_recording_is_the_plugins_message_alone(suite, source):
    check_short_and_clean(recorded_then_changed(suite, source))


@pytest.mark.parametrize("source", [SDK_TEST, SWALLOWING_TEST], ids=["sdk-raises", "tinytroupe-swallows"])
def test_on_ci_the_short_summary_holds_the_whole_request_on_one_line(suite, source):
    suite.monkeypatch.setenv("CI", "true")  # pytest then prints the whole crash message in the summary
    summary = check_short_and_clean(recorded_then_changed(suite, source))
    assert summary.endswith("last message: 'What is the capital of Spain?'"), summary


def test_the_advised_command_leaves_a_cassette_that_strict_mode_accepts(suite):
    result = recorded_then_changed(suite, SDK_TEST)
    command = next(line.strip() for line in result.outlines if line.strip().startswith("pytest test_x.py::test_asks --llm-record-mode"))
    suite.server.start()
    suite.live()
    suite.run(*shlex.split(command)[1:]).assert_outcomes(passed=1)
    suite.offline()
    suite.run("--llm-strict").assert_outcomes(passed=1)  # no stale interaction left behind


SHARED = '''
import os, openai, pytest

@pytest.mark.llm(cassette="shared/chat.yaml")
def test_a(llm_cassette):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": os.environ["QUESTION"]}])

@pytest.mark.llm(cassette="shared/chat.yaml")
def test_b(llm_cassette):
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "b"}])
'''


def test_a_shared_cassette_is_re_recorded_by_all_of_its_tests(suite):
    suite.write(SHARED)
    suite.live()
    suite.monkeypatch.setenv("QUESTION", "a")
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=2)
    suite.offline()
    suite.monkeypatch.setenv("QUESTION", "changed")
    result = suite.run()
    result.assert_outcomes(passed=1, failed=1)
    assert "    pytest test_x.py::test_a test_x.py::test_b --llm-record-mode=rewrite" in result.stdout.str()
    suite.server.start()  # following the advice: both tests, one session, fresh for that session
    suite.live()
    suite.run("test_x.py::test_a", "test_x.py::test_b", "--llm-record-mode=rewrite").assert_outcomes(passed=2)
    suite.offline()
    suite.run("--llm-strict").assert_outcomes(passed=2)  # both replay, nothing stale is left


FIXTURE_SENDS = '''
import openai, pytest

@pytest.fixture
def warmed_up(llm_cassette):
    openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "warm up"}])

def test_uses_it(warmed_up):
    pass
'''


def test_a_fixture_sending_a_request_with_no_recording_errors_with_the_message_alone(suite):
    suite.write(FIXTURE_SENDS)
    result = suite.run()
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert len(result.outlines) < 40 and not LIBRARY_FRAME.search(output), output
    assert "No recorded response for POST /v1/chat/completions  model='gpt-4o-mini'  last message: 'warm up'" in output
    assert "ERROR test_x.py::test_uses_it - no recording: POST /v1/chat/completions" in output
