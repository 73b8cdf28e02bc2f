"""What clients can make one worker hold: request bytes in memory
(max_buffered_bytes) and in temporary files (max_spill_bytes). Past the
memory budget a head gets 503 and a body moves to disk; past the spill
budget a body gets 503; memory a burst took is given back when it ends; a
declared length alone opens no file."""
import hashlib
import os
import resource
import socket

import pytest

from support.processes import SANITIZED
from support.rawhttp import build_request
from support.waiting import wait_until

from .harness import assert_rejected

KIB = 1024
MIB = 1024 * KIB


def raise_open_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def incomplete_head(size):
    """A request head of about ``size`` bytes, in 1 KB lines, without its end."""
    lines = [b"X-Pad-%d: %s\r\n" % (index, b"a" * 1000) for index in range(size // 1012)]
    return b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"".join(lines)


def spill_files_of(server):
    return [target for target in server.fds().values() if target.endswith("(deleted)")]


def open_connections(server, count, data):
    socks = []
    for _ in range(count):
        sock = socket.create_connection(server.socket_address()[1], timeout=30)
        sock.sendall(data)
        socks.append(sock)
    return socks


def answers(socks):
    """{status: count} of what the server answered on ``socks`` so far
    (looked at, not consumed)."""
    seen = {}
    for sock in socks:
        timeout = sock.gettimeout()
        sock.setblocking(False)  # with a timeout, recv() would wait for data first
        try:
            data = sock.recv(16, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        finally:
            sock.settimeout(timeout)
        status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else 0
        seen[status] = seen.get(status, 0) + 1
    return seen


@pytest.mark.heavy
def test_memory_of_a_burst_of_incomplete_heads_is_bounded_and_given_back(hostile_pool):
    """3,000 connections each holding a 56 KB incomplete head once took a
    worker from 14 MB to 188 MB, and 175 MB stayed after they closed."""
    raise_open_file_limit(3000 + 256)
    server = hostile_pool.start(name="burst", options={"header_timeout": 60.0})
    rss_start = server.rss_kib()
    socks = open_connections(server, 3000, incomplete_head(56 * KIB))
    try:
        server.assert_serving()
        rss_peak = server.rss_kib()
        refused = wait_until(lambda: answers(socks).get(503), 30, "heads past max_buffered_bytes get 503")
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: server.fd_count() < 100, 30, "the connections are closed")
    server.assert_serving()
    rss_after = server.rss_kib()
    print(f"\nRSS {rss_start} KiB at start, {rss_peak} KiB with 3,000 incomplete 56 KB heads "
          f"({refused} refused with 503), {rss_after} KiB after they closed")
    if not SANITIZED:
        assert rss_peak - rss_start < 100 * 1024, "the default max_buffered_bytes is 64 MiB"
        assert rss_after - rss_start < 16 * 1024, "the burst's memory was not given back"


def test_head_past_max_buffered_bytes_gets_503_and_the_server_serves_on(hostile_pool):
    server = hostile_pool.start(name="small-budget", options={"max_buffered_bytes": 256 * KIB})
    socks = open_connections(server, 12, incomplete_head(40 * KIB))
    try:
        # 256 KiB hold at most six of the 40 KB heads: the others are refused.
        wait_until(lambda: answers(socks).get(503, 0) >= 4, 30, "heads past the budget get 503")
        assert set(answers(socks)) == {503}
        server.assert_serving()
    finally:
        for sock in socks:
            sock.close()
    with server.connect() as conn:
        conn.send(incomplete_head(40 * KIB) + b"\r\n")
        assert conn.read_response().status == 200, "the budget is back once the heads are gone"


def test_bodies_past_the_memory_budget_go_to_disk_and_arrive_whole(hostile_pool):
    server = hostile_pool.start(name="body-budget", options={"max_buffered_bytes": 256 * KIB,
                                                             "body_buffer_size": MIB})
    bodies = [os.urandom(200 * KIB) for _ in range(4)]
    conns = [server.connect() for _ in bodies]
    try:
        for conn, body in zip(conns, bodies):
            conn.send(build_request("POST", "/digest", body=body)[:-1])
        # Four bodies of 200 KB fit in memory_limit each, not in the budget.
        wait_until(lambda: len(spill_files_of(server)) >= 2, 10, "bodies past the budget are spilled")
        for conn, body in zip(conns, bodies):
            conn.send(body[-1:])
            response = conn.read_response()
            assert response.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    finally:
        for conn in conns:
            conn.close()


def test_a_declared_length_alone_opens_no_file(hostile_pool):
    """10,000 slow POSTs declaring 1 GB, one byte each, once opened 10,000
    temporary files, and the fd limit was reached."""
    server = hostile_pool.start(name="declared")
    conns = [server.connect() for _ in range(200)]
    try:
        for conn in conns:
            conn.send(build_request("POST", "/hit?token=declared", [("Content-Length", str(1 << 30))]) + b"x")
        server.assert_serving()
        assert spill_files_of(server) == []
    finally:
        for conn in conns:
            conn.close()


def test_body_past_max_spill_bytes_gets_503_and_the_budget_comes_back(hostile_pool):
    server = hostile_pool.start(name="spill-budget", options={"max_spill_bytes": 2 * MIB,
                                                              "body_buffer_size": 64 * KIB})
    with server.connect() as conn:
        conn.send(build_request("POST", "/hit?token=too-much", [("Content-Length", str(3 * MIB))]))
        try:
            conn.send(b"b" * (3 * MIB))
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_rejected(conn, 503, reason="room for request bodies is full")
    assert server.record("too-much")["calls"] == 0
    wait_until(lambda: not spill_files_of(server), 10, "the refused body's file is closed")
    body = os.urandom(MIB + 1)
    with server.connect() as conn:
        conn.send(build_request("POST", "/digest", body=body))
        assert conn.read_response().json()["length"] == len(body)


def test_write_past_max_spill_bytes_raises_in_the_app(hostile_pool):
    server = hostile_pool.start(name="spool-budget", options={"max_spill_bytes": MIB,
                                                              "body_buffer_size": 64 * KIB})
    sock = socket.create_connection(server.socket_address()[1], timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(build_request("GET", f"/write?size={32 * MIB}&token=spool-budget"))
        record = server.wait_record("spool-budget", lambda r: r.get("error"), "write() raises")
        assert "max_spill_bytes" in record["error"]
    finally:
        sock.close()
    server.assert_serving()
    wait_until(lambda: not spill_files_of(server), 10, "the backlog's file is closed")
