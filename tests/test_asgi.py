"""ASGI 3 over HTTP/1.1: the scope, receive() and send(), the app's
failures, clients that leave, backpressure and the lifespan protocol, over
real sockets against a server process (asgi_apps.py).

The app is called once the request's head is complete, and receive()
gives the body as it arrives, with the socket read only while the app has
taken what came (flow control)."""
import json
import select
import signal
import socket
import sys
import time

import httpx
import pytest

from support.rawhttp import IncompleteBody, build_request
from support.waiting import wait_until

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")

APP = "asgi_apps:routing"


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="asgi", app=APP)


def marker_text(path):
    return path.read_text() if path.exists() else None


# ---------------------------------------------------------------- the scope

def test_scope_of_a_request(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/scope?a=1&b=%20", headers=[("X-Custom", "Value"), ("x-custom", "two")]))
        scope = conn.read_response().json()
        local_port = conn.local_port()
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["method"], scope["scheme"]) == ("1.1", "GET", "http")
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope", "/scope", "a=1&b=%20")
    assert scope["root_path"] == ""
    assert scope["headers"] == [["host", "test"], ["x-custom", "Value"], ["x-custom", "two"]]
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["extensions"] == ["http.response.pathsend"]


def test_path_is_percent_decoded_as_utf8_and_raw_path_is_as_sent(server):
    scope = server.get("/scope/caf%C3%A9%2Fx%ZZ?q=%C3%A9").json()
    assert scope["path"] == "/scope/café/x%ZZ"
    assert scope["raw_path"] == "/scope/caf%C3%A9%2Fx%ZZ"
    assert scope["query_string"] == "q=%C3%A9"


def test_http_1_0_request(server):
    response = server.request("GET", "/scope", version="HTTP/1.0")
    assert response.json()["http_version"] == "1.0"
    assert response.header("Connection") == "close" or response.version == "HTTP/1.0"


def test_absolute_form_target_gives_its_path(server):
    response = server.request("GET", "http://example.com/scope?z=9")
    scope = response.json()
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope", "/scope", "z=9")


def test_a_trusted_proxys_forwarded_headers_set_scheme_and_client(server):
    # The test client is 127.0.0.1, in forwarded_allow_ips by default.
    scope = server.get("/scope", headers=[("X-Forwarded-Proto", "https"),
                                          ("X-Forwarded-For", "203.0.113.9")]).json()
    assert (scope["scheme"], scope["client"]) == ("https", ["203.0.113.9", 0])


def test_root_path_is_script_name_for_paths_under_it(servers):
    server = servers.start(app=APP, options={"script_name": "/scope"})
    scope = server.get("/scope/x").json()
    assert (scope["root_path"], scope["path"]) == ("/scope", "/scope/x")


def test_lifespan_state_is_copied_into_each_scope(server):
    assert server.get("/state").body == b'["database"]'


# ---------------------------------------------------------------- bodies

def test_request_body_arrives_in_one_message(server):
    response = server.request("POST", "/echo", body=b"hello asgi")
    assert (response.status, response.body, response.header("x-parts")) == (200, b"hello asgi", "1")


def test_chunked_request_body(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]) +
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        response = conn.read_response()
    assert response.body == b"hello world"


def test_the_app_gets_the_body_as_it_arrives(server, tmp_path):
    marker = tmp_path / "first"
    with server.connect() as conn:
        conn.send(build_request("POST", f"/first-part?marker={marker}", headers=[("Content-Length", "2000")]) +
                  b"a" * 700)
        # The app had the first 700 bytes while the rest was not sent yet.
        wait_until(lambda: marker_text(marker) == "700 True", 30, "the app received the first part")
        conn.send(b"b" * 1300)
        assert conn.read_response().body == b"2000"


def test_a_large_body_arrives_whole_in_parts(server):
    body = bytes(range(256)) * (3 * 4096 + 7)  # a little over 3 MiB
    response = server.request("POST", "/echo", body=body)
    assert response.body == body
    assert int(response.header("x-parts")) > 1


def test_reading_pauses_while_the_app_does_not_take_the_body(server):
    # Without flow control the worker would read all 64 MiB into a file
    # while the app holds it; with it, the client is stopped by the kernel's
    # buffers, a few MiB in, and goes on once the app reads.
    size = 64 << 20
    with server.connect() as conn:
        conn.send(build_request("POST", "/hold-body", headers=[("Content-Length", str(size))]))
        conn.sock.setblocking(False)
        chunk, sent = b"u" * 65536, 0
        while sent < size:
            if not select.select([], [conn.sock], [], 2)[1]:
                break  # the server stopped reading
            try:
                sent += conn.sock.send(chunk[:size - sent])
            except BlockingIOError:
                continue
        assert sent < 32 << 20, f"the server read {sent} bytes the app did not ask for"
        assert server.get("/release").body == b"released"
        conn.sock.settimeout(30)
        conn.send(b"u" * (size - sent))
        assert conn.read_response().body == str(size).encode()
    server.assert_serving()


