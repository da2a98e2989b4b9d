"""Requests that are not LLM API calls (llm_ignore): never recorded, sent as is while recording,
refused in replay without failing whichever test is running; LLM endpoints are never covered."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import OPENAI_KEY
from fakeopenai import FakeOpenAIServer
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import MissingRecording
from pytest_llmcache.ignoring import DEFAULT_IGNORE, IgnorePolicy, IgnoreRule
from pytest_llmcache.recorder import LLMCassette

TRACES = "https://api.openai.com/v1/traces/ingest"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]}
DEFAULTS = IgnorePolicy.of(rule for rule, _ in DEFAULT_IGNORE)


@pytest.mark.parametrize(
    ("method", "url", "rule"),
    [
        ("POST", TRACES, "POST api.openai.com/v1/traces/ingest"),
        ("GET", "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json", "GET raw.githubusercontent.com/BerriAI/litellm/*"),
        ("POST", "https://api.smith.langchain.com/runs/batch", "*.smith.langchain.com"),
        ("POST", "https://us.i.posthog.com/batch/", "*.posthog.com"),
        ("POST", "https://logfire-us.pydantic.dev/v1/traces", "logfire-*.pydantic.dev"),
    ],
)
def test_the_defaults_cover_the_known_background_requests(method: str, url: str, rule: str) -> None:
    found = DEFAULTS.rule_for(method, url)
    assert found is not None and found.text == rule


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", TRACES),  # another method
        ("POST", "https://api.openai.com/v1/chat/completions"),
        ("POST", "https://raw.githubusercontent.com/BerriAI/litellm/main/x.json"),
        ("GET", "https://raw.githubusercontent.com/other/litellm/main/x.json"),
        ("POST", "https://posthog.com.evil.test/batch"),
    ],
)
def test_the_defaults_leave_everything_else_alone(method: str, url: str) -> None:
    assert DEFAULTS.rule_for(method, url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1/chat/completions",
        "https://api.openai.com/v1/responses",
        "https://api.anthropic.com/v1/messages",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
        "http://127.0.0.1:8080/v1/embeddings",
    ],
)
def test_no_rule_covers_an_llm_endpoint(url: str) -> None:
    assert IgnorePolicy.of(["*", "POST *", "api.openai.com", "*/v1/*"]).rule_for("POST", url) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "is not"), ("GET POST host", "is not"), ("G3T host/x", "is not"), ("host:8080/x", "without a port"), ("https:///x", "host")],
)
def test_a_malformed_rule_is_refused_naming_it(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        IgnoreRule.parse(text)
    assert repr(text) in str(caught.value)


@given(st.text(max_size=40))
def test_any_text_is_a_rule_or_a_value_error(text: str) -> None:
    try:
        rule = IgnoreRule.parse(text)
    except ValueError:
        return
    assert rule.host and rule.path and rule.method
    IgnorePolicy((rule,)).rule_for("GET", "https://example.test/a/b?c=d")


def test_ignored_requests_are_refused_in_replay_and_never_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"

    async def aiohttp_post() -> tuple[int, str, dict[str, object]]:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.post(TRACES, json={"data": []}) as response:
            return response.status, response.headers["x-should-retry"], await response.json()

    with LLMCassette.use(path=path, record_mode="none", ignore=DEFAULTS) as replaying:
        response = httpx2.post(TRACES, json={"data": []}, headers={"Authorization": f"Bearer {OPENAI_KEY}"})
        status, retry, document = asyncio.run(aiohttp_post())
    assert response.status_code == status == 403 and response.headers["x-should-retry"] == retry == "false"
    assert "llm_ignore rule 'POST api.openai.com/v1/traces/ingest'" in response.json()["error"]["message"]
    assert document == response.json() and OPENAI_KEY not in response.text
    assert replaying.ignored == [f"POST {TRACES}"] * 2 and not replaying.misses and not replaying.recorded
    replaying.save()
    assert not path.exists()


def test_an_ignored_request_refused_in_replay_keeps_its_urls_userinfo_out_of_the_answer_and_the_list(tmp_path: Path) -> None:
    """A proxy's ``user:password@`` in the URL of an ignored request: neither the refusal the
    client gets (its error message, which clients log and raise) nor `cassette.ignored` shows it."""
    password = "hunter2-proxy-password"
    with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none", ignore=DEFAULTS) as replaying:
        response = httpx2.post(TRACES.replace("https://", f"https://tracer:{password}@"), json={"data": []})
    assert response.status_code == 403 and "api.openai.com/v1/traces/ingest" in response.json()["error"]["message"]
    assert password not in response.text and "tracer" not in response.text
    assert replaying.ignored == [f"POST {TRACES}"]


def test_ignored_requests_are_sent_unrecorded_while_recording(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path, policy = tmp_path / "c.yaml", IgnorePolicy.of(["POST 127.0.0.1/v1/traces/*"])
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    with LLMCassette.use(path=path, record_mode="once", ignore=policy) as recording, httpx2.Client() as client:
        trace = client.post(server.url + "/v1/traces/ingest", json={"data": []}, headers=headers)
        chat = client.post(server.base_url + "/chat/completions", json=CHAT, headers=headers)
    recording.save()
    assert trace.status_code == 404 and chat.status_code == 200  # the trace reached the live server
    assert [request.path for request in server.requests] == ["/v1/traces/ingest", "/v1/chat/completions"]
    assert [interaction["request"]["uri"].split("/", 3)[-1] for interaction in cassette_file.load(path)] == ["v1/chat/completions"]


def test_an_llm_call_on_an_ignored_host_is_still_recorded_and_its_miss_is_loud(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path, policy = tmp_path / "c.yaml", IgnorePolicy.of(["127.0.0.1"])
    url, headers = server.base_url + "/chat/completions", {"Authorization": f"Bearer {OPENAI_KEY}"}
    with LLMCassette.use(path=path, record_mode="once", ignore=policy) as recording:
        httpx2.post(url, json=CHAT, headers=headers)
    recording.save()
    assert len(recording.recorded) == 1 and not recording.ignored
    server.stop()
    with LLMCassette.use(path=path, record_mode="none", ignore=policy), pytest.raises(MissingRecording):
        httpx2.post(url, json={**CHAT, "model": "gpt-4.1"}, headers=headers)


BACKGROUND = """
import threading, httpx2, pytest

