"""Each record mode, and the message of a request without a recording."""
from __future__ import annotations

import re

import yaml

from fakeopenai import Reply

ASKS = '''
import os
import openai

def test_asks(llm_cassette, out):
    client = openai.OpenAI()
    answers = []
    for question in os.environ["QUESTIONS"].split(","):
        response = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        answers.append(response.choices[0].message.content)
    out(answers)
'''
CASSETTE = "test_x/test_asks.yaml"


def asked(suite, *questions: str) -> None:
    suite.monkeypatch.setenv("QUESTIONS", ",".join(questions))


def recorded_questions(suite) -> list[str]:
    document = yaml.safe_load((suite.cassettes / CASSETTE).read_text())
    return [interaction["request"]["body"]["json"]["messages"][-1]["content"] for interaction in document["interactions"]]


def test_once_records_a_new_cassette_then_only_replays(suite):
    suite.write(ASKS)
    suite.live()
    asked(suite, "a", "b", "a")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    assert suite.server.hits == 3 and recorded_questions(suite) == ["a", "b", "a"]
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    assert suite.server.hits == 3  # replayed, though the server is up
    asked(suite, "a", "c")
    result = suite.run("--llm-record-mode=once")
    result.assert_outcomes(failed=1)
    assert "pytest test_x.py::test_asks --llm-record-mode=rewrite" in result.stdout.str()
    assert suite.server.hits == 3 and recorded_questions(suite) == ["a", "b", "a"]


def test_identical_requests_get_their_recordings_in_recorded_order(suite):
    suite.write(ASKS)
    suite.live()
    answer = {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "{}"}}]}
    suite.server.script(*(Reply.json(200, {**answer, "choices": [{**answer["choices"][0], "message": {"role": "assistant", "content": text}}]})
                          for text in ("first", "second", "third")))
    asked(suite, "a", "a", "a")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    recorded = suite.read_outputs()
    assert recorded == {"test_x.py::test_asks": ["first", "second", "third"]}
    suite.offline()
    suite.run().assert_outcomes(passed=1)
    assert suite.read_outputs() == recorded
    asked(suite, "a", "a", "a", "a")
    result = suite.run()
    result.assert_outcomes(failed=1)
    assert "It was recorded 3 time(s) and all of them were played" in result.stdout.str()


def test_new_episodes_replays_what_it_has_and_records_the_rest(suite):
    suite.write(ASKS)
    suite.live()
    asked(suite, "a")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    asked(suite, "a", "c", "c")
    suite.run("--llm-record-mode=new_episodes").assert_outcomes(passed=1)
    assert [request.json()["messages"][0]["content"] for request in suite.server.requests] == ["a", "c", "c"]
    assert recorded_questions(suite) == ["a", "c", "c"]
    assert (suite.cassettes / (CASSETTE + ".bak")).exists()  # the previous version, kept aside


def test_all_rerecords_and_keeps_what_was_not_rerecorded_rewrite_starts_afresh(suite):
    suite.write(ASKS)
    suite.live()
    asked(suite, "a", "b")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    asked(suite, "b")
    suite.run("--llm-record-mode=all").assert_outcomes(passed=1)
    assert suite.server.hits == 3 and recorded_questions(suite) == ["a", "b"]
    suite.run("--llm-record-mode=rewrite").assert_outcomes(passed=1)
    assert suite.server.hits == 4 and recorded_questions(suite) == ["b"]


def test_marker_record_mode_and_cassette_name_win(suite):
    suite.write(ASKS.replace("def test_asks", "import pytest\n@pytest.mark.llm(record_mode='once', cassette='shared/asks')\ndef test_asks"))
    suite.live()
    asked(suite, "a")
    suite.run("--llm-record-mode=none").assert_outcomes(passed=1)
    assert (suite.cassettes / "shared" / "asks.yaml").exists()


def test_ini_keys_set_the_mode_and_directory(suite):
    suite.write(ASKS)
    suite.pytester.makeini("[pytest]\nllm_record_mode = once\nllm_cassette_dir = recordings\n")
    suite.live()
    asked(suite, "a")
    suite.run().assert_outcomes(passed=1)
    assert (suite.pytester.path / "recordings" / CASSETTE).exists()
    result = suite.run("--llm-record-mode=bogus")
    assert "invalid choice: 'bogus'" in result.stderr.str()


def test_missing_recording_fails_with_the_request_closest_recording_diff_and_command(suite):
    suite.write(ASKS)
    suite.live()
    asked(suite, "What is the capital of France?")
    suite.run("--llm-record-mode=once").assert_outcomes(passed=1)
    suite.offline()
    asked(suite, "What is the capital of Spain?")
    result = suite.run()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert ("No recorded response for POST /v1/chat/completions  model='gpt-4o-mini'  last message: 'What is the capital of Spain?'"
            "  in cassette cassettes/test_x/test_asks.yaml (record mode 'none')") in output
    assert "The closest recorded request is interaction #0" in output
    assert re.search(r'-\s+"content": "What is the capital of France\?"', output)
    assert re.search(r'\+\s+"content": "What is the capital of Spain\?"', output)
    assert "To record it, set OPENAI_API_KEY to a real endpoint/key and run:" in output
    assert "pytest test_x.py::test_asks --llm-record-mode=rewrite" in output


SWALLOWED = '''
import pytest
from tinytroupe import openai_utils

@pytest.mark.llm(api_type="azure")
def test_swallowed(llm_client, llm_cassette):
    assert llm_client.send_message([{"role": "user", "content": "never recorded"}], max_attempts=3) is None
'''


def test_missing_recording_swallowed_by_the_client_still_fails_the_test_without_retries(suite):
    suite.write(SWALLOWED, name="test_y")
    result = suite.run()
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "cassettes/test_y/test_swallowed.yaml" in output and "The cassette file does not exist yet." in output
    assert "POST /openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21" in output
    assert "set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_KEY" in output
    assert "pytest test_y.py::test_swallowed --llm-record-mode=once" in output
    assert "1 missing" in output  # not retried
    assert suite.server.hits == 0 and not suite.cassettes.joinpath("test_y").exists()


def test_other_connections_are_refused_in_mode_none(suite):
    suite.write(f'''
import socket, pytest
from pytest_llmcache.network import NetworkBlocked

def test_connect(llm_cassette):
    with pytest.raises(NetworkBlocked):  # caught here, and still the test fails
        socket.create_connection(("127.0.0.1", {suite.server.port}), timeout=2)
''')
    result = suite.run()
    result.assert_outcomes(failed=1)
    assert f"blocked a connection to 127.0.0.1:{suite.server.port}" in result.stdout.str()
    assert suite.server.hits == 0