def test_100_continue_is_sent_when_the_app_first_waits_for_the_body(server, tmp_path):
    marker = tmp_path / "running"
    with server.connect() as conn:
        conn.send(build_request("POST", f"/continue-later?marker={marker}",
                                headers=[("Content-Length", "5"), ("Expect", "100-continue")]))
        wait_until(marker.exists, 30, "the app runs")
        # The app runs and has not asked for the body: no 100 Continue yet
        # (it would have been written before the app was called).
        assert select.select([conn.sock], [], [], 0)[0] == []
        assert server.get("/release").body == b"released"
        assert conn.read_response().status == 100
        conn.send(b"hello")
        assert conn.read_response().body == b"hello"


def test_an_answer_before_the_body_closes_the_connection_after_it(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/answer-early", headers=[("Content-Length", str(10 << 20))]) + b"x" * 4096)
        response = conn.read_response()
        assert (response.status, response.body) == (403, b"no uploads here")
        assert response.header("Connection") == "close"
        assert conn.is_closed_by_server()
    server.assert_serving()


def test_a_client_leaving_mid_upload_cancels_the_app_where_it_waits(server, tmp_path):
    marker = tmp_path / "upload"
    conn = server.connect()
    conn.send(build_request("POST", f"/upload-until-gone?marker={marker}",
                            headers=[("Content-Length", "100000")]) + b"x" * 1000)
    wait_until(lambda: marker_text(marker) == "reading", 30, "the app reads the body")
    conn.close()
    wait_until(lambda: marker_text(marker) == "cancelled", 30, "the app's task is cancelled")
    server.assert_serving()
    assert "cancelled" not in server.log_text()


def test_receive_and_send_awaitables_follow_the_iterator_protocol_however_driven(server):
    seen = json.loads(server.get("/awaitables-by-hand").body)
    assert seen == {
        "receive-next": ["stopped", {"type": "http.request", "body": "", "more_body": False}],
        "send-next": ["stopped", None],
        "send-method": ["stopped", None],
        "send-yield-from": None,
        "send-await": None,
    }


def test_asyncio_servers_and_clients_work_inside_an_app(server):
    body = b"through asyncio " * 1000
    assert server.request("POST", "/echo-through-asyncio", body=body).body == body


def test_a_response_in_one_message_has_a_content_length(server):
    response = server.get("/ping")
    assert (response.status, response.body, response.framing) == (200, b"pong", "content-length")
    assert response.header("Content-Length") == "4"


def test_a_streamed_response_is_chunked(server):
    response = server.get("/stream?parts=3&delay=0")
    assert response.framing == "chunked"
    assert response.body == b"part 0\npart 1\npart 2\nend\n"


def test_the_apps_content_length_frames_a_body_sent_in_parts(server):
    response = server.get("/sized?size=300000&parts=7")
    assert (response.framing, len(response.body)) == ("content-length", 300000)


def test_head_request_gets_the_length_and_no_body(server):
    with server.connect() as conn:
        conn.send(build_request("HEAD", "/ping") + build_request("GET", "/ping"))
        head = conn.read_response("HEAD")
        assert head.header("Content-Length") == "4"
        assert conn.read_response().body == b"pong"


@pytest.mark.parametrize("code, reason", [(201, "Created"), (404, "Not Found"), (299, ""), (204, "No Content")])
def test_status_line_has_the_registered_reason(server, code, reason):
    response = server.get(f"/status?code={code}")
    assert (response.status, response.reason) == (code, reason)


def test_pathsend_sends_the_file(server, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"0123456789" * 100000)
    response = server.get(f"/pathsend?path={path}")
    assert (response.status, response.header("Content-Length")) == (200, "1000000")
    assert response.body == path.read_bytes()


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/stream?parts=2&delay=0.05") + build_request("POST", "/echo", body=b"two") +
                  build_request("GET", "/ping"))
        assert conn.read_response().body == b"part 0\npart 1\nend\n"
        assert conn.read_response().body == b"two"
        assert conn.read_response().body == b"pong"


def test_httpx_client(server):
    with httpx.Client(base_url=server.url("")) as client:
        for _ in range(3):
            response = client.post("/echo", content=b"x" * 100000)
            assert (response.status_code, len(response.content)) == (200, 100000)
        assert client.get("/stream?parts=5&delay=0").text.count("part") == 5


# ---------------------------------------------------------------- concurrency

