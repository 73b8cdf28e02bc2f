"""Clients that vanish at any point of a request or response, with a FIN or
a reset: the server's open file descriptors return to their baseline (the
client socket and any body spill file are closed), the app's iterable is
closed exactly once, and the server goes on serving."""
import itertools
import time

import pytest

from support.rawhttp import build_request
from support.waiting import wait_until

_serial = itertools.count()
BIG_STREAM = 1 << 30  # never read to the end by these tests


@pytest.fixture(scope="module")
def spilling(module_pool):
    """Bodies above 64 KiB go to a temporary file: a vanished uploader must
    not leave that file open."""
    return module_pool.start(name="spilling", options={"body_buffer_size": 65536})


@pytest.fixture(scope="module")
def idle_fds(spilling):
    return spilling.fd_count()


def vanish(conn, how):
    if how == "reset":
        conn.abort()
    else:
        conn.close()


def post_head(length=None, chunked=False, extra=()):
    headers = list(extra)
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(length)))
    return build_request("POST", "/digest", headers)


# Descriptors the server holds for each partial request: the socket, and
# the spill file of a body larger than body_buffer_size.
SPILLED = {"mid-body-spilled-to-file", "mid-chunked-body-spilled"}

PARTIAL_REQUESTS = {
    "mid-request-line": b"GET /pi",
    "mid-headers": b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Half: va",
    "mid-body-in-memory": post_head(1000) + b"a" * 500,
    "mid-body-spilled-to-file": post_head(8 << 20) + b"a" * (1 << 20),
    "mid-chunked-body-spilled": post_head(chunked=True) + (b"10000\r\n" + b"c" * 65536 + b"\r\n") * 4 + b"100\r\nabc",
    "mid-chunk-size": post_head(chunked=True) + b"5\r\nhello\r\nff",
    "mid-trailers": post_head(chunked=True) + b"5\r\nhello\r\n0\r\nX-Trailer: ha",
    "after-expect-100-continue": post_head(4096, extra=[("Expect", "100-continue")]),
    "after-a-refused-request": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n" + b"junk" * 10000,
}


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("moment", sorted(PARTIAL_REQUESTS))
def test_client_vanishing_while_sending_leaves_no_descriptor_behind(spilling, idle_fds, moment, how):
    conn = spilling.connect()
    try:
        conn.send(PARTIAL_REQUESTS[moment])
        if moment == "after-expect-100-continue":
            assert conn.read_line() == b"HTTP/1.1 100 Continue"
        if moment != "after-a-refused-request":  # that one may be closed already
            held = 2 if moment in SPILLED else 1
            wait_until(lambda: spilling.fd_count() == idle_fds + held, 10,
                       f"the server holds {held} descriptors for the request in progress")
    finally:
        vanish(conn, how)
    spilling.wait_fd_count(idle_fds)
    spilling.assert_serving()


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("route", ["stream", "generator"])
@pytest.mark.parametrize("moment", ["before-reading", "after-the-head", "mid-body"])
def test_client_vanishing_during_a_response_closes_the_iterable_once(spilling, idle_fds, route, moment, how):
    token = f"vanish-{route}-{moment}-{how}-{next(_serial)}"
    conn = spilling.connect()
    try:
        conn.send(build_request("GET", f"/{route}?token={token}&size={BIG_STREAM}"))
        if moment == "after-the-head":
            conn.read_head()
        elif moment == "mid-body":
            conn.read_head()
            conn.read_exactly(1 << 20)
    finally:
        vanish(conn, how)
    entry = spilling.wait_record(token, lambda r: r["close_calls"] > 0, "the iterable is closed")
    assert entry["close_calls"] == 1 and not entry["exhausted"], entry
    spilling.wait_fd_count(idle_fds)
    time.sleep(0.1)
    assert spilling.record(token)["close_calls"] == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_vanishing_with_pipelined_requests_unanswered_closes_every_started_iterable(spilling, idle_fds, how):
    tokens = [f"pipelined-{how}-{i}-{next(_serial)}" for i in range(20)]
    conn = spilling.connect()
    try:
        conn.send(b"".join(build_request("GET", f"/stream?token={token}&size={256 << 10}") for token in tokens))
        conn.read_response()  # the first is answered; the rest are queued or in flight
    finally:
        vanish(conn, how)
    spilling.wait_fd_count(idle_fds)
    for token in tokens:
        entry = spilling.record(token)
        assert entry["close_calls"] == entry["calls"], (token, entry)
    spilling.assert_serving()


def test_many_vanishing_clients_in_a_row_leave_the_server_at_its_baseline(spilling, idle_fds):
    """Every kind of vanishing, over and over, on 50 connections at once."""
    conns = []
    for i in range(50):
        conn = spilling.connect()
        request = list(PARTIAL_REQUESTS.values())[i % len(PARTIAL_REQUESTS)]
        if i % 3 == 0:
            request = build_request("GET", f"/generator?token=crowd-{i}-{next(_serial)}&size={BIG_STREAM}")
        conn.send(request)
        conns.append(conn)
    time.sleep(0.2)
    for i, conn in enumerate(conns):
        vanish(conn, "reset" if i % 2 else "close")
    spilling.wait_fd_count(idle_fds)
    spilling.assert_serving()
