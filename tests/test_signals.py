"""SIGTERM and SIGINT stop the server gracefully: the request in flight is
answered, then run() returns (SIGTERM) or raises KeyboardInterrupt (SIGINT).
Python signal handlers the program installs keep working while it serves."""
import signal
from urllib.parse import quote

from support.rawhttp import build_request
from support.waiting import wait_until


def start_slow_request(conn, marker):
    """Send a request whose app sleeps 1 s; return once the app is running it."""
    conn.send(build_request("GET", f"/slow?seconds=1&marker={quote(str(marker))}"))
    wait_until(marker.exists, 30, "the app is handling the slow request")


def test_sigterm_lets_the_request_in_flight_finish_then_run_returns_and_exits_zero(servers, tmp_path):
    server = servers.start()
    with server.connect() as conn:
        start_slow_request(conn, tmp_path / "in-app")
        server.send_signal(signal.SIGTERM)
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"slow response finished")
    assert server.wait_exit() == 0
    assert "SERVE RETURNED" in server.stdout_text()


def test_sigint_lets_the_request_in_flight_finish_then_run_raises_keyboard_interrupt(servers, tmp_path):
    server = servers.start()
    with server.connect() as conn:
        start_slow_request(conn, tmp_path / "in-app")
        server.send_signal(signal.SIGINT)
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"slow response finished")
    assert server.wait_exit() == 130, server.log_tail()
    assert "KEYBOARD INTERRUPT" in server.stdout_text()


def test_sigterm_during_a_streamed_response_lets_the_stream_finish(servers):
    server = servers.start()
    with server.connect() as conn:
        conn.send(build_request("GET", "/slow-stream?seconds=1"))
        conn.receive_until(b"started\n")
        server.send_signal(signal.SIGTERM)
        response = conn.read_response()
    assert response.body == b"started\nfinished\n"
    assert server.wait_exit() == 0


def test_idle_keep_alive_connections_do_not_delay_the_stop(servers):
    # With a 60 s keep-alive timeout, an exit within STOP_TIMEOUT (15 s)
    # shows the idle connection was closed at once rather than waited for.
    server = servers.start(options={"keepalive_timeout": 60.0})
    with server.connect() as conn:
        conn.send(build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"
        assert server.stop() == 0
        assert conn.is_closed_by_server()


def test_signal_handler_installed_by_the_program_runs_while_serving(servers, tmp_path):
    handled = tmp_path / "usr1-handled"
    server = servers.start(usr1_file=handled)
    server.send_signal(signal.SIGUSR1)
    wait_until(handled.exists, 30, "the SIGUSR1 handler has written its file")
    assert f"pid {server.pid}" in handled.read_text()
    server.assert_serving()


def test_a_response_that_said_keep_alive_before_the_stop_is_followed_by_the_next_request(servers):
    # The stream's head went out saying keep-alive; SIGTERM arrives while it
    # is still being produced. The client's next request, pipelined behind
    # it, must be answered (with Connection: close), not cut off.
    server = servers.start()
    with server.connect() as conn:
        conn.send(build_request("GET", "/slow-stream?seconds=1") + build_request("GET", "/ping"))
        conn.receive_until(b"started\n")
        server.send_signal(signal.SIGTERM)
        streamed = conn.read_response()
        assert streamed.body == b"started\nfinished\n"
        assert streamed.headers_named("Connection") == []
        ping = conn.read_response()
        assert (ping.status, ping.body) == (200, b"pong")
        assert ping.headers_named("Connection") == ["close"]
        assert conn.is_closed_by_server()
    assert server.wait_exit() == 0
