"""The escape guard: while recording, a connection that no recorded stack makes is an error.

vcrpy's stubs record what goes through the stacks `pytest_llmcache.stacks` patches (httpx,
httpx2, aiohttp). A request sent any other way (`requests`, `urllib`, a gRPC channel, a client
library's own transport) would reach the server, be missing from the cassette and fail the next
offline run with nothing said now. So while a test records, every TCP/UDP connection is checked
(CPython's ``socket.connect`` audit event, raised inside the C socket methods for every socket):
one made inside a patched stack's real send (`live_send`) or to an allowed host passes,
any other is refused with `EscapedRequest`, naming the host and port, the code that opened it and
why. Replay (record mode none) has its own, stricter guard in `pytest_llmcache.network`.
"""
from __future__ import annotations

import contextvars
import sysconfig
import threading
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmcache.errors import LLMCacheError
from pytest_llmcache.process_hooks import add_audit_hook_once
from pytest_llmcache.network import _AUDITED, _NETWORK_FAMILIES, _plain_host, _resolve  # one home: the replay guard's

__all__ = ["EscapeGuard", "EscapedRequest", "live_send", "recording_guarded"]

_LIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("llmcache_live_send", default=False)


@contextmanager
def live_send() -> Iterator[None]:
    """Marks the current thread or task as inside a patched stack's real send (`pytest_llmcache.stacks`)."""
    token = _LIVE.set(True)
    try:
        yield
    finally:
        _LIVE.reset(token)


_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
_PLUGIN = Path(__file__).resolve().parent


class EscapedRequest(LLMCacheError, ConnectionError):
    """A connection while recording that none of the recorded HTTP stacks made."""

    retryable = False


@dataclass(eq=False)
class EscapeGuard:
    """What the guard refused while a test recorded."""

    allowed_hosts: frozenset[str]  # names and the addresses they resolve to
    test_id: str
    errors: list[EscapedRequest] = field(default_factory=list)  # kept: the code under test may swallow them

    def check(self, sock: Any, address: object) -> None:
        if getattr(sock, "family", None) not in _NETWORK_FAMILIES or not isinstance(address, tuple) or len(address) < 2:
            return  # Unix sockets; a malformed address fails in the real call
        if _LIVE.get() or str(address[0]) in self.allowed_hosts or _plain_host(str(address[0])) in self.allowed_hosts:
            return
        from pytest_llmcache.stacks import STACKS  # (in place: something records)

        error = EscapedRequest(
            f"pytest-llmcache refused a connection to {address[0]} port {address[1]} while recording {self.test_id or 'a test'}: "
            f"it was opened by {_opener()}, not by one of the HTTP stacks that are recorded ({', '.join(STACKS)}), so it "
            "would be missing from the cassette and fail offline. Send the request through one of them, or allow the host "
            "with the llm_allowed_hosts fixture if the test really needs it live (a local service)."
        )
        self.errors.append(error)
        raise error


def _opener() -> str:
    """The innermost caller outside the standard library and this plugin: the client library, or the test."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        path = Path(frame.filename).resolve()
        if _STDLIB not in path.parents and _PLUGIN not in path.parents and not frame.filename.startswith("<"):
            return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return "code outside the recorded stacks"


_active: list[EscapeGuard] = []
_lock = threading.Lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of the process for as long as it lives: keep the idle path short.
    if _active and event in _AUDITED:
        _active[-1].check(args[0], args[1])


@contextmanager
def recording_guarded(allowed_hosts: Iterable[str] = (), test_id: str = "") -> Iterator[EscapeGuard]:
    """Refuses connections that no recorded stack makes while the block runs (see the module docstring)."""
    guard = EscapeGuard(_resolve(allowed_hosts), test_id)
    add_audit_hook_once(_audit)
    with _lock:
        _active.append(guard)
    try:
        yield guard
    finally:
        with _lock:
            _active.remove(guard)
