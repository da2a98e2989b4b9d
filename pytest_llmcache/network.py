"""The network guard: in replay mode no socket may reach anywhere, loopback included.

vcrpy only patches the HTTP clients it knows; code under test may also use plain sockets,
`requests`, `urllib`, asyncio or the C-level `_socket` module. Two mechanisms cover them all:

- New connections and datagrams: CPython raises the audit events ``socket.connect`` (``connect``
  and ``connect_ex``), ``socket.sendto`` and ``socket.sendmsg`` inside the C socket methods
  themselves, for every socket object (``_socket.socket`` included) and however the method is
  reached. An audit hook cannot be removed, so one hook is installed on first use and consults the
  guard active at the time (none: it returns at once).
- Connections opened before the guard (a keep-alive connection in a pool from an earlier test):
  no audit event covers sending on them, so while a guard is active the send methods of
  `socket.socket` and `ssl.SSLSocket` check the peer of a socket once and refuse to send to a peer
  that is not allowed. asyncio transports send through these methods too.

Unix domain sockets are local IPC, not network, and stay allowed. (Name resolution in the C
library, subprocesses and raw ``_socket.socket`` objects connected before the guard are out of
reach of any in-process guard.)
"""
from __future__ import annotations

import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmcache.errors import LLMCacheError
from pytest_llmcache.process_hooks import add_audit_hook_once, replace_attribute

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["NetworkBlocked", "NetworkGuard", "hold_send_checks", "network_blocked", "release_send_checks"]

_NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)
# The audit events that open a connection or send a datagram to an address: (socket, address).
_AUDITED = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
# Methods that send over an already connected socket, per class that defines its own.
_SENDS: dict[type, tuple[str, ...]] = {
    socket.socket: ("send", "sendall", "sendmsg", "sendfile"),
    ssl.SSLSocket: ("send", "sendall", "write", "sendfile"),
}


class NetworkBlocked(LLMCacheError, ConnectionError):
    """A connection was attempted while the network is blocked (record mode `none`)."""

    retryable = False


@dataclass(eq=False)
class NetworkGuard:
    """What the guard allowed and what it refused while it was active (``with``: see `network_blocked`)."""

    allowed_hosts: frozenset[str]
    hint: str | Callable[[], str]  # what to do about a refusal (a function: worked out only when one happens)
    blocked: list[str] = field(default_factory=list)  # host:port of each refused connection or send
    errors: list[NetworkBlocked] = field(default_factory=list)  # kept: the code under test may swallow them
    # Sockets whose peer was found allowed: later sends on them skip the check (made on first use:
    # most replaying tests connect nowhere).
    _cleared: weakref.WeakSet[Any] | None = field(default=None, repr=False)

    def __enter__(self) -> Self:
        add_audit_hook_once(_audit)
        with _lock:
            if not _restore:
                _patch_sends()
            _active.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with _lock:
            _active.remove(self)
            if not _active and not _holders:
                _unpatch_sends()

    def check(self, sock: Any, address: object, opened_before: bool = False) -> None:
        """Raises NetworkBlocked when `sock` (TCP or UDP) would reach `address`, a host not allowed."""
        if getattr(sock, "family", None) not in _NETWORK_FAMILIES or not isinstance(address, tuple) or len(address) < 2:
            return  # Unix sockets; a malformed address fails in the real call
        host, port = str(address[0]), address[1]
        if host in self.allowed_hosts or _plain_host(host) in self.allowed_hosts:
            return
        target = f"{host}:{port}"
        self.blocked.append(target)
        what = f"data to {target} over a connection opened before replay began" if opened_before else f"a connection to {target}"
        hint = self.hint if isinstance(self.hint, str) else self.hint()
        error = NetworkBlocked(f"pytest-llmcache blocked {what}: the network is off while replaying (record mode 'none'). {hint}")
        self.errors.append(error)
        raise error

    def check_peer(self, sock: Any) -> None:
        """Before a send on a connected socket: refuses when its peer is not allowed."""
        try:
            if self._cleared is not None and sock in self._cleared:
                return
        except TypeError:  # not weakly referable: checked every time
            pass
        if getattr(sock, "family", None) not in _NETWORK_FAMILIES:
            return
        try:
            peer = sock.getpeername()
        except OSError:
            return  # not connected: the send fails by itself
        self.check(sock, peer, opened_before=True)
        self.clear(sock)

    def clear(self, sock: Any) -> None:
        """`sock` reaches an allowed peer: its sends need no check."""
        if self._cleared is None:
            self._cleared = weakref.WeakSet()
        try:
            self._cleared.add(sock)
        except TypeError:  # not weakly referable: checked every time
            pass


def _plain_host(host: str) -> str:
    """An IPv4-mapped IPv6 address as its IPv4 address, without an IPv6 zone."""
    host = host.partition("%")[0]
    return host[7:] if host.lower().startswith("::ffff:") and "." in host else host


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()  # an unresolvable name can only match literally


def _resolve(hosts: Iterable[str]) -> frozenset[str]:
    """The names as given plus every address they resolve to (IPs are compared after DNS)."""
    names = set(hosts)
    return frozenset(names.union(*map(_addresses, names)))


# The active guards, innermost last; shared by every thread, as sockets are.
_active: list[NetworkGuard] = []
_lock = threading.Lock()
_restore: list[Callable[[], None]] = []  # undoes the send checks; empty when they are not in place
_holders = 0


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Called for every audit event of the process for as long as it lives: keep the idle path to a
    # list's truth test.
    if _active and event in _AUDITED:
        guard = _active[-1]
        guard.check(args[0], args[1])
        if event == "socket.connect":
            guard.clear(args[0])  # allowed: its sends need no check


def _guarded_send(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def send(sock: Any, *args: Any, **kwargs: Any) -> Any:
        if _active:
            _active[-1].check_peer(sock)
        return real(sock, *args, **kwargs)

    send.__name__ = send.__qualname__ = name
    send.__doc__ = real.__doc__
    return send


def _patch_sends() -> None:
    for cls, names in _SENDS.items():
        for name in names:
            real = getattr(cls, name, None)
            if real is None:  # sendmsg: not on every platform
                continue
            _restore.append(replace_attribute(cls, name, _guarded_send(name, real)))


def _unpatch_sends() -> None:
    while _restore:
        _restore.pop()()


def hold_send_checks() -> None:
    """Keeps the send checks in place between guards until `release_send_checks` (a session
    replaying test after test: patching them for each guard would be most of its cost)."""
    global _holders
    with _lock:
        if not _restore:
            _patch_sends()
        _holders += 1


def release_send_checks() -> None:
    global _holders
    with _lock:
        if _holders == 0:  # a count below zero would keep the send checks in place for good
            raise RuntimeError("network.release_send_checks() without a matching hold_send_checks()")
        _holders -= 1
        if not _holders and not _active:
            _unpatch_sends()


def network_blocked(allowed_hosts: Iterable[str] = (), hint: str | Callable[[], str] = "") -> NetworkGuard:
    """Refuses every TCP/UDP connection and send except to `allowed_hosts` while the block
    (``with network_blocked(...) as guard:``) runs."""
    return NetworkGuard(_resolve(allowed_hosts), hint)
