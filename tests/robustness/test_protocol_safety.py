"""Protocol safety (RFC 9112): every ambiguous or malformed request is
refused with a 4xx/5xx answer and a close, so that nothing sent after it on
the connection (a smuggled request) ever reaches the app; the server goes
on serving. Headers an app gives start_response never put CR, LF or NUL on
the wire."""
import itertools
import time

import pytest

from support.rawhttp import build_request

_tokens = itertools.count()


def smuggled_request(token):
    return f"GET /hit?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def head(*lines, method="POST", target="/hit?token=outer", version="HTTP/1.1"):
    return (f"{method} {target} {version}\r\n".encode("latin-1")
            + b"".join(line.encode("latin-1") + b"\r\n" for line in lines) + b"\r\n")


CHUNKED = "Transfer-Encoding: chunked"
HOST = "Host: x"

# name -> (request bytes, accepted statuses). After each, a complete GET is
# sent on the same connection: it must never be answered.
REFUSED = {
    # ---- two framings, or one that is ambiguous (RFC 9112 6.1, 6.3)
    "content-length-and-transfer-encoding": (head(HOST, "Content-Length: 6", CHUNKED) + b"0\r\n\r\n", {400}),
    "transfer-encoding-and-content-length": (head(HOST, CHUNKED, "Content-Length: 6") + b"0\r\n\r\n", {400}),
    "content-length-and-te-with-odd-case": (head(HOST, "Content-Length: 6", "transfer-ENCODING: Chunked")
                                            + b"0\r\n\r\n", {400}),
    "duplicate-content-length-differing": (head(HOST, "Content-Length: 5", "Content-Length: 6") + b"hello!", {400}),
    "duplicate-content-length-same": (head(HOST, "Content-Length: 5", "Content-Length: 5") + b"hello", {400}),
    "content-length-list": (head(HOST, "Content-Length: 5, 6") + b"hello!", {400}),
    "content-length-plus": (head(HOST, "Content-Length: +5") + b"hello", {400}),
    "content-length-negative": (head(HOST, "Content-Length: -5") + b"hello", {400}),
    "content-length-hex": (head(HOST, "Content-Length: 0x5") + b"hello", {400}),
    "content-length-inner-space": (head(HOST, "Content-Length: 5 5") + b"hello", {400}),
    "content-length-empty": (head(HOST, "Content-Length: ") + b"hello", {400}),
    "content-length-overflow": (head(HOST, "Content-Length: 99999999999999999999999") + b"hello", {400}),
    # ---- Transfer-Encoding other than a final "chunked"
    "te-gzip": (head(HOST, "Transfer-Encoding: gzip") + b"0\r\n\r\n", {501}),
    "te-identity": (head(HOST, "Transfer-Encoding: identity") + b"0\r\n\r\n", {501}),
    "te-gzip-chunked": (head(HOST, "Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n", {501}),
    "te-chunked-gzip": (head(HOST, "Transfer-Encoding: chunked, gzip") + b"0\r\n\r\n", {400, 501}),
    "te-chunked-identity": (head(HOST, "Transfer-Encoding: chunked, identity") + b"0\r\n\r\n", {400, 501}),
    "te-xchunked": (head(HOST, "Transfer-Encoding: xchunked") + b"0\r\n\r\n", {400, 501}),
    "te-chunkedx": (head(HOST, "Transfer-Encoding: chunkedx") + b"0\r\n\r\n", {400, 501}),
    "te-quoted": (head(HOST, 'Transfer-Encoding: "chunked"') + b"0\r\n\r\n", {400, 501}),
    "te-leading-comma": (head(HOST, "Transfer-Encoding: , chunked") + b"0\r\n\r\n", {400, 501}),
    "te-space-before-colon": (head(HOST, "Transfer-Encoding : chunked") + b"0\r\n\r\n", {400}),
    "te-tab-before-colon": (head(HOST, "Transfer-Encoding\t: chunked") + b"0\r\n\r\n", {400}),
    "te-vertical-tab": (head(HOST, "Transfer-Encoding: \x0bchunked") + b"0\r\n\r\n", {400, 501}),
    "te-form-feed": (head(HOST, "Transfer-Encoding: \x0cchunked") + b"0\r\n\r\n", {400, 501}),
    "te-repeated": (head(HOST, CHUNKED, CHUNKED) + b"0\r\n\r\n", {400, 501}),
    "te-chunked-then-other": (head(HOST, CHUNKED, "Transfer-Encoding: x") + b"0\r\n\r\n", {400, 501}),
    "te-obs-folded-value": (head(HOST, "Transfer-Encoding:", " chunked") + b"0\r\n\r\n", {400}),
    "te-folded-into-previous-line": (head(HOST, "X-Note: a", " Transfer-Encoding: chunked")
                                     + b"0\r\n\r\n", {400}),
    "te-folded-with-content-length": (head(HOST, "Content-Length: 5", "X-Note: a", " Transfer-Encoding: chunked")
                                      + b"hello", {400}),
    # ---- chunked framing itself
    "chunk-size-not-hex": (head(HOST, CHUNKED) + b"zz\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-negative": (head(HOST, CHUNKED) + b"-5\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-0x": (head(HOST, CHUNKED) + b"0x5\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-overflow": (head(HOST, CHUNKED) + b"10000000000000000\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-trailing-space": (head(HOST, CHUNKED) + b"5 \r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-empty": (head(HOST, CHUNKED) + b"\r\nhello\r\n0\r\n\r\n", {400}),
    "chunk-size-bare-lf": (head(HOST, CHUNKED) + b"5\nhello\r\n0\r\n\r\n", {400}),
    "chunk-data-longer-than-its-size": (head(HOST, CHUNKED) + b"5\r\nhelloworld\r\n0\r\n\r\n", {400}),
    "chunk-data-not-followed-by-crlf": (head(HOST, CHUNKED) + b"5\r\nhelloXX0\r\n\r\n", {400}),
    "chunk-data-followed-by-bare-lf": (head(HOST, CHUNKED) + b"5\r\nhello\n0\r\n\r\n", {400}),
    "last-chunk-without-empty-line": (head(HOST, CHUNKED) + b"0\r\n", {400}),
    # ---- header syntax (RFC 9112 5, RFC 9110 5.5)
    "obs-fold": (head(HOST, "X-Note: a", " b", method="GET"), {400}),
    "obs-fold-with-tab": (head(HOST, "X-Note: a", "\tb", method="GET"), {400}),
    "obs-fold-after-empty-value": (head(HOST, "X-Note:", " folded", method="GET"), {400}),
    "space-before-colon": (head("Host : x", method="GET"), {400}),
    "content-length-space-before-colon": (head(HOST, "Content-Length : 5") + b"hello", {400}),
    "leading-space-on-first-header": (head(" Host: x", method="GET"), {400}),
    "header-without-colon": (head(HOST, "X-No-Colon", method="GET"), {400}),
    "empty-header-name": (head(HOST, ": value", method="GET"), {400}),
    "header-name-with-space": (head(HOST, "X Note: a", method="GET"), {400}),
    "header-name-with-parenthesis": (head(HOST, "X(Note): a", method="GET"), {400}),
    "header-name-with-slash": (head(HOST, "X/Note: a", method="GET"), {400}),
    "header-name-with-comma": (head(HOST, "X,Note: a", method="GET"), {400}),
    "header-name-with-quote": (head(HOST, 'X"Note: a', method="GET"), {400}),
    "header-name-with-at": (head(HOST, "X@Note: a", method="GET"), {400}),
    "header-name-with-brackets": (head(HOST, "X[Note]: a", method="GET"), {400}),
    "header-name-with-del": (head(HOST, "X\x7fNote: a", method="GET"), {400}),
    "header-name-with-control": (head(HOST, "X\x01Note: a", method="GET"), {400}),
    "header-name-with-nul": (head(HOST, "X\x00Note: a", method="GET"), {400}),
    "header-name-with-latin1": (head(HOST, "X\xe9Note: a", method="GET"), {400}),
    "header-value-with-nul": (head(HOST, "X-Note: a\x00b", method="GET"), {400}),
    "header-value-with-bare-cr": (head(HOST, "X-Note: a\rb", method="GET"), {400}),
    "header-value-with-bare-lf": (head(HOST, "X-Note: a\nb", method="GET"), {400}),
    "header-value-with-control": (head(HOST, "X-Note: a\x01b", method="GET"), {400}),
    "header-value-with-del": (head(HOST, "X-Note: a\x7fb", method="GET"), {400}),
    "bare-lf-line-endings": (b"GET /hit?token=outer HTTP/1.1\nHost: x\n\n", {400}),
    "cr-without-lf-ending-the-head": (b"GET /hit?token=outer HTTP/1.1\r\nHost: x\r\r\n", {400}),
    "two-host-headers": (head(HOST, "Host: y", method="GET"), {400}),
    "missing-host-in-http11": (head(method="GET"), {400}),
    "host-with-space": (head("Host: exa mple", method="GET"), {400}),
    "host-with-two-ports": (head("Host: h:80:90", method="GET"), {400}),
    "host-port-not-digits": (head("Host: h:abc", method="GET"), {400}),
    "host-port-too-large": (head("Host: h:99999", method="GET"), {400}),
    "host-port-too-long": (head("Host: h:000080", method="GET"), {400}),
    "host-ip-literal-unclosed": (head("Host: [::1", method="GET"), {400}),
    "host-ip-literal-then-text": (head("Host: [::1]x", method="GET"), {400}),
    "host-bracket-in-name": (head("Host: h]", method="GET"), {400}),
    # ---- RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing
    "te-in-http10": (head(HOST, CHUNKED, version="HTTP/1.0") + b"5\r\nhello\r\n0\r\n\r\n", {400}),
    "te-in-http10-with-content-length": (head(HOST, "Content-Length: 5", CHUNKED, version="HTTP/1.0")
                                         + b"hello", {400}),
    # ---- the request line
    "http-0.9": (b"GET /hit?token=outer\r\n", {400, 505}),
    "version-0.9": (head(HOST, method="GET", version="HTTP/0.9"), {505}),
    "version-1.2": (head(HOST, method="GET", version="HTTP/1.2"), {505}),
    "version-2.0": (head(HOST, method="GET", version="HTTP/2.0"), {505}),
    "version-3.0": (head(HOST, method="GET", version="HTTP/3.0"), {505}),
    "version-lowercase": (head(HOST, method="GET", version="http/1.1"), {400}),
    "version-garbage": (head(HOST, method="GET", version="HTTP/x.y"), {400}),
    "version-trailing-text": (head(HOST, method="GET", version="HTTP/1.1 extra"), {400}),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505}),
    "rtsp-protocol": (head(HOST, method="GET", version="RTSP/1.0"), {400, 505}),
    "rtsp-method-and-protocol": (head(HOST, method="DESCRIBE", version="RTSP/1.0"), {400, 501, 505}),
    "rtsp-method-over-http": (head(HOST, method="ANNOUNCE"), {400, 501}),
    "unknown-method": (head(HOST, method="BREW"), {400, 501}),
    "lowercase-method": (head(HOST, method="get"), {400, 501}),
    "tab-after-method": (b"GET\t/hit?token=outer HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    "space-inside-target": (head(HOST, method="GET", target="/hit?token=outer x"), {400}),
    "nul-in-target": (head(HOST, method="GET", target="/hit?token=outer\x00"), {400}),
    "cr-in-target": (head(HOST, method="GET", target="/hit?token=outer\rx"), {400}),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_malformed_or_ambiguous_request_is_refused_and_what_follows_never_reaches_the_app(hostile, name):
    request, statuses = REFUSED[name]
    serial = next(_tokens)
    token, outer = f"smuggled-{name}-{serial}", f"outer-{name}-{serial}"
    request = request.replace(b"token=outer", b"token=" + outer.encode())
    with hostile.connect(timeout=10) as conn:
        conn.send(request + smuggled_request(token))
        response = conn.read_response()
        assert response.status in statuses, f"{name}: expected {sorted(statuses)} for {request!r}, got {response}"
        assert_rejected_tail(conn, response)
    assert hostile.record(token)["calls"] == 0, f"{name}: the request after {request!r} reached the app"
    assert hostile.record(outer)["calls"] == 0, f"{name}: the refused request reached the app"
    hostile.assert_serving()


def test_every_refusal_goes_through_the_access_log_and_the_server_survives_them_all(module_pool):
    """The access log sees refused requests too (with what was read of
    them): all of the above in a row, on a server that logs access."""
    server = module_pool.start(name="access-logging", access_log=True)
    answered = []
    for name in sorted(REFUSED):
        with server.connect(timeout=10) as conn:
            conn.send(REFUSED[name][0] + smuggled_request("access-log"))  # ends what waits for more
            answered.append(conn.read_response().status)
    logged = server.get_json("/access-log")
    refused = sorted(status for status in answered if status >= 400)
    assert sorted(status for _, status in logged if status >= 400) == refused, logged
    server.assert_serving()


def assert_rejected_tail(conn, response):
    assert response.header("Connection") == "close", response
    assert len(response.body) < 200 and response.body.startswith(str(response.status).encode()), response
    assert conn.is_closed_by_server()


# ---------------------------------------------------------------- accepted, unusual but valid

def served_environ(server, request):
    with server.connect(timeout=10) as conn:
        conn.send(request)
        response = conn.read_response()
    assert response.status == 200, response
    return response.json()


def test_transfer_encoding_coding_name_is_case_insensitive(hostile):
    environ = served_environ(hostile, head(HOST, "Transfer-Encoding: CHUNKED", target="/environ")
                             + b"5\r\nhello\r\n0\r\n\r\n")
    assert environ["body"] == "hello"


def test_transfer_encoding_with_tab_as_whitespace_is_chunked(hostile):
    environ = served_environ(hostile, head(HOST, "Transfer-Encoding:\tchunked ", target="/environ")
                             + b"5\r\nhello\r\n0\r\n\r\n")
    assert environ["body"] == "hello"


def test_header_named_with_underscores_is_dropped_and_cannot_pose_as_transfer_encoding(hostile):
    """"Transfer_Encoding" is a valid, different name: the body is framed by
    Content-Length, and the app never sees it as HTTP_TRANSFER_ENCODING."""
    token = f"underscore-{next(_tokens)}"
    request = (head(HOST, "Content-Length: 5", "Transfer_Encoding: chunked", target="/environ") + b"hello"
               + smuggled_request(token))
    with hostile.connect(timeout=10) as conn:
        conn.send(request)
        first = conn.read_response()
        second = conn.read_response()
    environ = first.json()
    assert environ["body"] == "hello"
    assert "HTTP_TRANSFER_ENCODING" not in environ
    assert second.body == b"hit 0"  # the next request is an ordinary pipelined one


def test_empty_line_before_the_request_line_is_ignored(hostile):
    """RFC 9112 2.2: a server SHOULD ignore at least one empty line first."""
    with hostile.connect(timeout=10) as conn:
        conn.send(b"\r\n" + build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"


def test_header_value_with_obs_text_reaches_the_app_as_latin1(hostile):
    environ = served_environ(hostile, head(HOST, "X-Note: caf\xe9 \xff", method="GET", target="/environ"))
    assert environ["HTTP_X_NOTE"] == "caf\xe9 \xff"


def test_content_length_with_leading_zeros_is_a_valid_length(hostile):
    environ = served_environ(hostile, head(HOST, "Content-Length: 005", target="/environ") + b"hello")
    assert environ["body"] == "hello"


def test_http10_request_with_transfer_encoding_is_refused_then_closed(hostile):
    """RFC 9112 6.1: such framing is faulty; it gets 400 and a close."""
    token = f"http10-te-{next(_tokens)}"
    with hostile.connect(timeout=10) as conn:
        conn.send(head(HOST, CHUNKED, version="HTTP/1.0") + b"0\r\n\r\n" + smuggled_request(token))
        response = conn.read_response()
        assert response.status == 400, response
        assert response.header("Connection") == "close", response
        assert conn.is_closed_by_server()
    assert hostile.record(token)["calls"] == 0


# ---------------------------------------------------------------- what the app sends

BAD_RESPONSE_CASES = ["value-crlf", "value-lf", "value-cr", "value-nul", "name-crlf", "name-lf", "name-nul",
                      "name-colon", "name-space", "status-crlf", "status-lf", "status-nul",
                      # RFC 9110 5.5: no control character but HTAB in a field value
                      "value-control-01", "value-control-1f", "value-control-vt", "value-del",
                      # framing a client and a proxy could read differently
                      "two-content-lengths", "transfer-coding",
                      # a WSGI app has no interim responses
                      "interim-100", "interim-101", "interim-103"]


def raw_exchange(server, request):
    with server.connect(timeout=10) as conn:
        conn.send(request)
        response = conn.read_response()
        return response, response.raw_head + response.body


@pytest.mark.parametrize("case", BAD_RESPONSE_CASES)
def test_start_response_refuses_what_would_break_or_mislead_the_response(hostile, case):
    response, raw = raw_exchange(hostile, build_request("GET", f"/bad-header?case={case}"))
    assert response.status == 200
    assert response.body.startswith(b"refused: ValueError"), response
    assert b"Injected" not in response.raw_head


@pytest.mark.parametrize("case", BAD_RESPONSE_CASES)
def test_app_that_lets_the_refusal_propagate_gets_a_500_and_nothing_of_its_header(hostile, case):
    response, raw = raw_exchange(hostile, build_request("GET", f"/bad-header-uncaught?case={case}"))
    assert response.status == 500, response
    assert b"Injected" not in raw
    hostile.assert_serving()


@pytest.mark.parametrize("case", ["two-content-lengths", "transfer-coding", "interim-103", "value-control-01"])
def test_refused_response_is_a_500_and_the_pipelined_request_after_it_is_answered_whole(hostile, case):
    """Two Content-Length values once went out as given: a client reading
    the first one took the rest of the body for the next response."""
    with hostile.connect(timeout=10) as conn:
        conn.send(build_request("GET", f"/bad-header-uncaught?case={case}") + build_request("GET", "/ping"))
        first = conn.read_response()
        assert first.status == 500, first
        assert b"Injected" not in first.raw_head
        second = conn.read_response()
        assert (second.status, second.body) == (200, b"pong"), second


def test_answer_to_an_unknown_version_does_not_depend_on_an_earlier_request(hostile):
    """The status must come from the request, not from stale bytes of the
    connection's read buffer: "GET / HTTP/1.3" arriving on its own is
    refused as soon as its last digit is read, and the byte just past it
    (offset 14) is whatever an earlier request left there."""
    statuses = []
    for earlier in (b"GET /ping?a=0123456789 HTTP/1.1\r\nHost: x\r\n\r\n",   # a digit at offset 14
                    b"GET /ping?a=abcdefghij HTTP/1.1\r\nHost: x\r\n\r\n"):  # a letter there
        with hostile.connect(timeout=10) as conn:
            conn.send(earlier)
            assert conn.read_response().status == 200
            conn.send(b"GET / HTTP/1.3")
            time.sleep(0.1)
            try:
                conn.send(b"\r\nHost: x\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            statuses.append(conn.read_response().status)
    assert statuses[0] == statuses[1], f"HTTP/1.3 answered {statuses[0]} or {statuses[1]} depending on an " \
                                       f"earlier request on the connection"


def test_connect_request_never_promises_the_app_a_body_it_cannot_read(hostile):
    """llhttp reads no body for CONNECT: its Content-Length must not reach
    the app as a CONTENT_LENGTH that wsgi.input cannot satisfy."""
    token = f"connect-{next(_tokens)}"
    with hostile.connect(timeout=10) as conn:
        conn.send(b"CONNECT /environ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  + smuggled_request(token))
        response = conn.read_response()
        if response.status == 200:
            environ = response.json()
            assert environ.get("CONTENT_LENGTH", "0") == str(len(environ["body"])), environ
        else:
            assert 400 <= response.status < 600, response
        assert conn.is_closed_by_server()
    assert hostile.record(token)["calls"] == 0
