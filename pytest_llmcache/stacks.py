"""The HTTP stacks a cassette records and replays, put in place once and kept while cassettes are used.

vcrpy's stubs ask a cassette about each request (`can_play_response_for` -> `play_response`, or the
real send -> `append`). This module puts them in place, for every stack the supported frameworks
send through:

- httpx and httpx2, sync and async: their HTTP transports (and vcrpy's other httpx patch points:
  WSGI, ASGI and mock transports, curl_cffi and pyreqwest transports when installed);
- aiohttp (`ClientSession._request`): litellm's async transport, the openai SDK's aiohttp client,
  any code using aiohttp directly;
- and the openai SDK's retry sleeps (`openai._base_client`'s ``time`` and ``anyio``), which go to
  the cassette (noted, and skipped when replaying).

Each patch point is replaced once, by a dispatcher, and stays replaced while anything holds the
interception (`holding`): a cassette context for its duration, a pytest session from its first
cassette on. The dispatcher sends a request to its vcrpy stub (one per patch point, built with the
dispatcher), which asks the cassette `_route` chose for the request (`_RoutedCassette`), or, with
no cassette active, to the original method. Patching once
instead of per cassette is what makes a cassette cheap to enter (a test replaying one request pays
little more than the request). The active cassettes are process-wide, as vcrpy's patches were, so
a framework's background thread is answered by the running test's cassette.

Two things are added around vcrpy's stubs:

- The real send they call when recording runs inside `escapes.live_send`, a context mark: the escape
  guard (`pytest_llmcache.escapes`) lets connections made inside it through and refuses every other
  connection while recording, so a request no stack here recorded is an error, never silence.
- A request the ignore policy covers (`pytest_llmcache.ignoring`) never reaches the stub: sent
  unrecorded while recording, answered with a refusal while replaying. With no cassette active
  (between tests, at exit: a framework's trace upload from its own thread) the `Outside` policy a
  pytest session sets decides the same way, for the transports that reach the network (a mock,
  WSGI or ASGI transport answers in memory: a test mocking an ignored host gets its mock's answer).

This module, and vcrpy with it, is imported when a session's collected tests are known to use
cassettes (or by its first cassette), never by the plugin itself: vcrpy imports every stack it
supports (aiohttp, requests, botocore...), which a pytest run without cassettes need not pay for.
The stacks are the modules vcrpy imported; the originals are taken when this module is imported
(a patch a test module made at its import is then the original the dispatchers fall back to).
"""
from __future__ import annotations

import contextvars
import functools
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlparse

import vcr.patch  # noqa: F401 - imports the stacks that are installed
from vcr.request import HeadersDict, Request
from vcr.stubs import httpx_stubs

from pytest_llmcache.escapes import live_send
from pytest_llmcache.ignoring import IgnorePolicy, refusal
from pytest_llmcache.process_hooks import replace_attribute
from pytest_llmcache.scrubbing import without_userinfo

if TYPE_CHECKING:
    from pytest_llmcache.recorder import LLMCassette

__all__ = ["STACKS", "Outside", "SentRequest", "activate", "body_bytes", "current", "deactivate", "hold", "release", "set_outside"]


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
    network: bool = True  # False: answered in memory (a WSGI / ASGI app, a mock), never sent


