"""The network guard: in replay mode no socket may connect anywhere, loopback included.

vcrpy only patches the HTTP clients it knows; code under test may also use plain sockets,
`requests` or `urllib`. Every Python socket connects through `socket.socket.connect` /
`connect_ex` (asyncio, `http.client`, `urllib3` and `socket.create_connection` included), and
unconnected UDP sockets send through `sendto` / `sendmsg` with an address: guarding these catches
them all. Unix domain sockets are local IPC, not network, and stay allowed. (Name resolution in
the C library and subprocesses are out of reach of any in-process guard.)
"""
from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_llmcache.errors import LLMCacheError

__all__ = ["NetworkBlocked", "NetworkGuard", "network_blocked"]

_GUARDED = ("connect", "connect_ex", "sendto", "sendmsg")  # sendmsg: not on every platform


class NetworkBlocked(LLMCacheError, ConnectionError):
    """A connection was attempted while the network is blocked (record mode `none`)."""

    retryable = False


@dataclass
class NetworkGuard:
    """What the guard allowed and what it refused while it was active."""

    allowed_hosts: frozenset[str]
    hint: str
    blocked: list[str] = field(default_factory=list)  # host:port of each refused connection
    errors: list[NetworkBlocked] = field(default_factory=list)  # kept: the code under test may swallow them

    def check(self, sock: socket.socket, address: object) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or len(address) < 2:
            return  # Unix sockets; a malformed address fails in the real call
        host, port = address[0], address[1]
        if host in self.allowed_hosts:
            return
        target = f"{host}:{port}"
        self.blocked.append(target)
        error = NetworkBlocked(
            f"pytest-llmcache blocked a connection to {target}: the network is off while replaying "
            f"(record mode 'none'). {self.hint}"
        )
        self.errors.append(error)
        raise error


def _resolve(hosts: Iterable[str]) -> frozenset[str]:
    """The names as given plus every address they resolve to (IPs are compared after DNS)."""
    resolved = set(hosts)
    for host in list(resolved):
        try:
            resolved.update(info[4][0] for info in socket.getaddrinfo(host, None))
        except OSError:
            pass  # an unresolvable name can only match literally
    return frozenset(resolved)


@contextmanager
def network_blocked(allowed_hosts: Iterable[str] = (), hint: str = "") -> Iterator[NetworkGuard]:
    """Refuses every TCP/UDP connection except to `allowed_hosts` while the block runs."""
    guard = NetworkGuard(_resolve(allowed_hosts), hint)

    def guarded_connect(sock: socket.socket, address: object) -> None:
        guard.check(sock, address)
        return real_connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: object) -> int:
        guard.check(sock, address)
        return real_connect_ex(sock, address)

    def guarded_sendto(sock: socket.socket, data: Any, *rest: Any) -> int:
        if rest:  # sendto(data, address) or sendto(data, flags, address)
            guard.check(sock, rest[-1])
        return real_sendto(sock, data, *rest)

    def guarded_sendmsg(sock: socket.socket, buffers: Any, *rest: Any) -> int:
        if len(rest) >= 3 and rest[2] is not None:  # sendmsg(buffers, ancdata, flags, address)
            guard.check(sock, rest[2])
        return real_sendmsg(sock, buffers, *rest)

    real = {name: getattr(socket.socket, name) for name in _GUARDED if hasattr(socket.socket, name)}
    own = {name for name in real if name in vars(socket.socket)}  # the others are inherited from _socket
    real_connect, real_connect_ex = real["connect"], real["connect_ex"]
    real_sendto, real_sendmsg = real["sendto"], real.get("sendmsg")
    replacements = {"connect": guarded_connect, "connect_ex": guarded_connect_ex, "sendto": guarded_sendto, "sendmsg": guarded_sendmsg}
    for name in real:
        setattr(socket.socket, name, replacements[name])
    try:
        yield guard
    finally:
        for name, method in real.items():
            if name in own:
                setattr(socket.socket, name, method)
            else:
                delattr(socket.socket, name)
