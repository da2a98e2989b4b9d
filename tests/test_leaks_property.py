"""A live key placed anywhere a client can put it never reaches a cassette, an API cache file, a
log record or an error message, and the recorded exchange still replays with another key."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakeopenai import FakeOpenAIServer, Reply
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.errors import MissingRecording
from pytest_llmcache.matching import request_key, stored_request_key
from pytest_llmcache.plugin import PLACEHOLDER_ENV
from pytest_llmcache.recorder import LLMCassette
from pytest_llmcache.scrubbing import Scrubber
from tinytroupe.cache import ApiCache

PLACES = ("bearer", "api-key header", "key-like query", "plain query", "json body", "message", "organization", "project",
          "cookie", "custom header", "azure host")
ECHOES = ("body", "header", "set-cookie", "azure host")
# Real keys: letters, digits, '-', '_' (OpenAI), hex (Azure), base64-ish ('+', '/', '=') for tokens.
keys = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["sk-", "sk-proj-", "", "eyJ"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/=", min_size=16, max_size=60),
).filter(lambda key: key.strip("+/=-_") == key and len(key) >= 16)
resources = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20).map(lambda name: f"{name}.openai.azure.com")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def every_log_record() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in ("vcr", "httpx", "httpx2", "openai", "tinytroupe")]
    levels = [root.level, *(logger.level for logger in loggers)]
    root.addHandler(handler)
    for logger in [root, *loggers]:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in zip([root, *loggers], levels, strict=True):
            logger.setLevel(level)


def client(server: FakeOpenAIServer, api_type: str, key: str, host: str, places: set[str]) -> openai.OpenAI:
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    if "api-key header" in places:
        headers["api-key"] = key
    if "cookie" in places:
        headers["Cookie"] = f"theme=dark; session={key}"
    if "custom header" in places:
        headers["X-Client-Token"] = key
    if "key-like query" in places:
        query["subscription-key"] = key
    if "plain query" in places:
        query["caller"] = key
    common = {
        "api_key": key if "bearer" in places or api_type == "azure" else "sk-other-credential-0000",
        "organization": key if "organization" in places else None,
        "project": key if "project" in places else None,
        "default_headers": headers,
        "default_query": query,
        "max_retries": 0,
    }
    if api_type == "azure":
        return openai.AzureOpenAI(azure_endpoint=server.azure_endpoint, api_version="2024-10-21", **common)
    return openai.OpenAI(base_url=server.base_url, **common)


def ask(sdk: openai.OpenAI, key: str, host: str, places: set[str]) -> str:
    body = {"metadata": {"owner": key, "endpoint": f"https://{host}/"}} if "json body" in places else None
    content = f"my key is {key} at {host}" if "message" in places else "hello"
    response = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=[{"role": "user", "content": content}], extra_body=body)
    return response.http_response.text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    key=keys,
    host=resources,
    places=st.sets(st.sampled_from(PLACES), min_size=1),
    echoes=st.sets(st.sampled_from(ECHOES)),
    api_type=st.sampled_from(["openai", "azure"]),
)
def test_a_live_key_anywhere_is_never_written_logged_or_shown_and_still_replays(server, tmp_path_factory, key, host, places, echoes, api_type):
    folder = tmp_path_factory.mktemp("leak")
    path = folder / "cassette.yaml"
    live_env = {"OPENAI_API_KEY": key, "AZURE_OPENAI_KEY": key, "AZURE_OPENAI_ENDPOINT": f"https://{host}"}
    echoed = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "note": f"key {key} host {host}" if "body" in echoes else "",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}
    reply_headers = {"x-echo": key} if "header" in echoes else {}
    if "set-cookie" in echoes:
        reply_headers["set-cookie"] = f"session={key}; Path=/; HttpOnly"
    if "azure host" in echoes:
        reply_headers["operation-location"] = f"https://{host}/openai/operations/1"

    # Record, with every log record captured.
    with mock.patch.dict(os.environ, live_env), every_log_record() as logs:
        server.script(Reply.json(200, echoed, reply_headers) if echoes else Reply())
        with LLMCassette.use(path=path, record_mode="once", test_id="t") as recording:
            recorded_text = ask(client(server, api_type, key, host, places), key, host, places)
        recording.save()
        cache = ApiCache(folder / "cache.sqlite3")
        cache.put("k", json.loads(recorded_text))
        cache.close()
        # A new request while only replaying: its miss message must not show the key either.
        with LLMCassette.use(path=path, record_mode="once", test_id="t") as replaying, pytest.raises((openai.APIConnectionError, MissingRecording)) as error:
            ask(client(server, api_type, key, host, places | {"message"}), key + "x", host, places | {"message"})
        miss = error.value if isinstance(error.value, MissingRecording) else error.value.__cause__
        assert isinstance(miss, MissingRecording) and replaying.misses == [miss]

    written = "\n".join(file.read_bytes().decode("utf-8", "replace") for file in folder.iterdir())
    for secret in (key, host):
        assert secret not in written
        assert not [line for line in logs.lines if secret in line]
        assert secret not in str(miss) and secret not in miss.request_summary and secret not in str(error.value)

    # Replay offline-style: the placeholder credentials in the same places; same answer, masked.
    with mock.patch.dict(os.environ, PLACEHOLDER_ENV):
        placeholder = PLACEHOLDER_ENV["OPENAI_API_KEY"] if api_type == "openai" else PLACEHOLDER_ENV["AZURE_OPENAI_KEY"]
        hits = server.hits
        with LLMCassette.use(path=path, record_mode="none", test_id="t") as replay:
            replayed = ask(client(server, api_type, placeholder, "placeholder.openai.azure.com", places), placeholder,
                           "placeholder.openai.azure.com", places)
        assert server.hits == hits and replay.played == [0]
    assert replayed == Scrubber(secrets={key: "the key"}, hosts={host: "the host"}).mask_text(recorded_text)


@settings(max_examples=300, deadline=None)
@given(key=keys, other=keys, host=resources, places=st.sets(st.sampled_from(PLACES), min_size=1))
def test_masking_is_symmetric_so_keys_match_across_credentials(key, other, host, places):
    """Unit level, many inputs: the stored request and a request sent with other credentials get the same key."""

    def request(credential: str, resource: str) -> tuple[str, dict[str, str], bytes]:
        query = "&".join(f"{name}={credential}" for name, place in (("api_key", "key-like query"), ("caller", "plain query")) if place in places)
        uri = f"https://{resource}/openai/deployments/d/chat/completions?api-version=2024-10-21" + ("&" + query if query else "")
        headers = {"authorization": f"Bearer {credential}", "content-type": "application/json"}
        document = {"messages": [{"role": "user", "content": f"{credential} {resource}" if "message" in places else "hi"}],
                    "metadata": {"owner": credential} if "json body" in places else {}}
        return uri, headers, json.dumps(document).encode()

    live = Scrubber()
    uri, headers, body = request(key, host)
    stored = live.request("POST", uri, headers, body)
    text = cassette_file.dumps([{"request": stored, "response": live.response({"code": 200}, {}, body)}])
    assert key not in text and host not in text
    assert request_key("POST", *live.masked_request(uri, headers, body)) == stored_request_key(stored)
    replay_uri, replay_headers, replay_body = request(other, "placeholder.openai.azure.com")
    assert request_key("POST", *Scrubber().masked_request(replay_uri, replay_headers, replay_body)) == stored_request_key(stored)


def test_the_api_cache_masks_environment_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-cache-0123456789")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://contoso-prod.openai.azure.com/")
    cache = ApiCache(tmp_path / "c.sqlite3")
    cache.put("k", {"echo": 'sk-live-cache-0123456789 at "contoso-prod.openai.azure.com"'})
    assert cache.get("k") == {"echo": '<redacted> at "placeholder.openai.azure.com"'}
    cache.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert b"sk-live-cache" not in raw and b"contoso-prod" not in raw


def test_masking_only_touches_learned_values():
    scrubber = Scrubber(secrets={"sk-abcdefgh": "test"})
    assert scrubber.mask_text("max_tokens=5 sk-abcdefgh sk-abcdefg") == "max_tokens=5 <redacted> sk-abcdefg"
    scrubber.remember(["short"], "too short to be a key")
    assert scrubber.mask_text("short") == "short"
    stored = scrubber.response({"code": 200}, {"x-ratelimit-remaining-tokens": ["99"], "content-length": ["14"]}, b'{"a":"sk-abcdefgh"}')
    assert stored["headers"] == {"x-ratelimit-remaining-tokens": ["99"], "content-length": [str(len(b'{"a":"<redacted>"}'))]}


def test_log_masking_is_undone_after_the_cassette(tmp_path, caplog):
    factory = logging.getLogRecordFactory()
    with mock.patch.dict(os.environ, {"OPENAI_API_KEY": "sk-log-secret-0123456789"}):
        with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none"):
            logging.getLogger("tinytroupe").error("failed with %s", "sk-log-secret-0123456789")
        logging.getLogger("tinytroupe").error("after: %s", "sk-log-secret-0123456789")
    assert logging.getLogRecordFactory() is factory
    assert [record.getMessage() for record in caplog.records] == ["failed with <redacted>", "after: sk-log-secret-0123456789"]


def test_written_files_hold_no_key_when_the_real_suite_records(suite):
    """End to end through the plugin and the client library: keys in the env, an Azure resource
    host, the API cache on; nothing of them in any file the session leaves."""
    suite.write(
        '''
import pytest

@pytest.mark.llm(api_types=["openai", "azure"], cache=True)
def test_cached(llm_client):
    assert llm_client.send_message([{"role": "user", "content": "hello"}], user="end-user-1")["content"] == "echo: hello"
'''
    )
    suite.live()
    suite.monkeypatch.setenv("OPENAI_ORG_ID", "org-live-organisation-42")
    suite.monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_live_project_42")
    suite.run("--llm-record-mode=once", "--basetemp", str(suite.pytester.path / "tmp")).assert_outcomes(passed=2)
    files = [path for path in suite.pytester.path.rglob("*") if path.is_file() and path.suffix != ".py"]
    assert any(path.name.startswith("llm-api-cache.sqlite3") for path in files)
    raw = b"".join(path.read_bytes() for path in files)
    from conftest import AZURE_KEY, OPENAI_KEY

    for secret in (OPENAI_KEY, AZURE_KEY, "org-live-organisation-42", "proj_live_project_42"):
        assert secret.encode() not in raw
    suite.offline()
    suite.run().assert_outcomes(passed=2)


def test_log_masking_is_undone_whatever_order_cassettes_are_left_in(tmp_path, caplog):
    """Two cassettes in use, left in the order they were entered (as two threads' tests may): each
    masks while in use, both mask an exception's text, and the factory in place before is back
    after (a chain of factories left the first cassette's scrubber masking for good)."""
    factory = logging.getLogRecordFactory()
    first_key, second_key = "sk-first-cassette-0123456789", "sk-second-cassette-0123456789"
    first = LLMCassette.use(path=tmp_path / "a.yaml", record_mode="none", scrubber=Scrubber(secrets={first_key: "test"}))
    second = LLMCassette.use(path=tmp_path / "b.yaml", record_mode="none", scrubber=Scrubber(secrets={second_key: "test"}))
    log = logging.getLogger("tinytroupe")
    first.__enter__()
    second.__enter__()
    try:
        raise ValueError(f"{first_key} {second_key}")
    except ValueError:
        log.exception("both %s %s", first_key, second_key)
    first.__exit__(None, None, None)
    log.error("second only %s %s", first_key, second_key)
    second.__exit__(None, None, None)
    log.error("none %s %s", first_key, second_key)
    assert logging.getLogRecordFactory() is factory
    assert [record.getMessage() for record in caplog.records] == [
        "both <redacted> <redacted>",
        f"second only {first_key} <redacted>",
        f"none {first_key} {second_key}",
    ]
    assert first_key not in caplog.records[0].exc_text and second_key not in caplog.records[0].exc_text
