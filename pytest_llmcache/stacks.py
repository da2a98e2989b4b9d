"""The HTTP stacks a cassette records and replays, and the mark on their live sends.

vcrpy's stubs ask a cassette about each request (`can_play_response_for` -> `play_response`, or the
real send -> `append`). This module puts them in place, for every stack the supported frameworks
send through:

- httpx and httpx2, sync and async: their HTTP transports (and vcrpy's other httpx patch points:
  WSGI, ASGI and mock transports, curl_cffi and pyreqwest transports when installed);
- aiohttp (`ClientSession._request`): litellm's async transport, the openai SDK's aiohttp client,
  any code using aiohttp directly.

Two things are added around vcrpy's stubs:

- The real send they call when recording runs inside `live_send`, a context mark: the escape guard
  (`pytest_llmcache.escapes`) lets connections made inside it through and refuses every other
  connection while recording, so a request no stack here recorded is an error, never silence.
- A request the ignore policy covers (`pytest_llmcache.ignoring`) never reaches the stub: sent
  unrecorded while recording, answered with a refusal while replaying.

Nothing is imported here when a cassette starts: the stacks are the modules vcrpy imported (the
originals are taken when this module is imported, before any cassette patches them).
"""
from __future__ import annotations

import contextvars
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import vcr.patch  # noqa: F401 - imports the stacks that are installed

from pytest_llmcache.ignoring import refusal

if TYPE_CHECKING:
    from pytest_llmcache.recorder import LLMCassette

__all__ = ["STACKS", "body_bytes", "live_send", "patches", "sending_live"]

_LIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcache_live_send", default=False)


@contextmanager
def live_send() -> Iterator[None]:
    """Marks the current thread or task as inside a patched stack's real send."""
    token = _LIVE.set(True)
    try:
        yield
    finally:
        _LIVE.reset(token)


def sending_live() -> bool:
    """Whether the caller runs inside a patched stack's real send (tasks it starts inherit it)."""
    return _LIVE.get()


def body_bytes(body: Any) -> bytes:
    """A request body as vcrpy's stubs hand it over, as bytes to key and store: httpx gives bytes;
    aiohttp gives what the caller passed (``json=`` a document, ``data=`` bytes, text or chunks).
    The stub cannot tell ``data=`` from ``json=``, so a dict is keyed by its JSON either way; a body
    of another kind (a FormData, a file) by its type only."""
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, list) and all(isinstance(chunk, (bytes, bytearray)) for chunk in body):
        return b"".join(body)  # a streamed upload, read by the stub
    try:
        return json.dumps(body).encode()  # aiohttp's own json= serialiser
    except (TypeError, ValueError):
        return f"<{type(body).__name__} body>".encode()


@dataclass(frozen=True)
class _PatchPoint:
    """One method vcrpy's stubs replace."""

    module: str  # where the class lives
    owner: str  # the class
    method: str
    kind: str  # "sync" / "async": an httpx-style transport; "aiohttp": ClientSession._request
    httpx: str = ""  # the httpx module whose Response / ByteStream the stub builds


def _httpx_points(module: str) -> tuple[_PatchPoint, ...]:
    return tuple(
        _PatchPoint(module, owner, method, kind, module)
        for owner, method, kind in (
            ("HTTPTransport", "handle_request", "sync"),
            ("AsyncHTTPTransport", "handle_async_request", "async"),
            ("WSGITransport", "handle_request", "sync"),
            ("ASGITransport", "handle_async_request", "async"),
            ("MockTransport", "handle_request", "sync"),
            ("MockTransport", "handle_async_request", "async"),
        )
    )


_POINTS: tuple[_PatchPoint, ...] = (
    *_httpx_points("httpx"),
    *_httpx_points("httpx2"),
    _PatchPoint("httpx_curl_cffi", "CurlTransport", "handle_request", "sync", "httpx"),
    _PatchPoint("httpx_curl_cffi", "AsyncCurlTransport", "handle_async_request", "async", "httpx"),
    _PatchPoint("pyreqwest.compatibility.httpx", "SyncHttpxTransport", "handle_request", "sync", "httpx"),
    _PatchPoint("pyreqwest.compatibility.httpx", "HttpxTransport", "handle_async_request", "async", "httpx"),
    _PatchPoint("aiohttp.client", "ClientSession", "_request", "aiohttp"),
)