started = threading.Event()
go = threading.Event()
result = {}

def upload():
    started.set()
    go.wait(30)
    result["status"] = httpx2.post("https://api.openai.com/v1/traces/ingest", json={"data": []}).status_code

def test_a_starts_an_exporter(llm_cassette):
    threading.Thread(target=upload, daemon=True).start()
    assert started.wait(30)

def test_b_is_running_when_the_upload_lands(llm_cassette, out):
    go.set()
    for _ in range(3000):
        if "status" in result:
            break
        threading.Event().wait(0.01)
    out(result)
    assert not llm_cassette.misses
"""


def test_a_background_upload_landing_in_another_test_fails_neither(suite) -> None:
    suite.write(BACKGROUND)
    result = suite.run()
    result.assert_outcomes(passed=2)
    assert suite.read_outputs() == {"test_x.py::test_b_is_running_when_the_upload_lands": {"status": 403}}


USER_RULES = """
import openai, pytest

@pytest.fixture
def llm_ignore(llm_ignore):
    return [*llm_ignore, "GET */v1/models"]

def test_models_listing_is_refused_not_missed(llm_cassette, out):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        openai.OpenAI().models.list()
    out(caught.value.message)
"""


def test_a_conftest_can_extend_the_rules_and_the_refusal_says_why(suite) -> None:
    suite.write(USER_RULES)
    suite.run().assert_outcomes(passed=1)
    message = next(iter(suite.read_outputs().values()))
    assert "llm_ignore rule 'GET */v1/models'" in message and "GET https://api.openai.com/v1/models" in message


def test_a_bad_ini_rule_is_a_usage_error_naming_the_key(suite) -> None:
    suite.pytester.makeini("[pytest]\nllm_ignore =\n    POST api.example.test:443/x\n")
    suite.write("def test_x(llm_cassette):\n    pass\n")
    result = suite.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini key llm_ignore: llm_ignore rule 'POST api.example.test:443/x' needs a host pattern without a port*"])


def test_ini_rules_add_to_the_defaults(suite) -> None:
    suite.pytester.makeini("[pytest]\nllm_ignore =\n    GET telemetry.example.test\n")
    suite.write("def test_x(llm_ignore, out):\n    out([getattr(rule, 'text', rule) for rule in llm_ignore])\n")
    suite.run().assert_outcomes(passed=1)
    assert next(iter(suite.read_outputs().values())) == [*(rule for rule, _ in DEFAULT_IGNORE), "GET telemetry.example.test"]


def test_litellm_is_told_to_use_its_own_price_map_for_the_session_only(suite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    suite.write("import os\n\ndef test_x(out):\n    out(os.environ.get('LITELLM_LOCAL_MODEL_COST_MAP'))\n")
    suite.run().assert_outcomes(passed=1)
    assert next(iter(suite.read_outputs().values())) == "True"
    assert "LITELLM_LOCAL_MODEL_COST_MAP" not in os.environ
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "False")  # the user's choice wins
    suite.run().assert_outcomes(passed=1)
    assert next(iter(suite.read_outputs().values())) == "False"
    assert json.dumps(os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP")) == '"False"'


OUTSIDE_CONFTEST = '''
import atexit, os
import httpx2

def _upload(what):
    # a framework's exporter: its own client, its own thread or atexit, no cassette active
    with httpx2.Client() as client:
        return client.post(os.environ["TELEMETRY_URL"], content=what.encode()).status_code

atexit.register(_upload, "at exit")
'''

OUTSIDE_TESTS = '''
import os
from conftest import _upload

def test_a_uses_a_cassette(llm_cassette):
    pass

def test_b_uploads_with_no_cassette_active():
    status = _upload("between tests")
    with open(os.environ["STATUS_FILE"], "a") as handle:
        handle.write(f"{status}\\n")
'''


@pytest.mark.parametrize("mode", ["none", "once"])
def test_ignored_requests_outside_any_cassette_follow_the_session_rules(suite, tmp_path: Path, mode: str) -> None:
    """Between tests and at exit no cassette is active; a replaying session still refuses what its
    rules ignore (nothing reaches the server), a recording one lets it through unrecorded."""
    suite.pytester.makeini("[pytest]\nllm_ignore = POST 127.0.0.1/telemetry\n")
    suite.pytester.makepyfile(conftest=OUTSIDE_CONFTEST, test_outside=OUTSIDE_TESTS)
    status_file = tmp_path / "status.txt"
    suite.monkeypatch.setenv("TELEMETRY_URL", f"{suite.server.url}/telemetry")
    suite.monkeypatch.setenv("STATUS_FILE", str(status_file))
    result = suite.run(f"--llm-record-mode={mode}", subprocess=True)
    result.assert_outcomes(passed=2)
    reached = [request.body for request in suite.server.requests if request.path == "/telemetry"]
    if mode == "none":
        assert status_file.read_text() == "403\n" and reached == []
    else:
        # the server's own answer (it knows no /telemetry), not the plugin's refusal
        assert status_file.read_text() == "404\n" and sorted(reached) == [b"at exit", b"between tests"]
    assert not list(suite.cassettes.rglob("*.yaml"))  # never recorded
