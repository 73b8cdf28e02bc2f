"""HTTP/1.x request handling: keep-alive, Connection: close, pipelining,
request bodies (Content-Length and chunked, split at every byte),
Expect: 100-continue and bodies large enough to spill to a temporary file."""
import hashlib
import os
import time

import pytest
import requests

from support.processes import RSS_IS_MEANINGFUL
from support.rawhttp import build_request

# Between the two parts of a split request: long enough that the server
# usually reads the first part on its own. The tests are correct whatever
# the timing; a shorter pause only makes a split less likely to be seen.
SPLIT_PAUSE = 0.002


def test_http11_connection_stays_open_for_the_next_request(server):
    with server.connect() as conn:
        for text in ("one", "two", "three"):
            conn.send(build_request("GET", f"/say?text={text}"))
            response = conn.read_response()
            assert response.body == text.encode()
            assert (response.header("Connection") or "").lower() != "close"


def test_http10_request_with_connection_keep_alive_is_kept_alive(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/say?text=first", [("Connection", "keep-alive")], version="HTTP/1.0"))
        response = conn.read_response()
        assert response.body == b"first"
        assert response.header("Connection").lower() == "keep-alive"
        conn.send(build_request("GET", "/say?text=second", [("Connection", "keep-alive")], version="HTTP/1.0"))
        assert conn.read_response().body == b"second"


def test_http10_request_without_keep_alive_is_closed_after_the_response(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/say?text=only", version="HTTP/1.0"))
        assert conn.read_response().body == b"only"
        assert conn.is_closed_by_server()


def test_client_connection_close_makes_the_server_close_after_the_response(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/say?text=bye", [("Connection", "close")]))
        assert conn.read_response().body == b"bye"
        assert conn.is_closed_by_server()


def test_app_connection_close_header_makes_the_server_close_after_the_response(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/headers?h=Connection:close"))
        response = conn.read_response()
        assert response.body == b"headers set by the app"
        assert response.header("Connection").lower() == "close"
        assert conn.is_closed_by_server()


def test_pipelined_request_after_connection_close_is_not_answered(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/say?text=last", [("Connection", "close")])
                  + build_request("GET", "/say?text=ignored"))
        assert conn.read_response().body == b"last"
        assert conn.is_closed_by_server()


def test_ten_pipelined_requests_in_one_send_are_all_answered_in_order(server):
    with server.connect() as conn:
        conn.send(b"".join(build_request("GET", f"/say?text=request{index}") for index in range(10)))
        bodies = [conn.read_response().body for _ in range(10)]
    assert bodies == [f"request{index}".encode() for index in range(10)]


def test_pipelined_requests_with_bodies_are_answered_in_order(server):
    payloads = [f"body number {index} ".encode() * (index + 1) for index in range(10)]
    with server.connect() as conn:
        conn.send(b"".join(build_request("POST", "/echo", body=payload) for payload in payloads))
        bodies = [conn.read_response().body for _ in payloads]
    assert bodies == payloads


def test_content_length_body_reaches_the_app(server):
    response = server.request("POST", "/echo", body=b"hello, body")
    assert response.body == b"hello, body"


def test_content_length_body_split_at_every_byte_gives_the_same_body(server):
    request = build_request("POST", "/environ", [("Content-Type", "text/plain")], body=b"0123456789abcdef")
    with server.connect() as conn:
        conn.send(request)
        expected = conn.read_response().json()
        assert expected["body"] == "0123456789abcdef"
        for split in range(1, len(request)):
            conn.send(request[:split])
            time.sleep(SPLIT_PAUSE)
            conn.send(request[split:])
            assert conn.read_response().json() == expected, f"split at byte {split}"


CHUNK_LAYOUTS = {
    "one-chunk": (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    "one-byte-chunks": (b"".join(b"1\r\n%c\r\n" % byte for byte in b"hello") + b"0\r\n\r\n", b"hello"),
    "uppercase-hex-and-leading-zeros": (b"00A\r\n0123456789\r\n000\r\n\r\n", b"0123456789"),
    "lowercase-hex": (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    "chunk-extensions": (b"5;name=value\r\nhello\r\n6;flag;other=x\r\n world\r\n0;last=yes\r\n\r\n",
                         b"hello world"),
    "quoted-chunk-extension": (b'5;name="a quoted; value"\r\nhello\r\n0\r\n\r\n', b"hello"),
    "trailers": (b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n", b"hello"),
    "framing-lookalikes-in-data": (b"9\r\n0\r\n\r\nab\r\n\r\n0\r\n\r\n", b"0\r\n\r\nab\r\n"),
    "binary-data": (b"100\r\n" + bytes(range(256)) + b"\r\n0\r\n\r\n", bytes(range(256))),
    "large-chunk": (b"186a0\r\n" + b"z" * 100000 + b"\r\n0\r\n\r\n", b"z" * 100000),
    "empty-body": (b"0\r\n\r\n", b""),
}


def chunked_request(chunks, target="/environ"):
    return build_request("POST", target, [("Transfer-Encoding", "chunked"), ("X-Probe", "yes")]) + chunks


@pytest.mark.parametrize("layout", list(CHUNK_LAYOUTS))
def test_chunked_body_reaches_the_app_decoded(server, layout):
    chunks, body = CHUNK_LAYOUTS[layout]
    with server.connect() as conn:
        conn.send(chunked_request(chunks))
        report = conn.read_response().json()
        assert report["body"].encode("latin-1") == body
        # The whole chunked body was consumed: the connection serves the next request.
        conn.send(build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"


def test_chunked_request_has_input_terminated_and_no_content_length(server):
    report = server.request("POST", "/environ", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\n\r\n").json()
    assert report["environ"]["wsgi.input_terminated"] is True
    assert "CONTENT_LENGTH" not in report["environ"]


def test_chunked_request_split_at_every_byte_gives_the_same_environ_and_body(server):
    request = chunked_request(b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                              b"0\r\nX-Trailer: done\r\n\r\n")
    with server.connect() as conn:
        conn.send(request)
        expected = conn.read_response().json()
        assert expected["body"] == "Wikipedia in\r\n\r\nchunks."
        for split in range(1, len(request)):
            conn.send(request[:split])
            time.sleep(SPLIT_PAUSE)
            conn.send(request[split:])
            assert conn.read_response().json() == expected, f"split at byte {split}"


def test_chunked_request_sent_one_byte_at_a_time_gives_the_same_environ_and_body(server):
    request = chunked_request(b"3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n")
    with server.connect() as conn:
        conn.send(request)
        expected = conn.read_response().json()
        for byte in request:
            conn.send(bytes([byte]))
        assert conn.read_response().json() == expected


def test_expect_100_continue_is_answered_before_the_client_sends_the_body(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/echo", [("Content-Length", "14"), ("Expect", "100-continue")]))
        # The body is not sent yet: a server that waits for it never answers here.
        interim = conn.read_response()
        assert (interim.version, interim.status, interim.reason) == ("HTTP/1.1", 100, "Continue")
        conn.send(b"body after 100")
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"body after 100")


def test_expect_100_continue_with_chunked_body(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked"), ("Expect", "100-continue")]))
        assert conn.read_response().status == 100
        conn.send(b"5\r\nhello\r\n0\r\n\r\n")
        assert conn.read_response().body == b"hello"


def test_expect_100_continue_from_an_http10_client_is_ignored(server):
    # RFC 9110 10.1.1: a 100 (Continue) is never sent to an HTTP/1.0 client.
    with server.connect() as conn:
        conn.send(build_request("POST", "/echo", [("Expect", "100-continue")], b"hello", version="HTTP/1.0"))
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"hello")


@pytest.mark.parametrize("size", [(1 << 20) - 1, 1 << 20, (1 << 20) + 1])
def test_body_around_the_one_mib_spill_threshold_arrives_intact(server, size):
    body = os.urandom(size)
    result = requests.post(server.url("/hash"), data=body, timeout=60).json()
    assert result == {"length": size, "sha256": hashlib.sha256(body).hexdigest()}


def test_five_mib_content_length_upload_arrives_intact(server):
    body = os.urandom(5 << 20)
    result = requests.post(server.url("/hash"), data=body, timeout=60).json()
    assert result == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_five_mib_chunked_upload_arrives_intact(server):
    body = os.urandom(5 << 20)

    def chunks():  # a generator makes requests send Transfer-Encoding: chunked
        for start in range(0, len(body), 100_000):
            yield body[start:start + 100_000]
    result = requests.post(server.url("/hash"), data=chunks(), timeout=60).json()
    assert result == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_five_mib_upload_is_echoed_intact(server):
    body = os.urandom(5 << 20)
    response = requests.post(server.url("/echo"), data=body, timeout=60)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(body).hexdigest()


def test_body_the_app_does_not_read_is_skipped_before_the_next_request(server):
    with server.connect() as conn:
        conn.send(build_request("POST", "/say?text=unread", body=b"GET /ping HTTP/1.1\r\n\r\n" * 5000)
                  + build_request("GET", "/say?text=next"))
        assert conn.read_response().body == b"unread"
        assert conn.read_response().body == b"next"


def test_large_body_is_kept_in_an_anonymous_temporary_file_not_in_memory(server):
    baseline = server.get_json("/stats")["rss_kib"]
    body = b"m" * (64 << 20)
    with server.connect() as conn:
        conn.send(build_request("POST", "/body-residence", body=body))
        report = conn.read_response().json()
    assert report["content_length"] == str(len(body))
    assert report["anonymous_files"], "no temporary file holds the 64 MiB body"
    growth_mib = (report["rss_kib"] - baseline) / 1024
    print(f"\n[figure] RSS growth with a 64 MiB request body in the app: {growth_mib:.1f} MiB")
    if RSS_IS_MEANINGFUL:
        assert growth_mib < 32


def test_small_body_is_kept_in_memory(server):
    report = server.request("POST", "/body-residence", body=b"small").json()
    assert report["anonymous_files"] == []
