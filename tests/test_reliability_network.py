"""Record mode none cannot reach the network through any client, loopback included, unless the
project allows the host; every attempt fails the test with a message saying what to do."""
from __future__ import annotations

import socket

import pytest

from pytest_llmcache.network import NetworkBlocked, hold_send_checks, network_blocked, release_send_checks

CLIENTS = '''
import asyncio, http.client, socket, urllib.request
import pytest, requests

PORT = {port}
URL = f"http://127.0.0.1:{{PORT}}/v1/models"

def test_plain_socket(llm_cassette):
    socket.create_connection(("127.0.0.1", PORT), timeout=2)

def test_socket_connect_ex(llm_cassette):
    with socket.socket() as sock:
        sock.connect_ex(("127.0.0.1", PORT))

def test_udp_sendto(llm_cassette):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("127.0.0.1", PORT))

def test_udp_sendto_with_flags(llm_cassette):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", 0, ("127.0.0.1", PORT))

def test_udp_sendmsg(llm_cassette):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendmsg([b"x"], [], 0, ("127.0.0.1", PORT))

def test_ipv6_loopback(llm_cassette):
    with socket.socket(socket.AF_INET6) as sock:
        sock.connect(("::1", PORT))

def test_http_client(llm_cassette):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
    connection.request("GET", "/v1/models")

def test_urllib(llm_cassette):
    urllib.request.urlopen(URL, timeout=2)

def test_requests(llm_cassette):
    requests.get(URL, timeout=2)

def test_asyncio(llm_cassette):
    asyncio.run(asyncio.open_connection("127.0.0.1", PORT))

def test_public_host_by_ip(llm_cassette):
    socket.create_connection(("192.0.2.1", 443), timeout=2)  # TEST-NET-1: never routed
'''


def test_every_client_is_refused_in_mode_none_with_a_clear_message(suite):
    suite.write(CLIENTS.format(port=suite.server.port))
    result = suite.run("-p", "no:randomly")
    result.assert_outcomes(failed=11)
    output = result.stdout.str()
    for name in ("plain_socket", "socket_connect_ex", "udp_sendto", "udp_sendto_with_flags", "udp_sendmsg", "http_client",
                 "urllib", "requests", "asyncio", "public_host_by_ip"):
        assert "pytest-llmcache blocked a connection to" in output
        assert f"Record with: pytest test_x.py::test_{name} --llm-record-mode=once" in output, name
    assert output.count(f"127.0.0.1:{suite.server.port}: the network is off while replaying (record mode 'none')") >= 8
    assert f"::1:{suite.server.port}" in output and "192.0.2.1:443" in output
    assert suite.server.hits == 0  # nothing reached the loopback server


def test_allowed_hosts_let_the_project_reach_its_own_services(suite):
    suite.write(
        f'''
import socket, urllib.request, pytest, requests
from pytest_llmcache.network import NetworkBlocked

@pytest.fixture
def llm_allowed_hosts():
    return ("localhost",)

def test_local_service(llm_cassette):
    with pytest.raises(urllib.error.HTTPError, match="404"):  # the server answered
        urllib.request.urlopen("http://127.0.0.1:{suite.server.port}/v1/models", timeout=2)

def test_other_hosts_stay_blocked(llm_cassette):
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 443), timeout=2)
'''
    )
    result = suite.run()
    result.assert_outcomes(passed=1, failed=1)  # a blocked connection fails its test, caught or not
    assert "test_other_hosts_stay_blocked" in result.stdout.str() and "192.0.2.1:443" in result.stdout.str()
    assert suite.server.hits == 1


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "rewrite"])
def test_recording_modes_refuse_what_escapes_recording_and_pass_allowed_hosts(suite, mode):
    """A request outside the recorded HTTP stacks would be missing from the cassette: refused while
    recording (see test_escapes.py); the project's own services stay reachable through llm_allowed_hosts."""
    suite.write(
        f'''
import urllib.request, pytest

@pytest.fixture
def llm_allowed_hosts(request):
    return ("localhost",) if request.node.name == "test_local_service" else ()

def test_local_service(llm_cassette):
    with pytest.raises(urllib.error.HTTPError, match="404"):  # the server answered
        urllib.request.urlopen("http://127.0.0.1:{suite.server.port}/v1/models", timeout=2)

def test_escaped(llm_cassette):
    urllib.request.urlopen("http://127.0.0.1:{suite.server.port}/v1/models", timeout=2)
'''
    )
    result = suite.run(f"--llm-record-mode={mode}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*refused a connection to 127.0.0.1 port {suite.server.port} while recording test_x.py::test_escaped*"])
    assert suite.server.hits == 1


def test_the_guard_restores_every_socket_method_exactly():
    before = {name: vars(socket.socket).get(name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}
    with network_blocked(), pytest.raises(NetworkBlocked), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("127.0.0.1", 9))
    assert {name: vars(socket.socket).get(name) for name in before} == before
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("127.0.0.1", 9))  # allowed again (UDP: nothing needs to listen)


def test_held_send_checks_stay_between_guards_and_come_off_exactly_with_the_last_holder():
    """A session keeps the send checks in place from test to test; they only act inside a guard."""
    names = ("send", "sendall", "sendto", "sendfile")
    before = {name: vars(socket.socket).get(name) for name in names}
    hold_send_checks()
    try:
        with network_blocked():
            pass
        patched = {name: vars(socket.socket).get(name) for name in names}
        assert patched["sendall"] is not before["sendall"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", 9))
            assert sock.send(b"x") == 1  # no guard active: sent
            with network_blocked(), pytest.raises(NetworkBlocked):
                sock.send(b"x")  # connected before the guard: refused inside it
    finally:
        release_send_checks()
    assert {name: vars(socket.socket).get(name) for name in names} == before


def test_connected_udp_and_unix_datagrams_are_not_confused_with_network_sends(tmp_path):
    path = str(tmp_path / "d.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        with network_blocked(), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"local", path)
        assert receiver.recv(10) == b"local"


def test_a_blocked_connection_fails_the_test_even_when_the_code_swallows_it(suite):
    suite.write(
        f'''
import socket

def test_swallows(llm_cassette):
    try:
        socket.create_connection(("127.0.0.1", {suite.server.port}), timeout=2)
    except OSError:
        pass  # code under test that hides network errors
'''
    )
    result = suite.run()
    result.assert_outcomes(failed=1)
    assert f"blocked a connection to 127.0.0.1:{suite.server.port}" in result.stdout.str()
    assert suite.server.hits == 0


def test_the_refusal_says_how_to_allow_a_service_of_ones_own(suite):
    suite.write(f'''
import socket

def test_db(llm_cassette):
    socket.create_connection(("127.0.0.1", {suite.server.port}), timeout=2)
''')
    result = suite.run()
    result.assert_outcomes(failed=1)
    assert "Allow its host with the llm_allowed_hosts fixture.) Record with: pytest test_x.py::test_db --llm-record-mode=once" in result.stdout.str()
