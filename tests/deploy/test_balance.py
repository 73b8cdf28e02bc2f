"""Prefork workers share new connections fairly. A burst that arrives
while one worker is busy in a slow request once went wholly to the other
(20 connections to one worker, 0 to the other), and with keep-alive they
stayed there: half the throughput, and twice the loss when that worker died."""
import threading

from support.processes import STOP_TIMEOUT
from support.rawhttp import build_request, connect

from .harness import request
from .test_master import start_with_markers, wait_in_flight

BURST = 20


def keep_alive_pids(address, count):
    """Opens `count` connections at once, then asks each which worker holds it."""
    conns = [connect(address, STOP_TIMEOUT, nodelay=False) for _ in range(count)]
    try:
        for conn in conns:
            conn.send(build_request("GET", "/pid"))
        return [int(conn.read_response().body) for conn in conns]
    finally:
        for conn in conns:
            conn.close()


def test_a_burst_while_one_worker_is_busy_is_shared_between_the_workers(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path, "-w", "2", "--log-level", "debug")
    server.wait_for_log(r"worker \d+ is ready", count=2)
    workers = set(server.wait_workers(2))
    slow = []
    thread = threading.Thread(target=lambda: slow.append(request(server.address, path="/slow?0.5")))
    thread.start()
    wait_in_flight(markers)
    pids = keep_alive_pids(server.address, BURST)
    thread.join(STOP_TIMEOUT)
    assert slow and slow[0][0] == 200
    counts = {pid: pids.count(pid) for pid in workers}
    print(f"\n{BURST} connections opened while one worker was busy: {sorted(counts.values())} per worker")
    assert set(pids) <= workers
    assert min(counts.values()) >= BURST // 4, counts
