"""Timeouts: a slowloris head and a stalled body get 408 and a close, an
idle keep-alive connection is closed silently, a client that stops reading
a streamed response is dropped and the app's iterable is closed. One slow
test checks that the default timeouts end such clients within 30 s."""
import select
import socket
import threading
import time

import pytest

import ursa

from support.rawhttp import build_request

from .harness import assert_rejected

TIMEOUT = 0.75  # each timeout of the `quick` server
LATE = 10.0     # "much later than the timeout": generous, for a loaded machine
EARLY = 0.9     # a timer never fires before its time (10 % for clock granularity)


@pytest.fixture(scope="module")
def quick(module_pool):
    return module_pool.start(name="quick-timeouts", options={
        "header_timeout": TIMEOUT, "body_timeout": TIMEOUT, "keepalive_timeout": TIMEOUT,
        "write_timeout": TIMEOUT})


def trickle_until_answered(conn, pieces, interval, limit):
    """Send ``pieces`` one by one every ``interval`` s until the server
    answers or closes (returns the seconds since the first piece), or
    ``limit`` seconds pass (fails)."""
    started = time.monotonic()
    for piece in pieces:
        readable, _, _ = select.select([conn.sock], [], [], interval)
        if readable:
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            break
        try:
            conn.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
    raise AssertionError(f"no answer after trickling for {time.monotonic() - started:.1f} s")


def endless(byte):
    while True:
        yield byte


# ---------------------------------------------------------------- the head

def test_slowloris_head_gets_408_after_header_timeout_though_bytes_keep_coming(quick):
    with quick.connect() as conn:
        conn.send(b"GET /ping HTTP/1.1\r\n")
        elapsed = trickle_until_answered(conn, endless(b"X"), interval=0.05, limit=LATE)
        assert_rejected(conn, 408, reason="request head timed out")
    print(f"\nslowloris head answered 408 after {elapsed:.2f} s (header_timeout {TIMEOUT} s)")
    assert EARLY * TIMEOUT <= elapsed < LATE
    quick.assert_serving()


def test_slowloris_trickling_whole_header_lines_gets_408(quick):
    lines = (b"X-Line-%d: v\r\n" % i for i in range(10000))
    with quick.connect() as conn:
        conn.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        elapsed = trickle_until_answered(conn, lines, interval=0.05, limit=LATE)
        assert_rejected(conn, 408)
    assert EARLY * TIMEOUT <= elapsed < LATE


def test_connection_that_sends_nothing_is_closed_silently_after_header_timeout(quick):
    with quick.connect() as conn:
        started = time.monotonic()
        assert conn.is_closed_by_server(timeout=LATE)  # EOF, not a single byte
        elapsed = time.monotonic() - started
    assert EARLY * TIMEOUT <= elapsed < LATE
    quick.assert_serving()


# ---------------------------------------------------------------- the body

def test_stalled_body_gets_408_after_body_timeout(quick):
    with quick.connect() as conn:
        conn.send(build_request("POST", "/hit?token=stalled", [("Content-Length", "100")]) + b"0123456789")
        started = time.monotonic()
        assert_rejected(conn, 408, reason="request body timed out")
        elapsed = time.monotonic() - started
    assert EARLY * TIMEOUT <= elapsed < LATE
    assert quick.record("stalled")["calls"] == 0
    quick.assert_serving()


def test_stalled_chunked_body_gets_408_after_body_timeout(quick):
    with quick.connect() as conn:
        conn.send(build_request("POST", "/hit?token=stalled-chunked", [("Transfer-Encoding", "chunked")])
                  + b"5\r\nhello\r\n64\r\nabc")
        assert_rejected(conn, 408, reason="request body timed out")
    assert quick.record("stalled-chunked")["calls"] == 0


def test_body_that_stops_right_after_the_head_gets_408(quick):
    with quick.connect() as conn:
        conn.send(build_request("POST", "/hit", [("Content-Length", "10")]))
        assert_rejected(conn, 408)


@pytest.fixture(scope="module")
def quick_without_min_rate(module_pool):
    return module_pool.start(name="quick-timeouts-no-min-rate", options={
        "header_timeout": TIMEOUT, "body_timeout": TIMEOUT, "min_body_rate": 0})


