"""HAProxy in front of `ursa --proxy-protocol`, with the README's
configuration: `send-proxy` (PROXY v1) and `send-proxy-v2` backends, in TCP
mode. The app sees the client's own address and port, though every
connection ursa accepts comes from HAProxy; a client that skips HAProxy is
refused.

The client connects from 127.0.0.2 (all of 127.0.0.0/8 is the loopback),
so its address differs from HAProxy's 127.0.0.1.
"""
import http.client
import json
import os
import shutil
import socket
import textwrap

import pytest

from support.processes import STOP_TIMEOUT, free_port
from support.rawhttp import RawConnection, build_request
from support.waiting import wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENT_ADDRESS = "127.0.0.2"
BIND_ATTEMPTS = 3

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY),
                                reason="haproxy is not installed (apt-get install haproxy)")


def haproxy_config(ursa_address, v1_port, v2_port):
    """The README's configuration, with the test's ports."""
    return textwrap.dedent(f"""
        global
            maxconn 256

        defaults
            mode tcp
            timeout connect 5s
            timeout client 60s
            timeout server 60s

        frontend app_v1
            bind 127.0.0.1:{v1_port}
            default_backend ursa_v1

        frontend app_v2
            bind 127.0.0.1:{v2_port}
            default_backend ursa_v2

        backend ursa_v1
            server ursa1 {ursa_address} send-proxy

        backend ursa_v2
            server ursa1 {ursa_address} send-proxy-v2
    """)


def start_haproxy(procs, directory, ursa_address):
    """HAProxy in the foreground; returns (v1_port, v2_port) once both accept."""
    for attempt in range(BIND_ATTEMPTS):
        v1_port, v2_port = free_port(), free_port()
        config = directory / f"haproxy{attempt}.cfg"
        config.write_text(haproxy_config(ursa_address, v1_port, v2_port))
        haproxy = procs.start([HAPROXY, "-db", "-f", config], name=f"haproxy{attempt}")

        def started():
            if haproxy.popen.poll() is not None:
                return "exited"
            try:
                for port in (v1_port, v2_port):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return "listening"
            except OSError:
                return None
        if wait_until(started, STOP_TIMEOUT, "haproxy listens") == "listening":
            return v1_port, v2_port
        if "Address already in use" not in haproxy.stderr() + haproxy.stdout():
            pytest.fail(f"haproxy did not start:\n{haproxy.stderr()}{haproxy.stdout()}")
    pytest.fail(f"haproxy found no free ports in {BIND_ATTEMPTS} attempts")


@pytest.fixture
def stack(procs, tmp_path):
    ursa = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--proxy-protocol", "deployapp:app")
    ursa_address = ursa.address[len("http://"):]
    return ursa_address, start_haproxy(procs, tmp_path, ursa_address)


def client_connection(port):
    """A connection to HAProxy's `port` from CLIENT_ADDRESS."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(STOP_TIMEOUT)
    sock.bind((CLIENT_ADDRESS, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def environ_through(sock, requests=1):
    """The app's /environ for `requests` requests on one connection."""
    connection = RawConnection(sock, STOP_TIMEOUT)
    seen = []
    for _ in range(requests):
        sock.sendall(build_request("GET", "/environ"))
        response = connection.read_response()
        assert response.status == 200, response
        seen.append(json.loads(response.body))
    return seen


@pytest.mark.parametrize("version", [1, 2])
def test_the_app_sees_the_client_behind_haproxy(stack, version):
    _, ports = stack
    with client_connection(ports[version - 1]) as sock:
        client_port = str(sock.getsockname()[1])
        seen = environ_through(sock, requests=3)
    # Every request of the connection: the client's address and port, from
    # the PROXY header HAProxy sent once, before the first.
    assert [(e["REMOTE_ADDR"], e["REMOTE_PORT"]) for e in seen] == [(CLIENT_ADDRESS, client_port)] * 3


@pytest.mark.parametrize("version", [1, 2])
def test_many_connections_through_haproxy_each_see_their_own_client(stack, version):
    _, ports = stack
    for _ in range(20):
        with client_connection(ports[version - 1]) as sock:
            client_port = str(sock.getsockname()[1])
            (environ,) = environ_through(sock)
            assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == (CLIENT_ADDRESS, client_port)


def test_a_client_that_skips_haproxy_is_refused(stack):
    ursa_address, ports = stack
    host, port = ursa_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=STOP_TIMEOUT) as sock:
        sock.sendall(build_request("GET", "/environ"))
        assert RawConnection(sock, STOP_TIMEOUT).read_until_close() == b""
    # HAProxy's clients are still served.
    connection = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=STOP_TIMEOUT)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"hello"
    connection.close()