def test_the_app_runs_in_its_first_step_as_asyncio_lists_eager_tasks(server):
    # The task's first step runs as it is made (asgi/task.c, on every Python);
    # from 3.12 all_tasks() finds it meanwhile in asyncio's set of eager tasks,
    # which 3.11 does not have.
    assert server.get("/eager").json() is (sys.version_info >= (3, 12))


def test_other_clients_are_served_while_an_app_waits(server, tmp_path):
    marker = tmp_path / "in-app"
    with server.connect() as slow:
        slow.send(build_request("GET", f"/slow?seconds=2&marker={marker}"))
        wait_until(marker.exists, 30, "the slow request is in the app")
        for _ in range(20):
            server.assert_serving()
        assert slow.read_response().body == b"slow response finished"


def test_time_an_app_holds_the_loop_is_not_charged_to_idle_connections(servers):
    # A keep-alive timeout of 1 s and an app that blocks the loop for 2 s:
    # the idle connection kept the server waiting for none of it.
    server = servers.start(app=APP, options={"keepalive_timeout": 1.0})
    with server.connect() as idle, server.connect() as blocking:
        idle.send(build_request("GET", "/ping"))
        assert idle.read_response().body == b"pong"
        blocking.send(build_request("GET", "/block?seconds=2"))
        assert blocking.read_response().body == b"blocked"
        idle.send(build_request("GET", "/ping"))
        assert idle.read_response().body == b"pong"


# ---------------------------------------------------------------- failures

def test_an_app_that_raises_before_starting_gets_a_500(server):
    response = server.get("/raise-before-start")
    assert response.status == 500
    server.wait_for_log("raised before the response started")
    server.assert_serving()