def _httpx_points(module: str) -> tuple[_PatchPoint, ...]:
    return tuple(
        _PatchPoint(module, owner, method, kind, module, network)
        for owner, method, kind, network in (
            ("HTTPTransport", "handle_request", "sync", True),
            ("AsyncHTTPTransport", "handle_async_request", "async", True),
            ("WSGITransport", "handle_request", "sync", False),
            ("ASGITransport", "handle_async_request", "async", False),
            ("MockTransport", "handle_request", "sync", False),
            ("MockTransport", "handle_async_request", "async", False),
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


@dataclass(frozen=True)
class Outside:
    """What happens to a request sent while no cassette is active: one the ignore policy covers is
    refused when `replaying`, else sent; any other is sent untouched."""

    ignore: IgnorePolicy
    replaying: bool


_lock = threading.Lock()
_active: list[LLMCassette] = []  # innermost last; shared by every thread, as the patches are
_outside: Outside | None = None
_holders = 0
_undo: list[Callable[[], None]] = []
_clock: Any = None  # the openai._base_client module whose sleeps are dispatched, once patched


def current() -> LLMCassette | None:
    """The innermost active cassette, if any."""
    return _active[-1] if _active else None


def set_outside(policy: Outside | None) -> Outside | None:
    """Sets the policy for requests sent while no cassette is active; returns the one it replaces."""
    global _outside
    previous, _outside = _outside, policy
    return previous


def hold() -> None:
    """Puts the dispatchers in place (the first holder) and keeps them there until `release`."""
    global _holders
    with _lock:
        if _holders == 0:
            for point, (owner, original) in _ORIGINALS.items():
                _undo.append(replace_attribute(owner, point.method, _DISPATCHERS[point.kind](point, original)))
            _undo.append(replace_attribute(httpx_stubs, "_make_vcr_request", _make_vcr_request))
        _holders += 1
        _patch_sdk_clock()  # the openai SDK may be imported after the first holder


def release() -> None:
    """The last holder gone, every patch point gets its original back."""
    global _holders, _clock
    with _lock:
        if _holders == 0:  # a count below zero would make the next hold patch nothing
            raise RuntimeError("stacks.release() without a matching hold()")
        _holders -= 1
        if _holders == 0:
            while _undo:
                _undo.pop()()
            _clock = None


def activate(cassette: LLMCassette) -> None:
    """`cassette` answers the requests of every patched stack until `deactivate(cassette)`."""
    hold()
    _active.append(cassette)


def deactivate(cassette: LLMCassette) -> None:
    for index in range(len(_active) - 1, -1, -1):  # this one, wherever nesting left it
        if _active[index] is cassette:
            del _active[index]
            break
    release()


def _sdk_imported_since() -> None:
    """A request while the patch points are held, from an openai SDK imported after the last hold
    (lazily, inside the test): its clock is patched now, before any of its retries sleeps."""
    if sys.modules.get("openai._base_client") is not _clock:
        with _lock:
            if _holders:
                _patch_sdk_clock()


def _policy(cassette: LLMCassette | None) -> tuple[IgnorePolicy | None, bool]:
    """The ignore policy in force for a request, and whether an ignored request is refused."""
    if cassette is not None:
        return cassette.ignore, cassette.write_protected
    if _outside is not None:
        return _outside.ignore, _outside.replaying
    return None, False


class _Route(NamedTuple):
    """Where a request goes: an answer in its place (`refusal`: ignored while replaying), sent
    unrecorded (`live`: ignored while recording), the `cassette`'s vcrpy stub, or else the original."""

    cassette: LLMCassette | None = None
    refusal: tuple[int, dict[str, list[str]], bytes] | None = None
    live: bool = False


_ORIGINAL = _Route()


def _route(point: _PatchPoint, method: str, url: str) -> _Route:
    """One decision for every stack's dispatcher (see the module docstring)."""
    _sdk_imported_since()
    cassette = _active[-1] if _active else None
    if cassette is None and not point.network:
        return _ORIGINAL  # the Outside rules stop uploads: nothing answered in memory is one
    ignore, replaying = _policy(cassette)
    rule = ignore.rule_for(method, url) if ignore is not None else None
    if rule is None:
        return _ORIGINAL if cassette is None else _Route(cassette)
    if cassette is not None:
        cassette.ignored.append(f"{method.upper()} {without_userinfo(url).partition('?')[0]}")
    return _Route(refusal=refusal(method, url, rule)) if replaying else _Route(live=True)


_ROUTED: contextvars.ContextVar[LLMCassette] = contextvars.ContextVar("llmcache_routed")


class _RoutedCassette:
    """What vcrpy's stubs are given as their cassette: the cassette `_route` chose for the request
    being handled (in this thread or task). Each stub is then built once per patch point, not once
    per test: a stub closing over a test's cassette was about ten objects per test, and a reference
    cycle the cassette waited in for the garbage collector."""

    # What a replayed request calls, forwarded directly: `__getattr__` is reached only after the
    # usual lookup has raised and caught an AttributeError (0.43 against 0.10 us a call).
    def can_play_response_for(self, request: Request) -> bool:
        return _ROUTED.get().can_play_response_for(request)

    def play_response(self, request: Request) -> dict[str, Any]:
        return _ROUTED.get().play_response(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(_ROUTED.get(), name)


_ROUTED_CASSETTE: Any = _RoutedCassette()


def _sync_transport(point: _PatchPoint, original: Callable[..., Any]) -> Callable[..., Any]:
    from vcr.stubs.httpx_stubs import vcr_handle_request

    httpx = sys.modules[point.httpx]

    @functools.wraps(original)
    def send_live(transport: Any, request: Any) -> Any:
        with live_send():
            return original(transport, request)

    @functools.wraps(original)
    def handle_request(transport: Any, request: Any) -> Any:
        route = _route(point, request.method, str(request.url))
        if route.refusal is not None:
            return _httpx_response(httpx, *route.refusal)
        if route.live:
            return send_live(transport, request)
        if route.cassette is None:
            return original(transport, request)
        routed = _ROUTED.set(route.cassette)
        try:
            return stub(transport, request)
        finally:
            _ROUTED.reset(routed)

    stub = vcr_handle_request(_ROUTED_CASSETTE, send_live, httpx)

    return handle_request


class SentRequest(Request):
    """vcrpy's Request for a request sent through an httpx stack, built lazily: replay keys it by
    `header_map` (httpx's lower-cased names, repeated ones joined with ", ") and never needs
    vcrpy's header dict or parsed URI, which are built on first use."""

    def __init__(self, method: str, uri: str, body: bytes, header_map: dict[str, str]) -> None:
        self.method = method
        self._uri = uri
        self._was_file = self._was_iter = False
        self._body = body
        self.header_map: dict[str, str] | None = header_map
        self._headers: Any = None

    @property
    def uri(self) -> str:
        return self._uri

    @uri.setter
    def uri(self, uri: str) -> None:
        self._uri = uri
        self.__dict__.pop("parsed_uri", None)

    @functools.cached_property
    def parsed_uri(self) -> Any:
        return urlparse(self._uri)

    @property
    def headers(self) -> Any:
        if self._headers is None:
            self._headers = HeadersDict(self.header_map)
        return self._headers

    @headers.setter
    def headers(self, value: Any) -> None:
        self._headers = value if isinstance(value, HeadersDict) else HeadersDict(value)
        self.header_map = None  # replaced: read through vcrpy's dict from now on


def _make_vcr_request(real_request: Any, real_request_body: bytes) -> SentRequest:
    """vcrpy's httpx stub's request: its headers read in one pass (vcrpy's own reads an httpx
    Headers by name, each lookup scanning every header again), the rest built when used."""
    return SentRequest(real_request.method, str(real_request.url), real_request_body, dict(real_request.headers.items()))


def _httpx_response(httpx: Any, status: int, headers: dict[str, list[str]], body: bytes) -> Any:
    return httpx.Response(status, headers=[(name, value) for name, values in headers.items() for value in values], stream=httpx.ByteStream(body))


def _async_transport(point: _PatchPoint, original: Callable[..., Any]) -> Callable[..., Any]:
    from vcr.stubs.httpx_stubs import vcr_handle_async_request

    httpx = sys.modules[point.httpx]

    @functools.wraps(original)
    async def send_live(transport: Any, request: Any) -> Any:
        with live_send():
            return await original(transport, request)

    @functools.wraps(original)
    async def handle_async_request(transport: Any, request: Any) -> Any:
        route = _route(point, request.method, str(request.url))
        if route.refusal is not None:
            return _httpx_response(httpx, *route.refusal)
        if route.live:
            return await send_live(transport, request)
        if route.cassette is None:
            return await original(transport, request)
        routed = _ROUTED.set(route.cassette)
        try:
            return await stub(transport, request)
        finally:
            _ROUTED.reset(routed)

    stub = vcr_handle_async_request(_ROUTED_CASSETTE, send_live, httpx)
    return handle_async_request


def _aiohttp_request(point: _PatchPoint, original: Callable[..., Any]) -> Callable[..., Any]:
    from vcr.stubs.aiohttp_stubs import build_response, vcr_request

    @functools.wraps(original)
    async def send_live(session: Any, method: str, url: Any, **kwargs: Any) -> Any:
        with live_send():
            return await original(session, method, url, **kwargs)

    @functools.wraps(original)
    async def request(session: Any, method: str, url: Any, **kwargs: Any) -> Any:
        build_url = getattr(session, "_build_url", None)  # private: the session's base_url joined, as aiohttp does
        if build_url is not None:  # (vcrpy's stub would key and store a relative URL as it was given)
            url = build_url(url)
        route = _route(point, method, str(url))
        if route.refusal is not None:
            status, headers, body = route.refusal
            response = {"status": {"code": status, "message": "Forbidden"}, "headers": headers, "body": {"string": body}}
            return build_response(Request(method, str(url), None, {}), response, [])
        if route.live:
            return await send_live(session, method, url, **kwargs)
        if route.cassette is None:
            return await original(session, method, url, **kwargs)
        routed = _ROUTED.set(route.cassette)
        try:
            return await stub(session, method, url, **kwargs)
        finally:
            _ROUTED.reset(routed)

    stub = vcr_request(_ROUTED_CASSETTE, send_live)
    return request


_DISPATCHERS: dict[str, Callable[[_PatchPoint, Callable[..., Any]], Callable[..., Any]]] = {
    "sync": _sync_transport,
    "async": _async_transport,
    "aiohttp": _aiohttp_request,
}


class _SDKClock:
    """Stands in for `time` / `anyio` inside openai._base_client: its retry sleeps go to the active
    cassette (noted, and skipped when replaying); everything else is the real module."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class _SyncClock(_SDKClock):
    def sleep(self, seconds: float) -> None:
        cassette = current()
        (cassette.sleep if cassette is not None else self._module.sleep)(seconds)


class _AsyncClock(_SDKClock):
    async def sleep(self, seconds: float) -> None:
        cassette = current()
        await (cassette.async_sleep if cassette is not None else self._module.sleep)(seconds)


def _patch_sdk_clock() -> None:
    """Under `_lock`: the openai SDK's clock dispatched, unless it is not imported or already is
    (a module imported anew, after pytester dropped the last one, is patched too)."""
    global _clock
    base_client = sys.modules.get("openai._base_client")
    if base_client is None or base_client is _clock:
        return
    for name, clock in (("time", _SyncClock), ("anyio", _AsyncClock)):
        module = getattr(base_client, name, None)
        if module is not None and hasattr(module, "sleep"):
            _undo.append(replace_attribute(base_client, name, clock(module)))
    _clock = base_client
