"""Fairness and memory under load: hundreds of slowloris clients do not slow
a normal client down, slow readers of a huge response cost the server a
bounded buffer, ten thousand connections at once are all answered. The
figures are printed (run with -s to see them); the bounds asserted are
generous, for a shared 2-core machine."""
import json
import resource
import socket
import subprocess
import sys
import time

import pytest

from support.processes import SANITIZED
from support.rawhttp import build_request
from support.waiting import wait_until

from .harness import HERE, percentile

CROWD = HERE / "crowd.py"
MIB = 1 << 20


class Crowd:
    """A crowd.py process; its connections stay open until stop()."""

    def __init__(self, mode, port, count):
        self.process = subprocess.Popen([sys.executable, str(CROWD), mode, str(port), str(count)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read_report(self, timeout=150):
        started = time.monotonic()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            raise AssertionError(f"crowd exited with {self.process.returncode} after "
                                 f"{time.monotonic() - started:.1f} s without a report")
        return json.loads(line)

    def stop(self):
        """Close its connections; returns its last report."""
        self.process.stdin.close()
        try:
            report = self.read_report()
        finally:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return report

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- slowloris crowd

@pytest.mark.heavy
def test_normal_client_stays_fast_while_500_slowloris_clients_trickle_their_heads(hostile_pool):
    # header_timeout beyond the test's length: the crowd stays for the whole measurement.
    server = hostile_pool.start(name="slowloris-target", options={"header_timeout": 60.0})
    baseline = server.fd_count()
    crowd = Crowd("slowloris", server.port, 500)
    try:
        assert crowd.read_report() == {"connected": 500}
        wait_until(lambda: server.fd_count() >= baseline + 500, 30, "the server holds the 500 slow connections")
        latencies = []
        request = build_request("GET", "/ping")
        started = time.monotonic()
        while len(latencies) < 400:
            sent = time.perf_counter()
            with server.connect(timeout=10) as conn:  # a new connection each time: accept is measured too
                conn.send(request)
                response = conn.read_response()
            latencies.append(time.perf_counter() - sent)
            assert response.body == b"pong"
            time.sleep(0.01)
        measured_for = time.monotonic() - started
        held = server.fd_count() - baseline
        final = crowd.stop()
    finally:
        crowd.kill()
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(f"\n400 requests over {measured_for:.1f} s beside 500 slowloris clients: p50 {p50 * 1000:.2f} ms, "
          f"p99 {p99 * 1000:.2f} ms, max {max(latencies) * 1000:.2f} ms")
    assert held >= 500, f"the slowloris connections were dropped early: {held} held"
    assert final == {"closed_by_server": 0}
    assert p99 < (0.5 if SANITIZED else 0.1), f"p99 latency {p99 * 1000:.1f} ms"
    server.wait_fd_count(baseline)


# ---------------------------------------------------------------- slow readers

def open_slow_reader(server, token, size):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(server.socket_address()[1])
    sock.sendall(build_request("GET", f"/stream?token={token}&size={size}"))
    return sock


@pytest.mark.heavy
def test_slow_readers_of_a_50_mb_response_cost_the_server_a_bounded_buffer(hostile_pool):
    readers, size, block = 8, 50 * MIB, 64 * 1024
    server = hostile_pool.start(name="slow-readers")
    # Warm up: one fast reader of the whole stream, one slow reader for a while.
    with server.connect() as conn:
        conn.send(build_request("GET", f"/stream?token=warm-fast&size={8 * MIB}", [("Connection", "close")]))
        assert len(conn.read_until_close()) > 8 * MIB
    warm = open_slow_reader(server, "warm-slow", size)
    for _ in range(100):
        warm.recv(1024)
        time.sleep(0.005)
    warm.close()
    time.sleep(0.2)
    rss_before = server.rss_kib()

    socks = [open_slow_reader(server, f"slow-{i}", size) for i in range(readers)]
    received = [0] * readers
    try:
        started = time.monotonic()
        rss_settled = None
        while time.monotonic() - started < 6.0:
            for i, sock in enumerate(socks):
                received[i] += len(sock.recv(1024))
            if rss_settled is None and time.monotonic() - started > 2.0:
                rss_settled = server.rss_kib()
            time.sleep(0.01)
        rss_during = server.rss_kib()
        records = [server.record(f"slow-{i}") for i in range(readers)]
    finally:
        for sock in socks:
            sock.close()
    pulled = [entry["items_pulled"] * block for entry in records]
    ahead = max(p - r for p, r in zip(pulled, received))
    growth = rss_during - rss_before
    print(f"\n{readers} readers at ~100 KiB/s for 6 s, {sum(received) // 1024} KiB read in all: server RSS "
          f"{rss_before} -> {rss_settled} (2 s) -> {rss_during} KiB (6 s), "
          f"{growth / readers:.0f} KiB per reader; the app was pulled at most {ahead // 1024} KiB ahead "
          f"of what a reader had read")
    assert all(entry["close_calls"] == 0 for entry in records), records
    # Pulled only as fast as the socket drains: what the kernel buffers (a
    # few MiB of send buffer) plus one item, never the 50 MB.
    assert ahead < 8 * MIB, f"the app was pulled {ahead} bytes ahead of the reader"
    if not SANITIZED:
        assert growth <= readers * 1024, f"RSS grew {growth} KiB for {readers} slow readers"
        assert rss_during - rss_settled <= 1024, f"RSS kept growing while the readers read: " \
                                                 f"{rss_settled} -> {rss_during} KiB"


# ---------------------------------------------------------------- ten thousand connections

@pytest.mark.heavy
def test_ten_thousand_concurrent_connections_are_all_answered(hostile_pool):
    total, crowds_count = 10000, 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < total + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {total + 200}")
    server = hostile_pool.start(name="ten-thousand", backlog=4096, options={"max_connections": total})
    baseline = server.fd_count()
    crowds = [Crowd("many", server.port, total // crowds_count) for _ in range(crowds_count)]
    try:
        reports = [crowd.read_report() for crowd in crowds]
        held = server.fd_count() - baseline
        finals = [crowd.stop() for crowd in crowds]
    finally:
        for crowd in crowds:
            crowd.kill()
    answered = sum(report["answered"] for report in reports)
    seconds = max(report["seconds"] for report in reports)
    print(f"\n{answered} of {total} connections answered in {seconds:.1f} s, "
          f"{held} held open by the server at once")
    assert answered == total, reports
    assert held == total, f"the server held {held} connections, not {total}"
    assert [final["closed"] for final in finals] == [total // crowds_count] * crowds_count
    server.wait_fd_count(baseline, timeout=60)
    server.assert_serving()
