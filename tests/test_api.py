"""The public API: run(), listen()+run(), server_run(), serve(), the host
forms (IPv4, IPv6, unix path, abstract unix), reuse_port, bjoern's name,
and option checking."""
import os
import socket
import uuid

import pytest

import ursa
from support.processes import free_port
from support.rawhttp import RawConnection, build_request


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def environ_of(server):
    return server.get_json("/environ")["environ"]


def test_run_with_app_host_and_port_serves(servers):
    port = free_port()
    server = servers.start(mode="run", host="127.0.0.1", port=port)
    server.assert_serving()
    assert environ_of(server)["SERVER_PORT"] == str(port)


def test_listen_then_run_serves(servers):
    server = servers.start(mode="listen-run")
    server.assert_serving()


def test_server_run_serves_a_socket_object(servers):
    server = servers.start(mode="server-run-socket")
    server.assert_serving()


def test_server_run_serves_an_int_file_descriptor(servers):
    server = servers.start(mode="server-run-fd")
    server.assert_serving()


def test_serve_serves_every_socket_it_is_given(servers):
    server = servers.start(mode="serve-many")
    for index in range(2):
        with server.connect(index=index) as conn:
            conn.send(b"GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")
            assert conn.read_response().body == b"pong"


def test_run_returns_and_exits_zero_on_sigterm(servers):
    server = servers.start()
    assert server.stop() == 0
    assert "SERVE RETURNED" in server.stdout_text()


def test_ipv4_loopback_host_reports_the_client_address(servers):
    server = servers.start(host="127.0.0.1")
    environ = environ_of(server)
    assert environ["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.skipif(not ipv6_loopback_available(), reason="IPv6 loopback (::1) is not available here")
def test_ipv6_loopback_host_serves_and_reports_colon_colon_1(servers):
    server = servers.start(host="::1")
    assert server.address["family"] == "inet6"
    environ = environ_of(server)
    assert environ["REMOTE_ADDR"] == "::1"


@pytest.mark.skipif(not ipv6_loopback_available(), reason="IPv6 loopback (::1) is not available here")
def test_ipv6_host_given_to_run_serves(servers):
    server = servers.start(mode="run", host="::1", port=free_port())
    assert environ_of(server)["REMOTE_ADDR"] == "::1"


def test_unix_socket_path_serves_and_its_file_is_removed_after_run_returns(servers, tmp_path):
    path = tmp_path / "ursa.sock"
    server = servers.start(mode="run", host=f"unix:{path}", port=None)
    assert path.exists()
    server.assert_serving()
    assert server.stop() == 0
    assert not path.exists()


def test_unix_socket_peer_has_an_empty_remote_addr_and_no_remote_port(servers, tmp_path):
    server = servers.start(mode="run", host=f"unix:{tmp_path}/peer.sock", port=None)
    environ = environ_of(server)
    assert environ["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in environ


def test_unix_socket_path_made_by_listen_is_removed_after_run_returns(servers, tmp_path):
    path = tmp_path / "listen.sock"
    server = servers.start(mode="listen-run", host=f"unix:{path}", port=None)
    server.assert_serving()
    assert server.stop() == 0
    assert not path.exists()


def test_abstract_unix_socket_serves(servers):
    name = f"ursa-test-{uuid.uuid4().hex}"
    server = servers.start(mode="run", host=f"unix:@{name}", port=None)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect("\0" + name)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        reply = RawConnection(sock).read_until_close()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"pong")
    assert server.stop() == 0


def test_reuse_port_lets_two_processes_serve_the_same_port(servers):
    first = servers.start(name="first", reuse_port=True)
    second = servers.start(name="second", port=first.port, reuse_port=True)
    assert second.port == first.port
    pids_seen = set()
    # The kernel spreads connections by a hash of the client address: both
    # appear quickly; 200 connections all going to one has odds of 2**-199.
    for _ in range(200):
        pids_seen.add(int(first.get("/pid").body))
        if len(pids_seen) == 2:
            break
    assert pids_seen == {first.pid, second.pid}


def test_ursa_works_imported_as_bjoern(servers):
    server = servers.start(mode="bjoern")
    server.assert_serving()


@pytest.mark.parametrize("mode", ["bjoern", "run"])
def test_bjoern_keepalive_false_closes_every_connection_after_its_response(servers, mode):
    """bjoern 4's keepalive=False, as its users pass it to run()/listen()."""
    server = servers.start(mode=mode, port=free_port() if mode == "run" else 0,
                           options={"keepalive": False})
    with server.connect() as conn:
        conn.send(build_request("GET", "/ping"))
        response = conn.read_response()
        assert (response.body, response.header("Connection")) == (b"pong", "close")
        assert conn.is_closed_by_server()


@pytest.mark.parametrize("nodelay", [True, False])
def test_bjoern_tcp_nodelay_is_accepted(servers, nodelay):
    server = servers.start(mode="bjoern", options={"tcp_nodelay": nodelay, "keepalive": True})
    with server.connect() as conn:
        for _ in range(3):
            conn.send(build_request("GET", "/ping"))
            response = conn.read_response()
            assert (response.body, response.header("Connection")) == (b"pong", None)


@pytest.mark.parametrize("call", ["run", "listen", "server_run", "serve"])
def test_unknown_option_raises_type_error_naming_it(call):
    def app(environ, start_response):
        raise AssertionError("never called")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(TypeError, match="no_such_option"):
            if call == "run":
                ursa.run(app, "127.0.0.1", 0, no_such_option=1)
            elif call == "listen":
                ursa.listen(app, "127.0.0.1", 0, no_such_option=1)
            elif call == "server_run":
                ursa.server_run(sock, app, no_such_option=1)
            else:
                ursa.serve([sock], app, no_such_option=1)


def test_unknown_option_binds_nothing(tmp_path):
    path = tmp_path / "never.sock"
    with pytest.raises(TypeError):
        ursa.run(lambda environ, start_response: [], f"unix:{path}", no_such_option=1)
    assert not os.path.exists(path)
