"""Apps that fail: a 500 when nothing was sent yet, a cut connection when
the head is already out, a traceback in the log, and the server keeps
serving after each."""
import re

import pytest

from support.rawhttp import ConnectionClosed, IncompleteBody, build_request
from support.waiting import wait_until

SHORT_BODY = 512  # bytes: the 500 page says little and leaks nothing


def test_exception_before_start_response_gives_500_and_logs_the_traceback(server, token):
    offset = server.log_offset()
    response = server.get(f"/error?kind=before-start-response&token={token}")
    assert response.status == 500
    assert len(response.body) < SHORT_BODY
    assert token.encode() not in response.body  # the exception stays in the log
    log = server.wait_for_log(f"RuntimeError: app failed on purpose: {token}", since=offset)
    assert "Traceback (most recent call last)" in log
    server.assert_serving()


@pytest.mark.parametrize("kind", ["after-start-response", "first-item"])
def test_exception_before_any_body_byte_gives_500(server, token, kind):
    offset = server.log_offset()
    response = server.get(f"/error?kind={kind}&token={token}")
    assert response.status == 500
    assert len(response.body) < SHORT_BODY
    server.wait_for_log(f"RuntimeError: app failed on purpose: {token}", since=offset)
    server.assert_serving()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_exception_after_the_head_is_sent_cuts_the_connection(server, token, framing):
    offset = server.log_offset()
    length = "&length=1000" if framing == "content-length" else ""
    with server.connect() as conn:
        conn.send(build_request("GET", f"/error?kind=after-body&token={token}{length}"))
        # A truncated body: no final chunk, or fewer bytes than announced.
        with pytest.raises(IncompleteBody) as truncated:
            conn.read_response()
    assert truncated.value.response.status == 200
    assert truncated.value.response.framing == framing
    assert truncated.value.response.body.startswith(b"partial body;")
    server.wait_for_log(f"RuntimeError: app failed on purpose: {token}", since=offset)
    server.assert_serving()


# kind -> the type the log must name
BAD_RESULTS = {"str-item": "str", "return-none": "NoneType", "return-int": "int"}


@pytest.mark.parametrize("kind", list(BAD_RESULTS))
def test_bad_response_iterable_gives_500_and_a_log_message_naming_the_type(server, kind):
    offset = server.log_offset()
    response = server.get(f"/error?kind={kind}")
    assert response.status == 500
    assert len(response.body) < SHORT_BODY
    type_named = re.compile(rf"\b{BAD_RESULTS[kind]}\b")
    wait_until(lambda: type_named.search(server.log_since(offset)), 30, f"the log names {BAD_RESULTS[kind]}")
    server.assert_serving()


def test_app_that_never_calls_start_response_gives_500_and_says_so_in_the_log(server):
    offset = server.log_offset()
    response = server.get("/error?kind=no-start-response")
    assert response.status == 500
    assert "start_response" in server.wait_for_log("start_response", since=offset)
    server.assert_serving()


def test_error_response_keeps_http_framing_for_pipelined_requests(server, token):
    with server.connect() as conn:
        conn.send(build_request("GET", f"/error?kind=before-start-response&token={token}")
                  + build_request("GET", "/ping"))
        assert conn.read_response().status == 500
        try:
            follow_up = conn.read_response()
        except (ConnectionClosed, ConnectionResetError):  # closing after a 500 is allowed; garbage is not
            follow_up = None
        if follow_up is not None:
            assert follow_up.body == b"pong"
    server.assert_serving()
