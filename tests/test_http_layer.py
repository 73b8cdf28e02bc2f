"""The HTTP layer on its own, in-process, without a socket: a client's
bytes go through the same parsing path a connection drives (http/reader.c,
exposed as _core._parse_requests), read whole, split at every byte, and a
byte at a time. Each case is a specification by example: raw bytes in, the
requests (spans, body, framing) or the refusal out."""
import pytest

from ursa import _core

HOST = b"Host: example\r\n"


def parse(data, cuts=(), **options):
    return _core._parse_requests(data, list(cuts), **options)


def request(method="GET", target=b"/", headers=((b"Host", b"example"),), body=b"", version=(1, 1),
            keep_alive=True, chunked=False):
    return {"method": method, "target": target, "version": version, "headers": list(headers), "body": body,
            "keep_alive": keep_alive, "chunked": chunked, "in_file": False}


# name -> (bytes, expected events)
SPECIFICATIONS = {
    "simple GET": (b"GET /path?query=1 HTTP/1.1\r\nHost: example\r\n\r\n",
                   [request(target=b"/path?query=1")]),
    "headers keep their case and order, values lose surrounding space": (
        b"GET / HTTP/1.1\r\nHost: example\r\nX-Two:  b  \r\nx-one:a\r\n\r\n",
        [request(headers=[(b"Host", b"example"), (b"X-Two", b"b"), (b"x-one", b"a")])]),
    "Content-Length body": (b"POST /p HTTP/1.1\r\n" + HOST + b"Content-Length: 11\r\n\r\nhello world",
                            [request("POST", b"/p", [(b"Host", b"example"), (b"Content-Length", b"11")],
                                     b"hello world")]),
    "chunked body with extensions and trailers": (
        b"POST /c HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\n",
        [request("POST", b"/c", [(b"Host", b"example"), (b"Transfer-Encoding", b"chunked")], b"hello world",
                 chunked=True)]),
    "pipelined requests, in order": (
        b"GET /1 HTTP/1.1\r\n" + HOST + b"\r\nPOST /2 HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\n" + HOST + b"\r\n",
        [request(target=b"/1"), request("POST", b"/2", [(b"Host", b"example"), (b"Content-Length", b"3")], b"abc"),
         request(target=b"/3")]),
    "HTTP/1.0 closes unless it asks for keep-alive": (
        b"GET /a HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n",
        [request(target=b"/a", headers=[], version=(1, 0), keep_alive=False)]),
    "Connection: close ends the connection after the request": (
        b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n" + HOST + b"\r\n",
        [request(headers=[(b"Host", b"example"), (b"Connection", b"close")], keep_alive=False)]),
    "an incomplete request is held": (b"GET / HTTP/1.1\r\nHo", [{"incomplete": True}]),
    "a body still arriving is held": (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\nabc",
                                      [{"incomplete": True}]),
}

# name -> (bytes, status, options)
REFUSALS = {
    "Content-Length and Transfer-Encoding": (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\n"
                                             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, {}),
    "two Content-Length values": (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n",
                                  400, {}),
    "chunk data not followed by CRLF": (b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                                        b"3\r\nabcXY0\r\n\r\n", 400, {}),
    "Transfer-Encoding in HTTP/1.0": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, {}),
    "obsolete line folding": (b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n", 400, {}),
    "HTTP/1.1 without Host": (b"GET / HTTP/1.1\r\n\r\n", 400, {}),
    "a Host with two ports": (b"GET / HTTP/1.1\r\nHost: h:80:90\r\n\r\n", 400, {}),
    "an unknown version": (b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", 505, {}),
    "a target past max_request_line": (b"GET /" + b"x" * 100 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414,
                                       {"max_request_line": 64}),
    "more fields than max_headers": (b"GET / HTTP/1.1\r\n" + HOST + b"A: 1\r\nB: 2\r\n\r\n", 431,
                                     {"max_headers": 2}),
    "a declared body past max_body_size": (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 11\r\n\r\n", 413,
                                           {"max_body_size": 10}),
    "a chunk past what is left of max_body_size": (b"POST / HTTP/1.1\r\n" + HOST +
                                                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n", 413,
                                                   {"max_body_size": 10}),
    "an expectation other than 100-continue": (b"GET / HTTP/1.1\r\n" + HOST + b"Expect: tea\r\n\r\n", 417, {}),
}


def every_split(data):
    """One read, then every split into two reads, then a byte per read."""
    yield ()
    for cut in range(1, len(data)):
        yield (cut,)
    yield tuple(range(1, len(data)))


@pytest.mark.parametrize("name", list(SPECIFICATIONS))
def test_requests_parse_to_their_specification_however_the_bytes_are_split(name):
    data, expected = SPECIFICATIONS[name]
    for cuts in every_split(data):
        assert parse(data, cuts) == expected, (name, cuts)


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_are_the_same_however_the_bytes_are_split(name):
    data, status, options = REFUSALS[name]
    outcomes = {repr(parse(data, cuts, **options)) for cuts in every_split(data)}
    (outcome,) = outcomes
    events = parse(data, **options)
    assert events[-1]["refused"] == status, events
    assert events[-1]["reason"], events


def test_nothing_after_a_refusal_is_read_as_a_request():
    data = (b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n")
    events = parse(data)
    assert [event.get("refused") for event in events] == [400]


def test_a_body_past_body_buffer_size_is_kept_in_a_file_and_arrives_whole():
    body = bytes(range(256)) * 64
    data = b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % len(body) + body
    for cuts in [(), (len(data) - len(body) + 1000,), tuple(range(100, len(data), 1000))]:
        (event,) = parse(data, cuts, body_buffer_size=4096)
        assert event["in_file"] is True
        assert event["body"] == body


def test_a_chunked_body_split_inside_its_framing_decodes_the_same():
    chunks = [b"a" * 5, b"b" * 300, b"c" * 17]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    data = b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + framed
    head_length = len(data) - len(framed)
    for cut in range(head_length, len(data)):
        (event,) = parse(data, (cut,))
        assert event["body"] == b"".join(chunks), cut