def test_an_app_that_raises_mid_body_has_its_connection_closed(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/raise-after-start"))
        with pytest.raises(IncompleteBody) as incomplete:
            conn.read_response()
        assert incomplete.value.response.body == b"partial"
    server.wait_for_log("raised in the middle of the body")
    server.assert_serving()


@pytest.mark.parametrize("path, logged", [("/no-response", "returned without sending a response"),
                                          ("/start-only", "returned without sending a response")])
def test_an_app_that_returns_without_a_whole_response_gets_a_500(server, path, logged):
    response = server.get(path)
    assert response.status == 500
    server.wait_for_log("returned without")
    server.assert_serving()


@pytest.mark.parametrize("shape", ["list", "tuple", "generator"])
def test_response_headers_in_any_iterable_of_bytes_like_pairs(server, shape):
    response = server.get(f"/header-shapes?shape={shape}")
    assert (response.status, response.body) == (200, shape.encode())
    assert [response.header(name) for name in ("X-One", "X-Two", "X-Three")] == ["1", "2", "3"]


def test_an_invalid_message_is_logged_and_its_connection_ends(server):
    # The app catches send()'s error and tries again: the response was
    # abandoned, and the client gets a 500 and a close, never a wrong one.
    with server.connect() as conn:
        conn.send(build_request("GET", "/bad-header"))
        response = conn.read_response()
        assert (response.status, response.header("Connection")) == (500, "close")
        assert conn.is_closed_by_server()
    server.wait_for_log("sent an invalid message")
    server.wait_for_log("CR, LF or NUL")
    server.assert_serving()


# ---------------------------------------------------------------- clients that leave

def test_receive_says_http_disconnect_when_the_client_leaves(server, tmp_path):
    marker = tmp_path / "disconnect"
    conn = server.connect()
    conn.send(build_request("GET", f"/wait-disconnect?marker={marker}"))
    wait_until(lambda: marker_text(marker) == "waiting", 30, "the app waits for the disconnect")
    conn.close()
    wait_until(lambda: marker_text(marker) == "http.disconnect", 30, "the app is told of the disconnect")
    server.assert_serving()


def test_receive_after_the_response_says_http_disconnect(server, tmp_path):
    marker = tmp_path / "after"
    assert server.get(f"/after-response?marker={marker}").body == b"done"
    wait_until(lambda: marker_text(marker) == "http.disconnect", 30, "the app's receive() returns")


def test_a_streaming_app_is_cancelled_where_it_next_waits_once_the_client_vanished(server, tmp_path):
    marker = tmp_path / "gone"
    conn = server.connect()
    conn.send(build_request("GET", f"/stream-until-gone?marker={marker}"))
    wait_until(lambda: (tmp_path / "gone.started").exists(), 30, "the stream started")
    conn.abort()
    wait_until(lambda: marker_text(marker) == "CancelledError", 30, "the app's task is cancelled")
    server.assert_serving()
    assert "CancelledError" not in server.log_text()


def test_send_after_the_client_vanished_raises_client_disconnected(server, tmp_path):
    # An app that sends again before it waits on anything: cancellation
    # has not reached it yet, send() says the client is gone.
    marker = tmp_path / "gone"
    conn = server.connect()
    conn.send(build_request("GET", f"/send-after-gone?marker={marker}"))
    wait_until(lambda: marker_text(marker) == "waiting", 30, "the app waits for the disconnect")
    conn.abort()
    wait_until(lambda: marker_text(marker) == "ClientDisconnected", 30, "send() raised ClientDisconnected")
    server.assert_serving()
    assert "ClientDisconnected" not in server.log_text()


def test_send_waits_for_a_client_that_does_not_read(server, tmp_path):
    # 2000 parts of 64 KiB: without backpressure every send() would return
    # at once and the worker would hold 128 MiB for this client.
    marker = tmp_path / "sends"
    with server.connect() as conn:
        conn.send(build_request("GET", f"/count-sends?parts=2000&marker={marker}"))
        wait_until(marker.exists, 30, "the app sends")
        previous = None
        while True:  # until the app stops getting ahead
            time.sleep(0.3)
            count = int(marker.read_text())
            if count == previous:
                break
            previous = count
        assert count < 1000
        response = conn.read_response()
    assert len(response.body) == 2000 * 65536
    assert marker.read_text() == "2000"


# ---------------------------------------------------------------- lifespan and stopping

def test_lifespan_startup_and_shutdown_run_around_the_serving(servers, tmp_path, monkeypatch):
    log = tmp_path / "lifespan.log"
    monkeypatch.setenv("URSA_TEST_LIFESPAN_LOG", str(log))
    server = servers.start(app=APP)
    assert log.read_text() == "lifespan.startup\n"
    assert server.stop() == 0
    assert log.read_text() == "lifespan.startup\nlifespan.shutdown\nlifespan.shutdown.complete\n"


def test_the_stops_graceful_timer_does_not_cut_the_apps_shutdown_short(servers, tmp_path, monkeypatch):
    # The stop's graceful timer (3 s) is armed while a request (2 s) is in
    # flight; the app's shutdown then takes 2 s, within its own graceful
    # timeout, and across the instant the stop's timer would have fired.
    log = tmp_path / "lifespan.log"
    marker = tmp_path / "in-app"
    monkeypatch.setenv("URSA_TEST_LIFESPAN_LOG", str(log))
    monkeypatch.setenv("URSA_TEST_LIFESPAN_SHUTDOWN_SECONDS", "2.0")
    server = servers.start(app=APP, options={"graceful_timeout": 3.0})
    with server.connect() as conn:
        conn.send(build_request("GET", f"/slow?seconds=2&marker={marker}"))
        wait_until(marker.exists, 30, "the request is in the app")
        server.send_signal(signal.SIGTERM)
        assert conn.read_response().body == b"slow response finished"
    assert server.wait_exit() == 0
    assert log.read_text().splitlines()[-1] == "lifespan.shutdown.complete"


def test_a_failed_lifespan_startup_fails_the_start(servers, monkeypatch):
    monkeypatch.setenv("URSA_TEST_LIFESPAN_FAIL", "startup")
    with pytest.raises(AssertionError):
        servers.start(app=APP)
    server = servers.processes[-1]
    assert server.wait_exit() != 0
    assert "the test asked for it" in server.log_text()


def test_an_app_without_lifespan_is_served_with_lifespan_auto(servers):
    server = servers.start(app="asgi_apps:no_lifespan")
    server.assert_serving()
    assert server.get("/state").body == b"[]"


def test_lifespan_on_requires_the_app_to_support_it(servers):
    with pytest.raises(AssertionError):
        servers.start(app="asgi_apps:no_lifespan", options={"lifespan": "on"})
    assert servers.processes[-1].wait_exit() != 0


def test_sigterm_lets_the_request_in_flight_finish(servers, tmp_path):
    server = servers.start(app=APP)
    marker = tmp_path / "in-app"
    with server.connect() as conn:
        conn.send(build_request("GET", f"/slow?seconds=1&marker={marker}"))
        wait_until(marker.exists, 30, "the request is in the app")
        server.send_signal(signal.SIGTERM)
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"slow response finished")
    assert response.header("Connection") == "close"
    assert server.wait_exit() == 0


@pytest.mark.parametrize("where", ["at-once", "later"])
def test_an_interrupt_during_the_stop_closes_the_request_under_the_app_and_exits(servers, where):
    server = servers.start(app=APP)
    with server.connect() as conn:
        conn.send(build_request("GET", f"/interrupt-while-stopping?where={where}"))
        assert conn.is_closed_by_server()
    assert server.wait_exit() == 130, server.log_tail()
    assert "KEYBOARD INTERRUPT" in server.stdout_text()


def test_interface_wsgi_forced_on_an_async_app_fails_its_requests_clearly(servers):
    server = servers.start(app=APP, options={"interface": "wsgi"}, ready_path=None)
    response = server.get("/ping")
    assert response.status == 500