def test_slow_body_with_gaps_shorter_than_body_timeout_is_received_whole(quick_without_min_rate):
    """With min_body_rate off, body_timeout bounds the gap between reads,
    not the whole body: ten bytes at 0.15 s intervals take longer than the
    timeout and are fine."""
    quick = quick_without_min_rate
    body = b"0123456789"
    with quick.connect() as conn:
        conn.send(build_request("POST", "/hit?token=slow-body", [("Content-Length", str(len(body)))]))
        started = time.monotonic()
        for byte in body:
            time.sleep(0.15)
            conn.send(bytes([byte]))
        response = conn.read_response()
    assert time.monotonic() - started > TIMEOUT
    assert (response.status, response.body) == (200, b"hit 10")


# ---------------------------------------------------------------- min_body_rate

@pytest.fixture(scope="module")
def rated(module_pool):
    return module_pool.start(name="min-body-rate", options={"body_timeout": 1.0, "min_body_rate": 500})


def test_body_trickled_below_min_body_rate_gets_408_though_no_gap_reaches_body_timeout(rated):
    """128 bytes/s in 16-byte pieces: every gap is far below body_timeout,
    yet past it each 500 bytes buy only one more second (mod_reqtimeout's
    MinRate): at this pace the body is refused within seconds."""
    with rated.connect() as conn:
        conn.send(build_request("POST", "/hit?token=trickle", [("Content-Length", "100000")]))
        trickle_until_answered(conn, (b"t" * 16 for _ in range(10000)), interval=0.125, limit=LATE)
        assert_rejected(conn, 408, reason="request body timed out")
    assert rated.record("trickle")["calls"] == 0
    rated.assert_serving()


def test_upload_above_min_body_rate_completes_however_long_it_takes(rated):
    """4 KiB/s for three times body_timeout: well above the rate, never cut."""
    body = bytes(range(256)) * 48  # 12 KiB
    with rated.connect() as conn:
        conn.send(build_request("POST", "/hit?token=steady", [("Content-Length", str(len(body)))]))
        for start in range(0, len(body), 1024):
            time.sleep(0.25)
            conn.send(body[start:start + 1024])
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"hit %d" % len(body))


def test_min_body_rate_ends_a_crowd_of_trickling_uploads(rated):
    """Fifty clients at 128 bytes/s each: every one gets its 408 and is
    closed; the server serves the next client."""
    conns = [rated.connect() for _ in range(50)]
    try:
        for conn in conns:
            conn.send(build_request("POST", "/hit?token=crowd", [("Content-Length", "100000")]))
        answered = set()
        deadline = time.monotonic() + LATE * 3
        while len(answered) < len(conns) and time.monotonic() < deadline:
            for index, conn in enumerate(conns):
                if index in answered:
                    continue
                readable, _, _ = select.select([conn.sock], [], [], 0)
                if readable:
                    answered.add(index)
                    continue
                try:
                    conn.send(b"c" * 16)
                except (BrokenPipeError, ConnectionResetError):
                    answered.add(index)
            time.sleep(0.125)
        assert len(answered) == len(conns), f"{len(conns) - len(answered)} uploads still open"
        for conn in conns:
            assert conn.read_response().status == 408
    finally:
        for conn in conns:
            conn.close()
    assert rated.record("crowd")["calls"] == 0
    rated.assert_serving()


# ---------------------------------------------------------------- keep-alive

def test_idle_keep_alive_connection_is_closed_silently_after_keepalive_timeout(quick):
    with quick.connect() as conn:
        conn.send(build_request("GET", "/ping"))
        assert conn.read_response().body == b"pong"
        started = time.monotonic()
        assert conn.is_closed_by_server(timeout=LATE)
        elapsed = time.monotonic() - started
    print(f"\nidle keep-alive connection closed after {elapsed:.2f} s (keepalive_timeout {TIMEOUT} s)")
    assert EARLY * TIMEOUT <= elapsed < LATE


def test_keep_alive_connection_in_use_outlives_keepalive_timeout(quick):
    """Requests every 0.1 s for twice the timeout: the idle clock restarts
    with each one."""
    with quick.connect() as conn:
        started = time.monotonic()
        while time.monotonic() - started < 2 * TIMEOUT:
            conn.send(build_request("GET", "/ping"))
            assert conn.read_response().body == b"pong"
            time.sleep(0.1)