def _originals() -> dict[_PatchPoint, tuple[type, Callable[..., Any]]]:
    found = {}
    for point in _POINTS:
        module = sys.modules.get(point.module)
        owner = getattr(module, point.owner, None)
        if owner is not None and (point.httpx == "" or point.httpx in sys.modules):
            found[point] = (owner, getattr(owner, point.method))
    return found


_ORIGINALS = _originals()
# The stacks recorded in this process, as error messages name them.
STACKS: tuple[str, ...] = tuple(dict.fromkeys(point.module.split(".")[0] for point in _ORIGINALS))


def patches(cassette: LLMCassette) -> list[tuple[type, str, Callable[..., Any]]]:
    """(class, method, replacement) for every stack installed: vcrpy's custom_patches format."""
    build = {"sync": _sync_transport, "async": _async_transport, "aiohttp": _aiohttp_request}
    return [(owner, point.method, build[point.kind](cassette, original, point)) for point, (owner, original) in _ORIGINALS.items()]


def _sync_transport(cassette: LLMCassette, original: Callable[..., Any], point: _PatchPoint) -> Callable[..., Any]:
    from vcr.stubs.httpx_stubs import vcr_handle_request

    httpx = sys.modules[point.httpx]

    @functools.wraps(original)
    def send_live(transport: Any, request: Any) -> Any:
        with live_send():
            return original(transport, request)

    stub = vcr_handle_request(cassette, send_live, httpx)

    @functools.wraps(original)
    def handle_request(transport: Any, request: Any) -> Any:
        rule = cassette.ignore.rule_for(request.method, str(request.url))
        if rule is None:
            return stub(transport, request)
        cassette.ignored.append(f"{request.method} {request.url.copy_with(query=None)}")
        if cassette.write_protected:
            status, headers, body = refusal(request.method, str(request.url), rule)
            return _httpx_response(httpx, status, headers, body)
        return send_live(transport, request)

    return handle_request


def _httpx_response(httpx: Any, status: int, headers: dict[str, list[str]], body: bytes) -> Any:
    return httpx.Response(status, headers=[(name, value) for name, values in headers.items() for value in values], stream=httpx.ByteStream(body))


def _async_transport(cassette: LLMCassette, original: Callable[..., Any], point: _PatchPoint) -> Callable[..., Any]:
    from vcr.stubs.httpx_stubs import vcr_handle_async_request

    httpx = sys.modules[point.httpx]

    @functools.wraps(original)
    async def send_live(transport: Any, request: Any) -> Any:
        with live_send():
            return await original(transport, request)

    stub = vcr_handle_async_request(cassette, send_live, httpx)

    @functools.wraps(original)
    async def handle_async_request(transport: Any, request: Any) -> Any:
        rule = cassette.ignore.rule_for(request.method, str(request.url))
        if rule is None:
            return await stub(transport, request)
        cassette.ignored.append(f"{request.method} {request.url.copy_with(query=None)}")
        if cassette.write_protected:
            status, headers, body = refusal(request.method, str(request.url), rule)
            return _httpx_response(httpx, status, headers, body)
        return await send_live(transport, request)

    return handle_async_request


def _aiohttp_request(cassette: LLMCassette, original: Callable[..., Any], point: _PatchPoint) -> Callable[..., Any]:
    from vcr.request import Request
    from vcr.stubs.aiohttp_stubs import build_response, vcr_request

    @functools.wraps(original)
    async def send_live(session: Any, method: str, url: Any, **kwargs: Any) -> Any:
        with live_send():
            return await original(session, method, url, **kwargs)

    stub = vcr_request(cassette, send_live)

    @functools.wraps(original)
    async def request(session: Any, method: str, url: Any, **kwargs: Any) -> Any:
        rule = cassette.ignore.rule_for(method, str(url))
        if rule is None:
            return await stub(session, method, url, **kwargs)
        cassette.ignored.append(f"{method.upper()} {str(url).partition('?')[0]}")
        if cassette.write_protected:
            status, headers, body = refusal(method, str(url), rule)
            response = {"status": {"code": status, "message": "Forbidden"}, "headers": headers, "body": {"string": body}}
            return build_response(Request(method, str(url), None, {}), response, [])
        return await send_live(session, method, url, **kwargs)

    return request
