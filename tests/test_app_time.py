"""Timeouts measure the time a connection kept the server waiting on the
network, never the seconds the worker spent in someone's app.

One worker serves every connection: while one request sleeps in the app,
the others wait in the kernel. Their keep-alive, head and body timers must
not charge them for it, and the clock the server reads (Date, deadlines)
must be the time after the app returned, not before it was called.

Each test holds the worker in the app for SLOW seconds, longer than every
timeout of the server (TIMEOUT), so that a timer counting app time fires.
"""
import email.utils
import pathlib
import threading
import time

import pytest

from support.rawhttp import build_request
from support.waiting import wait_until

TIMEOUT = 2.0
SLOW = 3.5


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="app-time", options={
        "keepalive_timeout": TIMEOUT, "header_timeout": TIMEOUT, "body_timeout": TIMEOUT})


class SlowRequest:
    """GET /slow on a connection of its own, in a thread; `inside()` waits
    until the app is running (it writes a marker file first)."""

    def __init__(self, server, tmp_path, seconds=SLOW):
        self.marker = pathlib.Path(tmp_path) / f"slow-{time.monotonic_ns()}"
        self.server = server
        self.seconds = seconds
        self.response = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with self.server.connect() as conn:
            conn.send(build_request("GET", f"/slow?seconds={self.seconds}&marker={self.marker}"))
            self.response = conn.read_response()

    def __enter__(self):
        self.thread.start()
        wait_until(self.marker.exists, 30, "the slow request is in the app")
        return self

    def __exit__(self, *exc):
        self.thread.join(60)
        assert self.response is not None and self.response.status == 200, self.response


def test_keep_alive_connection_is_kept_after_its_own_slow_response(server):
    """After a response that took longer than keepalive_timeout in the app,
    the connection is idle from when that response went out."""
    with server.connect() as conn:
        conn.send(build_request("GET", f"/slow?seconds={SLOW}"))
        response = conn.read_response()
        assert response.status == 200
        assert response.header("Connection") is None
        time.sleep(0.05)
        conn.send(build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"


def test_idle_connection_that_sends_a_request_while_the_worker_is_busy_is_answered(server, tmp_path):
    """The request arrives while another holds the worker past the idle
    connection's keep-alive timeout: it is read and answered, not reset.
    (Behind nginx with upstream keep-alive, a reset here is a 502.)"""
    with server.connect() as idle:
        idle.send(build_request("GET", "/ping"))
        assert idle.read_response().body == b"pong"
        with SlowRequest(server, tmp_path):
            idle.send(build_request("POST", "/echo", body=b"sent while the worker was busy"))
        response = idle.read_response()
        assert (response.status, response.body) == (200, b"sent while the worker was busy")


def test_request_head_completed_while_the_worker_is_busy_is_not_timed_out(server, tmp_path):
    with server.connect() as conn:
        conn.send(b"GET /ping HTTP/1.1\r\nHo")
        with SlowRequest(server, tmp_path):
            conn.send(b"st: x\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"pong")


def test_request_head_started_before_the_worker_was_busy_and_finished_after_is_not_timed_out(server, tmp_path):
    """The head's time on the network is short; the app's seconds in
    between are not the client's."""
    with server.connect() as conn:
        conn.send(b"GET /ping HTTP/1.1\r\nHo")
        with SlowRequest(server, tmp_path):
            pass
        conn.send(b"st: x\r\n\r\n")
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"pong")


def test_upload_that_goes_on_while_the_worker_is_busy_completes(server, tmp_path):
    body = bytes(range(256)) * 512  # 128 KiB
    with server.connect() as conn:
        conn.send(build_request("POST", "/echo", body=body)[:-len(body) // 2])
        with SlowRequest(server, tmp_path):
            conn.send(body[len(body) - len(body) // 2:])
        response = conn.read_response()
        assert response.status == 200
        assert response.body == body


def test_date_of_a_slow_response_is_when_it_was_made(server):
    """Not when the loop last woke up, before the app ran."""
    sent_at = time.time()
    response = server.get(f"/slow?seconds={SLOW}")
    date = email.utils.parsedate_to_datetime(response.header("Date")).timestamp()
    # Second resolution: made at least SLOW seconds after the request was sent.
    assert date >= int(sent_at + SLOW) - 1, (response.header("Date"), sent_at)


def test_timeouts_still_end_a_client_that_keeps_the_server_waiting(server):
    """Excluding app time does not excuse the network's: an idle
    connection is still closed, a stalled head still gets 408."""
    with server.connect() as idle:
        assert idle.is_closed_by_server(timeout=30)
    with server.connect() as conn:
        conn.send(b"GET /ping HTTP/1.1\r\n")
        response = conn.read_response()
        assert response.status == 408