# ---------------------------------------------------------------- writing

def stop_reading_socket(server):
    """A connection whose receive buffer is small and which is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(LATE)
    sock.connect(server.socket_address()[1])
    return sock


def read_all_until_closed(sock, timeout=LATE):
    sock.settimeout(timeout)
    total = 0
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return total
            total += len(chunk)
    except ConnectionResetError:
        return total


@pytest.mark.parametrize("route", ["stream", "generator"])
def test_client_that_stops_reading_is_dropped_after_write_timeout_and_the_iterable_closed(quick, route):
    token = f"write-timeout-{route}-{time.monotonic_ns()}"
    size = 256 << 20
    baseline = quick.fd_count()
    sock = stop_reading_socket(quick)
    try:
        sock.sendall(build_request("GET", f"/{route}?token={token}&size={size}"))
        started = time.monotonic()
        entry = quick.wait_record(token, lambda r: r["close_calls"] >= 1,
                                  "the iterable is closed after the write timeout", timeout=LATE)
        elapsed = time.monotonic() - started
        received = read_all_until_closed(sock)
    finally:
        sock.close()
    print(f"\n{route}: dropped {elapsed:.2f} s after the request, {entry['items_pulled']} items pulled, "
          f"{received} bytes reached the client")
    assert entry["close_calls"] == 1 and not entry["exhausted"], entry
    assert received < size
    assert elapsed >= EARLY * TIMEOUT
    quick.wait_fd_count(baseline)


def test_slow_reader_that_keeps_reading_is_not_dropped_by_the_write_timeout(quick):
    """write_timeout is for a client that stops reading. One that reads
    64 KiB every 0.1 s never leaves the server without progress for
    write_timeout, and must keep its response."""
    token = f"slow-but-steady-{time.monotonic_ns()}"
    sock = stop_reading_socket(quick)
    try:
        sock.sendall(build_request("GET", f"/stream?token={token}&size={64 << 20}"))
        started = time.monotonic()
        received = 0
        while time.monotonic() - started < 4 * TIMEOUT:
            time.sleep(0.1)
            received += len(sock.recv(65536))
        elapsed = time.monotonic() - started
        entry = quick.record(token)
    finally:
        sock.close()
    assert entry["close_calls"] == 0, (
        f"the server dropped a client that read {received} bytes in {elapsed:.1f} s "
        f"({received / elapsed / 1024:.0f} KiB/s, never pausing) with write_timeout {TIMEOUT} s: {entry}")


# ---------------------------------------------------------------- the defaults

def test_default_timeouts_are_at_most_thirty_seconds():
    for name in ("header_timeout", "body_timeout", "keepalive_timeout", "write_timeout"):
        assert 0 < ursa.OPTIONS[name] <= 30, (name, ursa.OPTIONS[name])


@pytest.mark.slow
def test_default_timeouts_end_a_slowloris_and_a_stalled_body_within_thirty_seconds(hostile):
    """Both at once against a server with the default timeouts."""
    outcomes = {}

    def slowloris():
        with hostile.connect(timeout=35) as conn:
            conn.send(b"GET /ping HTTP/1.1\r\n")
            outcomes["slowloris"] = trickle_until_answered(conn, endless(b"X"), interval=1.0, limit=35)
            assert_rejected(conn, 408)

    def stalled_body():
        with hostile.connect(timeout=35) as conn:
            conn.send(build_request("POST", "/hit", [("Content-Length", "1000")]) + b"partial")
            started = time.monotonic()
            assert_rejected(conn, 408)
            outcomes["stalled body"] = time.monotonic() - started

    errors = []

    def run(function):
        try:
            function()
        except BaseException as error:  # reported below, from the test's thread
            errors.append(f"{function.__name__}: {error!r}")

    threads = [threading.Thread(target=run, args=(f,)) for f in (slowloris, stalled_body)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not errors, errors
    print(f"\nwith the defaults: slowloris answered 408 after {outcomes['slowloris']:.1f} s, "
          f"stalled body after {outcomes['stalled body']:.1f} s")
    assert outcomes["slowloris"] < 30 and outcomes["stalled body"] < 30
    hostile.assert_serving()
