"""The network guard refuses real connections (plain sockets, urllib, asyncio), loopback included."""
from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from fakeopenai import FakeOpenAIServer
from pytest_llmcache.network import NetworkBlocked, network_blocked


@pytest.fixture
def server():
    with FakeOpenAIServer() as fake:
        yield fake


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_plain_socket_to_loopback_is_blocked_and_reported(server):
    with network_blocked(hint="Record with --llm-record-mode=once.") as guard:
        with pytest.raises(NetworkBlocked, match=r"127\.0\.0\.1:\d+.*record mode 'none'.*--llm-record-mode=once"):
            socket.create_connection(("127.0.0.1", port_of(server)), timeout=2)
    assert guard.blocked == [f"127.0.0.1:{port_of(server)}"]
    assert server.hits == 0


def test_urllib_is_blocked(server):
    with network_blocked():
        with pytest.raises(Exception) as error:
            urllib.request.urlopen(server.base_url + "/models", timeout=2)
    assert isinstance(error.value, NetworkBlocked) or isinstance(getattr(error.value, "reason", None), NetworkBlocked)
    assert server.hits == 0


def test_asyncio_connections_are_blocked(server):
    async def connect():
        await asyncio.open_connection("127.0.0.1", port_of(server))

    with network_blocked():
        with pytest.raises(NetworkBlocked):
            asyncio.run(connect())


def test_connect_ex_is_blocked_too(server):
    with network_blocked(), socket.socket() as sock:
        with pytest.raises(NetworkBlocked):
            sock.connect_ex(("127.0.0.1", port_of(server)))


def test_allowed_hosts_pass_and_the_guard_goes_away_afterwards(server):
    with network_blocked(allowed_hosts=["localhost"]):
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=2).close()
    with network_blocked(allowed_hosts=["127.0.0.1"]):
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=2).close()
    socket.create_connection(("127.0.0.1", port_of(server)), timeout=2).close()  # unguarded again


def test_unix_sockets_are_local_ipc_and_stay_allowed(tmp_path):
    path = str(tmp_path / "ipc.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        with network_blocked(), socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
