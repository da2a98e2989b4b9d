"""Which transports a cassette patches, when the patches come off, and that entering a cassette
costs no import attempts."""
from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

import httpx2
import openai
import pytest

from fakeopenai import FakeOpenAIServer
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache import stacks
from pytest_llmcache.recorder import LLMCassette


class _ImportSpy(importlib.abc.MetaPathFinder):
    """Notes every import that reaches the finders (one already in sys.modules never does)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.append(name)
        return None


def test_entering_a_cassette_attempts_no_import(tmp_path: Path) -> None:
    """vcrpy's httpx patcher tried to import httpx, httpx_curl_cffi and pyreqwest for every
    cassette; a library that is not installed was searched for on sys.path each time."""
    for _ in range(2):  # the first entry may import the plugin's own lazy modules
        spy = _ImportSpy()
        sys.meta_path.insert(0, spy)
        try:
            with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none"):
                pass
        finally:
            sys.meta_path.remove(spy)
    assert spy.names == []


@pytest.fixture
def unheld() -> None:
    """No holder of the interception (an earlier in-process pytest session may keep it to its end)."""
    if stacks._holders:
        pytest.skip("the patch points are held by a pytest session of this process")


def test_httpx2_transports_are_patched_inside_and_restored_after(tmp_path: Path, unheld: None) -> None:
    originals = {name: getattr(httpx2, name).handle_request for name in ("HTTPTransport", "MockTransport")}
    with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none"):
        for name, original in originals.items():
            assert getattr(httpx2, name).handle_request is not original
    for name, original in originals.items():
        assert getattr(httpx2, name).handle_request is original


def test_requests_outside_a_cassette_pass_untouched_while_the_patches_are_held(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """A pytest session keeps the patch points from its first cassette on: with no cassette active,
    the dispatcher sends a request as the original transport would, and no cassette notes it."""
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"outside"}]}'
    original = stacks._ORIGINALS[next(point for point in stacks._ORIGINALS if point.module == "httpx2" and point.owner == "HTTPTransport")][1]
    stacks.hold()
    try:
        with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none") as earlier:
            pass
        assert httpx2.HTTPTransport.handle_request is not original and stacks.current() is None  # still patched
        with httpx2.Client() as client:
            response = client.post(f"{server.base_url}/chat/completions", content=body, headers={"authorization": "Bearer sk-test-0123456789"})
    finally:
        stacks.release()
    assert response.status_code == 200 and len(server.requests) == 1
    assert earlier.played == [] and earlier.misses == [] and earlier.recorded == []


def test_nested_cassettes_answer_innermost_first_and_unwind(tmp_path: Path, server: FakeOpenAIServer) -> None:
    outer_path, inner_path = tmp_path / "outer.yaml", tmp_path / "inner.yaml"
    client = openai.OpenAI(api_key="sk-test-0123456789", base_url=server.base_url, max_retries=0)
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "which cassette?"}]}
    for path in (outer_path, inner_path):
        with LLMCassette.use(path=path, record_mode="once") as recording:
            client.chat.completions.create(**ask)
        recording.save()
    server.stop()
    with LLMCassette.use(path=outer_path, record_mode="none") as outer:
        with LLMCassette.use(path=inner_path, record_mode="none") as inner:
            assert stacks.current() is inner
            client.chat.completions.create(**ask)
        assert stacks.current() is outer
        client.chat.completions.create(**ask)
    assert inner.played == [0] and outer.played == [0]


def test_a_legacy_httpx_client_records_and_replays(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """With httpx installed (the compat extra), requests sent through it are recorded and replayed too."""
    httpx = pytest.importorskip("httpx")
    path = tmp_path / "legacy.yaml"
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
    headers = {"content-type": "application/json", "authorization": "Bearer sk-test-0123456789"}
    with LLMCassette.use(path=path, record_mode="once") as recording, httpx.Client() as client:
        live = client.post(f"{server.base_url}/chat/completions", content=body, headers=headers)
    recording.save()
    assert live.status_code == 200 and len(recording.recorded) == 1
    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying, httpx.Client() as client:
        replayed = client.post(f"{server.base_url}/chat/completions", content=body, headers=headers)
    assert replaying.played == [0]
    assert replayed.content == live.content == cassette_file.response_body(cassette_file.load(path)[0])


def test_openai_sdk_replays_after_many_cassettes(tmp_path: Path, server: FakeOpenAIServer, unheld: None) -> None:
    """The patches come back off cleanly every time (nothing stacks up across cassettes)."""
    path = tmp_path / "sdk.yaml"
    client = openai.OpenAI(api_key="sk-test-0123456789", base_url=server.base_url, max_retries=0)
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    recording.save()
    server.stop()
    original = httpx2.HTTPTransport.handle_request
    for _ in range(20):
        with LLMCassette.use(path=path, record_mode="none") as replaying:
            replayed = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        assert replaying.played == [0]
        assert replayed.model_dump() == live.model_dump()
    assert httpx2.HTTPTransport.handle_request is original


def test_the_request_vcrpy_sees_is_the_one_its_own_stub_builds() -> None:
    """The plugin's faster conversion (headers read in one pass) gives vcrpy the same request."""
    from vcr.request import Request

    headers = [("X-Twice", "1"), ("x-twice", "2"), ("Content-Type", "application/json"), ("Authorization", "Bearer sk-x")]
    request = httpx2.Request("POST", "https://api.openai.test/v1/chat/completions?a=1", headers=headers, content=b"{}")
    # vcrpy's own conversion: its Request given the httpx Headers object
    ours, vcrpys = stacks._make_vcr_request(request, b"{}"), Request(request.method, str(request.url), b"{}", request.headers)
    assert (ours.method, ours.uri, ours.body) == (vcrpys.method, vcrpys.uri, vcrpys.body)
    assert ours.header_map == {name.lower(): value for name, value in vcrpys.headers.items()}  # what replay keys by
    assert list(ours.headers.items()) == list(vcrpys.headers.items())  # built when read
    assert ours.headers["x-twice"] == "1, 2"
    for name in ("scheme", "host", "port", "path", "query", "url"):
        assert getattr(ours, name) == getattr(vcrpys, name), name
    ours.uri = "http://other.test:8080/x?b=2"  # a changed URI is parsed again
    assert (ours.host, ours.port, ours.query) == ("other.test", 8080, [("b", "2")])
    ours.headers = {"X-New": "1"}  # replaced headers are what the request is keyed by from then on
    assert ours.header_map is None and dict(ours.headers.lower_items()) == {"x-new": "1"}
