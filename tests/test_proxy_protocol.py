"""proxy_protocol: every connection begins with a PROXY protocol header
(v1 text or v2 binary, as HAProxy and AWS NLB send), which names the client.
A connection without a valid one is closed without an answer; the header
is bounded in size and in time (header_timeout)."""
import socket
import struct

import pytest

from support.rawhttp import build_request

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command, family, addresses=b"", tlvs=b""):
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def v2_tcp4(source, destination, source_port, destination_port, tlvs=b""):
    return v2(1, 0x11, socket.inet_pton(socket.AF_INET, source) + socket.inet_pton(socket.AF_INET, destination)
              + struct.pack("!HH", source_port, destination_port), tlvs)


def v2_tcp6(source, destination, source_port, destination_port):
    return v2(1, 0x21, socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, destination)
              + struct.pack("!HH", source_port, destination_port))


@pytest.fixture(scope="module")
def proxied(module_servers):
    return module_servers.start(name="proxied", options={"proxy_protocol": True, "header_timeout": 2.0},
                                ready_path=None)


def environ_after(server, header, cuts=()):
    with server.connect() as conn:
        data = header + build_request("GET", "/environ")
        start = 0
        for cut in list(cuts) + [len(data)]:
            conn.send(data[start:cut])
            start = cut
        response = conn.read_response()
    assert response.status == 200, response
    return response.json()["environ"]


@pytest.mark.parametrize("header, address, port", [
    (b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n", "203.0.113.7", "56324"),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n", "2001:db8::7", "4711"),
    (v2_tcp4("198.51.100.9", "192.0.2.1", 40000, 80), "198.51.100.9", "40000"),
    (v2_tcp6("2001:db8:cafe::17", "2001:db8::1", 1234, 443), "2001:db8:cafe::17", "1234"),
    (v2_tcp4("198.51.100.9", "192.0.2.1", 40000, 80, tlvs=b"\x04\x00\x03abc"), "198.51.100.9", "40000"),
])
def test_the_header_names_the_client(proxied, header, address, port):
    environ = environ_after(proxied, header)
    assert (environ["REMOTE_ADDR"], environ["REMOTE_PORT"]) == (address, port)


@pytest.mark.parametrize("header", [b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", v2(0, 0x00)])
def test_unknown_or_local_keeps_the_sockets_peer(proxied, header):
    assert environ_after(proxied, header)["REMOTE_ADDR"] == "127.0.0.1"


def test_a_header_split_at_every_byte_is_read_the_same(proxied):
    for header in (b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n", v2_tcp4("198.51.100.9", "192.0.2.1", 1, 2)):
        for cut in range(1, len(header)):
            assert environ_after(proxied, header, [cut])["REMOTE_PORT"] in ("56324", "1"), cut


def test_the_header_and_several_requests_in_one_send(proxied):
    with proxied.connect() as conn:
        conn.send(b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n" + build_request("GET", "/ping") * 3)
        assert [conn.read_response().body for _ in range(3)] == [b"pong"] * 3


@pytest.mark.parametrize("data", [
    build_request("GET", "/ping"),                            # no header at all
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324\r\n",             # a field missing
    b"PROXY TCP4 300.0.113.7 192.0.2.1 56324 443\r\n",         # not an address
    b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 443\r\n",         # not a port
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\n",           # a bare LF
    b"PROXY " + b"A" * 200 + b"\r\n",                          # longer than v1 allows
    V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,         # version 3
    V2_SIGNATURE + b"\x21\x11\x04\x01" + b"\x00" * 1025,       # longer than any header
])
def test_a_connection_without_a_valid_header_is_closed_unanswered(proxied, data):
    with proxied.connect(timeout=10) as conn:
        conn.send(data)
        assert conn.is_closed_by_server(timeout=10)
    with proxied.connect() as conn:
        conn.send(b"PROXY UNKNOWN\r\n" + build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"


def test_a_header_that_never_comes_is_bounded_by_header_timeout(proxied):
    with proxied.connect(timeout=30) as conn:
        conn.send(b"PROXY TCP4 203.0.113.7")
        assert conn.is_closed_by_server(timeout=30)
