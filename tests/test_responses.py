"""Response framing and headers: Content-Length, chunked, close-delimited,
bodiless responses (HEAD, 204, 304), Date and Server, very large bodies, and
the error responses for requests the server refuses."""
import email.utils
import hashlib
import http.client
import re
import time
from urllib.parse import urlencode

import pytest
import requests

from support.rawhttp import ConnectionClosed, IncompleteBody, build_request


def test_app_status_line_and_headers_are_sent_as_given(server):
    target = "/status?" + urlencode({"line": "418 I'm a teapot"})
    response = server.get(target)
    assert (response.status, response.reason) == (418, "I'm a teapot")
    response = server.get("/headers?" + urlencode({"h": "X-CamelCase-Name:a value: with colon"}))
    assert ("X-CamelCase-Name", "a value: with colon") in response.headers


def test_app_body_longer_than_its_content_length_is_cut_at_the_length(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/wrong-length?declared=5&actual=50") + build_request("GET", "/ping"))
        assert conn.read_response().body == b"w" * 5
        # Either the next response follows, or the connection is closed: never stray bytes.
        try:
            follow_up = conn.read_response()
        except (ConnectionClosed, ConnectionResetError):
            follow_up = None
        if follow_up is not None:
            assert follow_up.body == b"pong"
    server.assert_serving()


def test_app_body_shorter_than_its_content_length_closes_the_connection(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/wrong-length?declared=50&actual=5"))
        with pytest.raises(IncompleteBody) as truncated:
            conn.read_response()
        assert truncated.value.response.body == b"w" * 5
    server.assert_serving()


def test_app_content_length_is_used_without_chunking(server):
    response = server.get("/sized?size=10")
    assert response.header("Content-Length") == "10"
    assert response.header("Transfer-Encoding") is None
    assert response.body == b"x" * 10


def test_response_without_length_on_http11_is_chunked_and_keeps_the_connection(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/unsized?parts=alpha,beta,gamma"))
        response = conn.read_response()
        assert response.header("Transfer-Encoding") == "chunked"
        assert response.header("Content-Length") is None
        assert response.body == b"alphabetagamma"
        conn.send(build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"


def test_http10_keep_alive_request_for_a_body_of_unknown_length_is_delimited_by_close(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/unsized", [("Connection", "keep-alive")], version="HTTP/1.0"))
        response = conn.read_response()
        assert response.framing == "close"
        assert (response.header("Connection") or "").lower() != "keep-alive"
        assert response.body == b"alphabetagamma"


def test_response_without_length_on_http10_is_delimited_by_closing_the_connection(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/unsized?parts=alpha,beta,gamma", version="HTTP/1.0"))
        response = conn.read_response()
    assert response.framing == "close"
    assert response.header("Transfer-Encoding") is None
    assert response.body == b"alphabetagamma"


@pytest.mark.parametrize("target", ["/sized?size=10", "/unsized", "/iter?kind=generator"])
def test_head_response_carries_no_body(server, target):
    with server.connect() as conn:
        # Pipelined: a body after the HEAD response would be read as the next response.
        conn.send(build_request("HEAD", target) + build_request("GET", "/ping"))
        head = conn.read_response("HEAD")
        assert head.status == 200
        assert conn.read_response().body == b"pong"


def test_head_response_keeps_the_apps_content_length(server):
    response = server.request("HEAD", "/sized?size=10")
    assert response.header("Content-Length") == "10"


@pytest.mark.parametrize("code", [204, 304])
def test_no_content_and_not_modified_responses_carry_no_body(server, code):
    with server.connect() as conn:
        conn.send(build_request("GET", f"/status?code={code}") + build_request("GET", "/ping"))
        response = conn.read_response()
        assert response.status == code
        assert response.header("Transfer-Encoding") is None
        assert conn.read_response().body == b"pong"


@pytest.mark.parametrize("code, length", [(204, "0"), (304, "0"), (304, "1234")])
def test_content_length_from_the_app_is_dropped_from_204_and_304(server, code, length):
    """RFC 9110 8.6: no Content-Length in a 204; a 304's would be another
    response's length. Django adds one to 204s, Zope to 304s."""
    with server.connect() as conn:
        conn.send(build_request("GET", f"/status?code={code}&length={length}") + build_request("GET", "/ping"))
        response = conn.read_response()
        assert response.status == code
        assert response.headers_named("Content-Length") == []
        assert response.header("Transfer-Encoding") is None
        assert conn.read_response().body == b"pong"


def test_the_same_content_length_twice_from_the_app_is_sent_once(server):
    body = b"headers set by the app"
    length = f"Content-Length:{len(body)}"
    response = server.get("/headers?" + urlencode([("h", length), ("h", length)]))
    assert (response.status, response.body) == (200, body)
    assert response.headers_named("Content-Length") == [str(len(body))]


def test_head_request_iterable_is_consumed_and_closed(server, token):
    with server.connect() as conn:
        conn.send(build_request("HEAD", f"/iter?kind=custom&token={token}"))
        assert conn.read_response("HEAD").status == 200
        conn.send(build_request("GET", f"/record?token={token}"))
        record = conn.read_response().json()
    assert record["close_calls"] == 1
    assert record["exhausted"] is True
    assert record["items_pulled"] == 3


IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                         r"\d{4} \d\d:\d\d:\d\d GMT")


def test_date_header_is_added_as_the_current_time_in_http_format(server):
    date = server.get("/ping").header("Date")
    assert date is not None and IMF_FIXDATE.fullmatch(date), date
    # A generous bound: the point is that it is today's date, not a constant.
    assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 3600


def test_server_header_is_added(server):
    assert server.get("/ping").header("Server")


def test_server_header_set_by_the_app_is_kept_and_not_repeated(server):
    response = server.get("/headers?" + urlencode({"h": "Server:custom-server/1.0"}))
    assert response.header("Server") == "custom-server/1.0"


def test_date_header_set_by_the_app_is_kept_and_not_repeated(server):
    response = server.get("/headers?" + urlencode({"h": "Date:Tue, 15 Nov 1994 08:12:31 GMT"}))
    assert response.header("Date") == "Tue, 15 Nov 1994 08:12:31 GMT"


def test_ten_mib_response_with_content_length_arrives_intact(server, apps_module):
    size = 10 << 20
    digest = hashlib.sha256()
    received = 0
    with requests.get(server.url(f"/big?size={size}&length=1"), stream=True, timeout=60) as response:
        assert response.headers["Content-Length"] == str(size)
        for chunk in response.iter_content(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == apps_module.pattern_sha256(size)


def test_hundred_mib_chunked_response_arrives_intact(server, apps_module):
    size = 100 << 20
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", f"/big?size={size}")
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        digest = hashlib.sha256()
        received = 0
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    finally:
        connection.close()
    assert received == size
    assert digest.hexdigest() == apps_module.pattern_sha256(size)


def test_pipelined_large_responses_arrive_whole_and_in_order(server, apps_module):
    sizes = [3 << 20, 1, 5 << 20]
    with server.connect() as conn:
        conn.send(b"".join(build_request("GET", f"/big?size={size}") for size in sizes))
        for size in sizes:
            body = conn.read_response().body
            assert len(body) == size
            assert hashlib.sha256(body).hexdigest() == apps_module.pattern_sha256(size)


BAD_REQUESTS = {
    "not-http": b"GARBAGE\r\n\r\n",
    "bad-version": b"GET / HTTP/x.y\r\nHost: x\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n",
    "non-numeric-content-length": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "conflicting-content-lengths": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                   b"Content-Length: 2\r\n\r\nab",
    "content-length-and-chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad-chunk-size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk-data-longer-than-its-size": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       b"5\r\nhelloXX\r\n0\r\n\r\n",
}

SHORT_BODY = 512  # bytes: an error response says what is wrong, briefly


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_request_rejected_by_the_parser_gets_400_with_a_short_body_then_close(server, name):
    with server.connect() as conn:
        conn.send(BAD_REQUESTS[name])
        response = conn.read_response()
        assert response.status == 400, response
        assert len(response.body) < SHORT_BODY
        assert conn.is_closed_by_server()
    server.assert_serving()


@pytest.mark.parametrize("encoding", ["gzip", "gzip, chunked"])
def test_unknown_transfer_encoding_gets_501(server, encoding):
    with server.connect() as conn:
        conn.send(f"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {encoding}\r\n\r\n".encode()
                  + b"5\r\nhello\r\n0\r\n\r\n")
        response = conn.read_response()
        assert response.status == 501, response
        assert len(response.body) < SHORT_BODY
        assert conn.is_closed_by_server()
    server.assert_serving()


def test_bad_request_after_a_good_one_on_the_same_connection_gets_400(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/ping") + b"NOT A REQUEST LINE\r\n\r\n")
        assert conn.read_response().body == b"pong"
        assert conn.read_response().status == 400
        assert conn.is_closed_by_server()
    server.assert_serving()
