"""While recording, a connection that no recorded HTTP stack makes is an error naming it."""
from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import httpx2
import pytest

from conftest import OPENAI_KEY
from fakeopenai import FakeOpenAIServer
from pytest_llmcache.escapes import EscapedRequest, recording_guarded
from pytest_llmcache.recorder import LLMCassette

CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}'


def _urllib_chat(server: FakeOpenAIServer) -> int:
    request = urllib.request.Request(
        server.base_url + "/chat/completions", data=CHAT, headers={"Authorization": f"Bearer {OPENAI_KEY}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_a_request_outside_the_recorded_stacks_is_refused_naming_host_port_and_caller(server: FakeOpenAIServer) -> None:
    with recording_guarded(test_id="tests/test_x.py::test_y") as guard, pytest.raises(OSError, match="refused a connection"):
        _urllib_chat(server)  # urllib wraps it in a URLError
    assert len(guard.errors) == 1 and isinstance(guard.errors[0], EscapedRequest)
    message = str(guard.errors[0])
    assert f"127.0.0.1 port {server.port}" in message and "tests/test_x.py::test_y" in message
    assert f"{Path(__file__).resolve()}:" in message and "(_urllib_chat)" in message  # the code that opened it
    assert "httpx, httpx2, aiohttp" in message and "llm_allowed_hosts" in message
    assert server.hits == 0


def test_requests_names_the_library_that_opened_the_connection(server: FakeOpenAIServer) -> None:
    requests = pytest.importorskip("requests")
    with recording_guarded() as guard, pytest.raises(requests.ConnectionError):
        requests.post(server.base_url + "/chat/completions", data=CHAT, timeout=10)
    assert len(guard.errors) == 1 and "urllib3" in str(guard.errors[0])


def test_raw_sockets_udp_and_asyncio_are_refused_too(server: FakeOpenAIServer) -> None:
    import asyncio

    async def open_connection() -> None:
        await asyncio.open_connection("127.0.0.1", server.port)

    with recording_guarded() as guard:
        with socket.socket() as sock, pytest.raises(EscapedRequest):
            sock.connect(("127.0.0.1", server.port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(EscapedRequest):
            udp.sendto(b"x", ("127.0.0.1", server.port))
        with pytest.raises(EscapedRequest):
            asyncio.run(open_connection())
    assert len(guard.errors) == 3


def test_allowed_hosts_and_the_recorded_stacks_pass(tmp_path: Path, server: FakeOpenAIServer) -> None:
    with recording_guarded(["localhost"]) as guard:
        assert _urllib_chat(server) == 200  # 127.0.0.1 is what localhost resolves to
    assert not guard.errors
    with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="once") as recording, recording_guarded() as guard:
        response = httpx2.post(server.base_url + "/chat/completions", content=CHAT, headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert response.status_code == 200 and len(recording.recorded) == 1 and not guard.errors


def test_nothing_is_checked_once_the_guard_is_gone(server: FakeOpenAIServer) -> None:
    with recording_guarded():
        pass
    assert _urllib_chat(server) == 200


SWALLOWED = """
import urllib.error, urllib.request

def test_swallows_it(llm_cassette):
    try:
        urllib.request.urlopen(__import__("os").environ["OPENAI_BASE_URL"] + "/models", timeout=10)
    except OSError:
        pass

def test_allowed(llm_cassette):
    try:
        urllib.request.urlopen(__import__("os").environ["OPENAI_BASE_URL"] + "/models", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404  # the live server answered

def test_through_the_sdk(llm_cassette):
    import openai
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
"""


def test_an_escaped_request_fails_its_test_while_recording_even_when_swallowed(suite) -> None:
    suite.write(SWALLOWED)
    suite.pytester.makeconftest(
        suite.pytester.path.joinpath("conftest.py").read_text()
        + "\n@pytest.fixture\ndef llm_allowed_hosts(request):\n    return ('127.0.0.1',) if request.node.name == 'test_allowed' else ()\n"
    )
    suite.live()
    result = suite.run("--llm-record-mode=once")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed") == 2 and "error" not in outcomes, result.stdout.str()
    result.stdout.fnmatch_lines(["*test_swallows_it*", "pytest-llmcache refused a connection to 127.0.0.1 port * while recording test_x.py::test_swallows_it*"])
    assert "test_allowed" not in "\n".join(line for line in result.stdout.lines if line.startswith("FAILED"))
