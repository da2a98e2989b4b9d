"""The network guard: in replay mode no socket may connect anywhere, loopback included.

vcrpy only patches the HTTP clients it knows; code under test may also use plain sockets,
`requests` or `urllib`. Every Python socket connects through `socket.socket.connect` /
`connect_ex` (asyncio and `socket.create_connection` included), so guarding those two catches
them all. Unix domain sockets are local IPC, not network, and stay allowed.
"""
from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pytest_llmcache.errors import LLMCacheError

__all__ = ["NetworkBlocked", "NetworkGuard", "network_blocked"]


class NetworkBlocked(LLMCacheError, ConnectionError):
    """A connection was attempted while the network is blocked (record mode `none`)."""

    retryable = False


@dataclass
class NetworkGuard:
    """What the guard allowed and what it refused while it was active."""

    allowed_hosts: frozenset[str]
    hint: str
    blocked: list[str] = field(default_factory=list)

    def check(self, sock: socket.socket, address: object) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        host, port = address[0], address[1]  # type: ignore[index]
        if host in self.allowed_hosts:
            return
        target = f"{host}:{port}"
        self.blocked.append(target)
        raise NetworkBlocked(
            f"pytest-llmcache blocked a connection to {target}: the network is off while replaying "
            f"(record mode 'none'). {self.hint}"
        )


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
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded_connect(sock: socket.socket, address: object) -> None:
        guard.check(sock, address)
        return real_connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: object) -> int:
        guard.check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex  # type: ignore[method-assign]
    try:
        yield guard
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex  # type: ignore[method-assign]
