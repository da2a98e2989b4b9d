"""Every HTTP stack the frameworks send through is recorded and replayed: httpx and httpx2 (sync
and async) and aiohttp, plain and streamed (SSE), from the loopback server, then offline."""
from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import OPENAI_KEY
from fakeopenai import FakeOpenAIServer, Reply
from pytest_llmcache import cassette as cassette_file
from pytest_llmcache.recorder import LLMCassette

httpx = pytest.importorskip("httpx")
httpx2 = pytest.importorskip("httpx2")
aiohttp = pytest.importorskip("aiohttp")

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Capital of France?"}]}
STREAM = {**CHAT, "stream": True}
HEADERS = {"Authorization": f"Bearer {OPENAI_KEY}", "Content-Type": "application/json"}

Send = Callable[[str, dict[str, Any]], tuple[int, bytes]]


def _httpx_sync(module: Any) -> Send:
    def send(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        with module.Client() as client, client.stream("POST", url, json=body, headers=HEADERS) as response:
            return response.status_code, b"".join(response.iter_bytes())

    return send


def _httpx_async(module: Any) -> Send:
    async def main(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        async with module.AsyncClient() as client, client.stream("POST", url, json=body, headers=HEADERS) as response:
            return response.status_code, b"".join([chunk async for chunk in response.aiter_bytes()])

    return lambda url, body: asyncio.run(main(url, body))


def _aiohttp_json(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async def main() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session, session.post(url, json=body, headers={"Authorization": HEADERS["Authorization"]}) as response:
            return response.status, b"".join([chunk async for chunk in response.content.iter_any()])

    return asyncio.run(main())


def _aiohttp_bytes(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async def main() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session, session.request("POST", url, data=json.dumps(body).encode(), headers=HEADERS) as response:
            lines = [line async for line in response.content]  # the way SSE readers consume it
            return response.status, b"".join(lines)

    return asyncio.run(main())


CLIENTS: dict[str, Send] = {
    "httpx": _httpx_sync(httpx),
    "httpx-async": _httpx_async(httpx),
    "httpx2": _httpx_sync(httpx2),
    "httpx2-async": _httpx_async(httpx2),
    "aiohttp-json": _aiohttp_json,
    "aiohttp-bytes": _aiohttp_bytes,
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_stack_records_then_replays_offline_byte_for_byte(client: str, tmp_path: Path, server: FakeOpenAIServer) -> None:
    send, path, url = CLIENTS[client], tmp_path / "c.yaml", server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = [send(url, CHAT), send(url, STREAM)]
    recording.save()
    assert server.hits == 2 and len(recording.recorded) == 2
    assert [status for status, _ in live] == [200, 200]
    assert b"echo: Capital of France?" in live[0][1] and live[1][1].rstrip().endswith(b"data: [DONE]")
    text = path.read_text()
    assert "sse: |" in text and OPENAI_KEY not in text and "127.0.0.1" not in text

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        replayed = [send(url, CHAT), send(url, STREAM)]
    assert replayed == live
    assert replaying.played == [0, 1] and server.hits == 2 and not replaying.misses


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_cassette_let_go_is_freed_without_the_garbage_collector(client: str, tmp_path: Path, server: FakeOpenAIServer) -> None:
    """Every test opens a cassette: one left in a reference cycle (the stubs built for it close over
    it) waits with everything it parsed for the collector, and makes its collections more frequent."""
    send, path, url = CLIENTS[client], tmp_path / "c.yaml", server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:
        send(url, CHAT)
    recording.save()
    server.stop()
    gc.collect()
    gc.disable()
    try:
        with LLMCassette.use(path=path, record_mode="none") as replaying:
            send(url, CHAT)
        assert replaying.played == [0]
        freed = weakref.ref(replaying)
        del replaying
        assert freed() is None, [type(referrer).__name__ for referrer in gc.get_referrers(freed())]
    finally:
        gc.enable()


def test_requests_in_flight_at_once_from_threads_and_tasks_each_get_their_own_recording(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """vcrpy's stubs are built once and ask the cassette each request was routed to (a context
    variable, per thread and task): requests sent at the same time from threads and from asyncio
    tasks each record, then replay, their own exchange."""
    url, path = server.base_url + "/chat/completions", tmp_path / "c.yaml"
    questions = [f"Question number {number}?" for number in range(8)]

    def asking(question: str) -> dict[str, Any]:
        return {**CHAT, "messages": [{"role": "user", "content": question}]}

    def send_all() -> list[tuple[int, bytes]]:
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda question: CLIENTS["httpx2"](url, asking(question)), questions[:4]))

        async def in_tasks() -> list[tuple[int, bytes]]:
            async with httpx2.AsyncClient() as client:
                responses = await asyncio.gather(*(client.post(url, json=asking(question), headers=HEADERS) for question in questions[4:]))
            return [(response.status_code, response.content) for response in responses]

        return threaded + asyncio.run(in_tasks())

    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = send_all()
    recording.save()
    assert [json.loads(body)["choices"][0]["message"]["content"] for _, body in live] == [f"echo: {question}" for question in questions]
    assert server.hits == 8 and len(recording.recorded) == 8

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert send_all() == live
    assert sorted(replaying.played) == list(range(8)) and not replaying.misses


def test_a_request_answered_after_its_cassette_was_saved_is_saved_then_not_lost(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """Requests still in flight when their test ends (threads, tasks not awaited): their answers
    come after the cassette's save, two at once, and each is written then, once; they were kept
    in memory only."""
    url, path = server.base_url + "/chat/completions", tmp_path / "c.yaml"
    server.script(Reply.delay(0.5), Reply.delay(0.5))
    with ThreadPoolExecutor(2) as pool:
        with LLMCassette.use(path=path, record_mode="once") as cassette:
            late = [pool.submit(CLIENTS["httpx2"], url, {**CHAT, "messages": [{"role": "user", "content": name}]}) for name in ("late", "later")]
            deadline = time.monotonic() + 10
            while len(server.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        cassette.save()  # the test's end: nothing answered yet, nothing written
        assert not path.exists()
        assert [future.result(timeout=10)[0] for future in late] == [200, 200]
    asked = [interaction["request"]["body"]["json"]["messages"][0]["content"] for interaction in cassette_file.load(path)]
    assert sorted(asked) == ["late", "later"]
    cassette.save()  # the owner saving again writes nothing twice
    assert len(cassette_file.load(path)) == 2 and not cassette.dirty


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "rewrite"])
def test_a_cassette_saved_twice_writes_each_recording_once(mode: str, tmp_path: Path, server: FakeOpenAIServer) -> None:
    """A test that saves its cassette itself, then records more: the fixture's save at its end
    adds only what came after (saving everything again wrote the first recordings twice)."""
    url, path = server.base_url + "/chat/completions", tmp_path / "c.yaml"
    with LLMCassette.use(path=path, record_mode=mode) as cassette:
        CLIENTS["httpx2"](url, {**CHAT, "messages": [{"role": "user", "content": "first"}]})
        cassette.save()
        CLIENTS["httpx2"](url, {**CHAT, "messages": [{"role": "user", "content": "second"}]})
    cassette.save()
    asked = [interaction["request"]["body"]["json"]["messages"][0]["content"] for interaction in cassette_file.load(path)]
    assert asked == ["first", "second"] and len(cassette.used_digests()) == 2


def test_a_request_in_flight_stays_with_the_cassette_it_was_routed_to(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """A slow request sent under one cassette, answered while a second one is active (another
    test's, a nested one): it is recorded into the cassette it was routed to, and the second
    cassette records only its own request."""
    url = server.base_url + "/chat/completions"
    server.script(Reply.delay(0.5))  # the first request is answered late
    with LLMCassette.use(path=tmp_path / "outer.yaml", record_mode="once") as outer, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(CLIENTS["httpx2"], url, {**CHAT, "messages": [{"role": "user", "content": "slow"}]})
        deadline = time.monotonic() + 10
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        with LLMCassette.use(path=tmp_path / "inner.yaml", record_mode="once") as inner:
            CLIENTS["httpx2"](url, {**CHAT, "messages": [{"role": "user", "content": "fast"}]})
            assert slow.result(timeout=10)[0] == 200  # answered while the inner cassette is active

    def asked(cassette: LLMCassette) -> list[str]:
        return [interaction["request"]["body"]["json"]["messages"][0]["content"] for interaction in cassette.recorded]

    assert asked(outer) == ["slow"] and asked(inner) == ["fast"]


def test_a_request_recorded_by_one_stack_replays_through_another(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """The stored form does not depend on the client: aiohttp's json= body is keyed like httpx's bytes."""
    path, url = tmp_path / "c.yaml", server.base_url + "/chat/completions"
    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = CLIENTS["httpx2"](url, CHAT)
    recording.save()
    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert CLIENTS["aiohttp-json"](url, CHAT) == live
    assert replaying.played == [0]


def test_an_aiohttp_request_with_no_recording_fails_with_the_missing_recording_message(tmp_path: Path, server: FakeOpenAIServer) -> None:
    from pytest_llmcache.errors import MissingRecording

    server.stop()
    with LLMCassette.use(path=tmp_path / "c.yaml", record_mode="none") as replaying, pytest.raises(MissingRecording, match="Capital of France"):
        CLIENTS["aiohttp-json"](server.base_url + "/chat/completions", CHAT)
    assert len(replaying.misses) == 1


def test_litellm_acompletion_through_its_aiohttp_transport_records_and_replays(tmp_path: Path, server: FakeOpenAIServer) -> None:
    """litellm hands the openai SDK an httpx AsyncClient over its own aiohttp transport: before
    aiohttp was patched, nothing was recorded and replay failed with NetworkBlocked."""
    litellm = pytest.importorskip("litellm")
    path = tmp_path / "c.yaml"
    messages = [{"role": "user", "content": "Capital of France?"}]

    async def ask(stream: bool) -> str:
        kwargs = {"model": "openai/gpt-4o-mini", "messages": messages, "api_base": server.base_url, "api_key": OPENAI_KEY}
        if not stream:
            response = await litellm.acompletion(**kwargs)
            return str(response.choices[0].message.content)
        chunks = await litellm.acompletion(**kwargs, stream=True)
        return "".join([chunk.choices[0].delta.content or "" async for chunk in chunks])

    async def both() -> list[str]:
        return [await ask(False), await ask(True)]

    with LLMCassette.use(path=path, record_mode="once") as recording:
        live = asyncio.run(both())
    recording.save()
    assert live == ["echo: Capital of France?"] * 2
    assert len(recording.recorded) == 2 and server.hits == 2
    stored = cassette_file.load(path)
    assert [interaction["request"]["uri"].rsplit("/", 2)[-2:] for interaction in stored] == [["chat", "completions"]] * 2

    server.stop()
    with LLMCassette.use(path=path, record_mode="none") as replaying:
        assert asyncio.run(both()) == live
    assert replaying.played == [0, 1] and not replaying.misses


_IMPORTED_AT = '''
import sys

import pytest

SEEN = []


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    SEEN.append(("collected", "vcr" in sys.modules))


def pytest_runtest_setup(item):
    SEEN.append((item.name, "vcr" in sys.modules))


def pytest_unconfigure(config):
    print("IMPORTED", SEEN, "vcr" in sys.modules, "aiohttp" in sys.modules)
'''


def test_a_session_without_cassettes_never_imports_vcrpy_one_with_them_has_it_before_its_first_test(pytester: pytest.Pytester) -> None:
    """vcrpy imports every HTTP stack it can patch (aiohttp, requests, botocore...): a few tenths
    of a second and thousands of objects in every pytest run of an environment where the plugin is
    installed. A session none of whose tests uses a cassette does without; one whose collected
    tests use them has the stacks in place from its first test on, cassette or not."""
    pytester.makeconftest(_IMPORTED_AT)
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    alone = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "test_plain.py")
    alone.assert_outcomes(passed=1)
    alone.stdout.fnmatch_lines(["IMPORTED [('collected', False), ('test_plain', False)] False False"])

    pytester.makepyfile(test_cassette="def test_cassette(llm_cassette):\n    assert llm_cassette.loaded == []\n")
    both = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-s", "test_plain.py", "test_cassette.py")
    both.assert_outcomes(passed=2)
    both.stdout.fnmatch_lines(["IMPORTED [('collected', True), ('test_plain', True), ('test_cassette', True)] True True"])
