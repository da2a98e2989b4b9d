"""The network guard refuses real connections (plain sockets, urllib, asyncio), loopback included."""
from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import pytest

from pytest_llmcache.network import NetworkBlocked, network_blocked


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_plain_socket_to_loopback_is_blocked_and_reported(server):
    refusal = r"127\.0\.0\.1:\d+.*record mode 'none'.*--llm-record-mode=once"
    with network_blocked(hint="Record with --llm-record-mode=once.") as guard, pytest.raises(NetworkBlocked, match=refusal):
        socket.create_connection(("127.0.0.1", port_of(server)), timeout=2)
    assert guard.blocked == [f"127.0.0.1:{port_of(server)}"]
    assert server.hits == 0


def test_urllib_is_blocked(server):
    with network_blocked(), pytest.raises(Exception) as error:
        urllib.request.urlopen(server.base_url + "/models", timeout=2)
    assert isinstance(error.value, NetworkBlocked) or isinstance(getattr(error.value, "reason", None), NetworkBlocked)
    assert server.hits == 0


def test_asyncio_connections_are_blocked(server):
    async def connect():
        await asyncio.open_connection("127.0.0.1", port_of(server))

    with network_blocked(), pytest.raises(NetworkBlocked):
        asyncio.run(connect())


def test_connect_ex_is_blocked_too(server):
    with network_blocked(), socket.socket() as sock, pytest.raises(NetworkBlocked):
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


# -- every way to a socket: the C-level module, unbound methods, connections opened before -------

AUTH = {"Authorization": "Bearer sk-test"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_a_socket_of_the_c_module_is_blocked(server):
    import _socket

    sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with network_blocked() as guard:
            with pytest.raises(NetworkBlocked):
                sock.connect(("127.0.0.1", port_of(server)))
            with pytest.raises(NetworkBlocked):
                sock.connect_ex(("127.0.0.1", port_of(server)))
    finally:
        sock.close()
    assert guard.blocked == [f"127.0.0.1:{port_of(server)}"] * 2


def test_unbound_c_methods_on_an_ordinary_socket_are_blocked(server):
    import _socket

    with network_blocked(), socket.socket() as sock, pytest.raises(NetworkBlocked):
        _socket.socket.connect(sock, ("127.0.0.1", port_of(server)))
    with network_blocked(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(NetworkBlocked):
        _socket.socket.sendto(udp, b"x", ("127.0.0.1", port_of(server)))


def test_a_keep_alive_connection_pooled_before_the_guard_is_blocked(server):
    requests = pytest.importorskip("requests")
    with requests.Session() as session:
        assert session.post(server.base_url + "/chat/completions", json=CHAT, headers=AUTH, timeout=5).status_code == 200
        with network_blocked() as guard, pytest.raises(OSError):  # requests' ConnectionError, or ours
            session.post(server.base_url + "/chat/completions", json=CHAT, headers=AUTH, timeout=5)
    assert server.hits == 1
    assert any("over a connection opened before replay began" in str(error) for error in guard.errors)


def test_a_pooled_connection_to_an_allowed_host_keeps_working(server):
    requests = pytest.importorskip("requests")
    with requests.Session() as session:
        session.post(server.base_url + "/chat/completions", json=CHAT, headers=AUTH, timeout=5)
        with network_blocked(allowed_hosts=["localhost"]) as guard:
            for _ in range(3):
                assert session.post(server.base_url + "/chat/completions", json=CHAT, headers=AUTH, timeout=5).status_code == 200
    assert server.hits == 4 and guard.errors == []


def test_an_asyncio_connection_opened_before_the_guard_cannot_send(server):
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer sk-test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(json.dumps(CHAT))}\r\n\r\n{json.dumps(CHAT)}"
    ).encode()

    async def scenario() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        with network_blocked() as guard:
            writer.write(request)  # the transport swallows the error and closes
            try:
                await writer.drain()
                answer = await reader.read(100)
            except OSError:
                answer = b""
        writer.close()
        assert guard.errors, "the refusal must be kept for the test to fail"
        return answer

    assert asyncio.run(scenario()) == b""
    assert server.hits == 0


def test_a_session_from_an_earlier_test_fails_the_replaying_test_even_when_swallowed(suite):
    suite.write(
        f'''
import requests

SESSION = requests.Session()
URL = "http://127.0.0.1:{suite.server.port}/v1/chat/completions"
ARGS = dict(json={CHAT!r}, headers={AUTH!r}, timeout=5)

def test_1_no_cassette():
    assert SESSION.post(URL, **ARGS).status_code == 200

def test_2_replaying(llm_cassette):
    try:
        SESSION.post(URL, **ARGS)
    except Exception:
        pass  # code under test that hides network errors
'''
    )
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    assert "blocked data to 127.0.0.1:" in result.stdout.str()
    assert suite.server.hits == 1


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on loopback with a self-signed certificate (made by the openssl tool)."""
    import http.server
    import shutil
    import ssl
    import subprocess
    import threading

    if shutil.which("openssl") is None:
        pytest.skip("no openssl tool to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], cert, received
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_tls_connection_opened_before_the_guard_cannot_send(tls_server):
    import http.client
    import ssl

    port, cert, received = tls_server
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=str(cert)), timeout=5)
    try:
        connection.request("POST", "/first", body=b"{}")
        assert connection.getresponse().read() == b"ok"
        with network_blocked() as guard, pytest.raises(NetworkBlocked, match="over a connection opened before replay began"):
            connection.request("POST", "/second", body=b"{}")
    finally:
        connection.close()
    assert received == ["/first"] and guard.blocked == [f"127.0.0.1:{port}"]
