#!/usr/bin/env python3
"""Soak test: many keep-alive requests against one ursa server; its memory
must stay flat.

    .venv/bin/python scripts/soak.py [--requests 200000] [--connections 4] [--batch 64]

For each app (a GET app, and a POST app that reads bodies of several sizes,
some chunked) a server is started in a child process, driven over raw
sockets with pipelined batches on a few keep-alive connections, and its RSS
(VmRSS from /proc) is read after a warm-up and at the end. Exits 1 when it
grew by 5 MiB (--max-growth-kib) or more for either app, or when any response was
wrong. Prints the RSS along the way and the time taken.
"""
import argparse
import os
import signal
import socket
import sys
import time

# tests/support, for the client side (imported there: the server process
# imports nothing it does not serve with).
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

MAX_GROWTH_KIB = 5 * 1024
WARMUP_FRACTION = 0.1
SAMPLES = 10
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


# ---------------------------------------------------------------- the server side

def get_app(environ, start_response):
    body = b"hello, soak"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def post_app(environ, start_response):
    data = environ["wsgi.input"].read()
    body = b"%d %s" % (len(data), data[:8])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def serve(app_name):
    import ursa

    sock = ursa.bind_and_listen("127.0.0.1", 0)
    print(sock.getsockname()[1], flush=True)
    ursa.server_run(sock, {"get": get_app, "post": post_app}[app_name])


# ---------------------------------------------------------------- the client side

def build_requests(app_name, count):
    """``count`` requests and the response body each must get."""
    if app_name == "get":
        request = b"GET /soak HTTP/1.1\r\nHost: soak\r\n\r\n"
        return [request] * count, [b"hello, soak"] * count
    requests, expected = [], []
    for index in range(count):
        body = b"p" * (0, 10, 1000, 5000, 100)[index % 5]
        if index % 8 == 7:
            framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:50], body[50:]) if part)
            requests.append(b"POST /soak HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + framed + b"0\r\n\r\n")
        else:
            requests.append(b"POST /soak HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n%s"
                            % (len(body), body))
        expected.append(b"%d %s" % (len(body), body[:8]))
    return requests, expected


def read_bodies(client, count):
    """The bodies of the next ``count`` responses on `client` (a RawConnection), all 200s."""
    bodies = []
    for _ in range(count):
        response = client.read_response()
        if response.status != 200 or response.version != "HTTP/1.1":
            raise AssertionError(f"unexpected response {response.raw_head[:100]!r}")
        bodies.append(response.body)
    return bodies


def drive(clients, requests, expected, start, stop, batch):
    """Send requests[start:stop] round-robin over the clients, pipelined."""
    position = start
    while position < stop:
        in_flight = []
        for client in clients:
            if position >= stop:
                break
            end = min(position + batch, stop)
            client.send(b"".join(requests[position:end]))
            in_flight.append((client, position, end))
            position = end
        for client, first, end in in_flight:
            bodies = read_bodies(client, end - first)
            if bodies != expected[first:end]:
                wrong = next(i for i, body in enumerate(bodies) if body != expected[first + i])
                raise AssertionError(f"request {first + wrong}: got {bodies[wrong]!r}, "
                                     f"expected {expected[first + wrong]!r}")


def soak(app_name, total, connections, batch):
    from support.processes import ChildProcess, rss_kib
    from support.rawhttp import connect

    server = ChildProcess([sys.executable, os.path.abspath(__file__), "--serve", app_name], name=f"{app_name} server")
    server.start()
    try:
        port = int(server.read_line(time.monotonic() + START_TIMEOUT))
        requests, expected = build_requests(app_name, total)
        clients = [connect((socket.AF_INET, ("127.0.0.1", port)), timeout=60) for _ in range(connections)]
        warmup = int(total * WARMUP_FRACTION)
        started = time.monotonic()
        drive(clients, requests, expected, 0, warmup, batch)
        after_warmup = rss_kib(server.pid)
        samples = [after_warmup]
        step = (total - warmup) // SAMPLES
        for sample in range(SAMPLES):
            first = warmup + sample * step
            drive(clients, requests, expected, first, total if sample == SAMPLES - 1 else first + step, batch)
            samples.append(rss_kib(server.pid))
        elapsed = time.monotonic() - started
        for client in clients:
            client.close()
    finally:
        server.end(signal.SIGTERM, STOP_TIMEOUT)
        server.close_stdout()
    growth = samples[-1] - after_warmup
    print(f"{app_name}: {total} requests on {connections} connections in {elapsed:.1f} s "
          f"({total / elapsed:.0f} req/s); RSS after warm-up {after_warmup} KiB, at the end {samples[-1]} KiB, "
          f"growth {growth} KiB\n  RSS along the way (KiB): {samples}", flush=True)
    return growth


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000, help="requests per app (default 200000)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="pipelined requests per send")
    parser.add_argument("--apps", default="get,post")
    parser.add_argument("--max-growth-kib", type=int, default=MAX_GROWTH_KIB,
                        help=f"fail at this RSS growth (default {MAX_GROWTH_KIB}; raise it under ASan)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        return serve(arguments.serve)
    started = time.monotonic()
    failed = []
    for app_name in arguments.apps.split(","):
        growth = soak(app_name, arguments.requests, arguments.connections, arguments.batch)
        if growth >= arguments.max_growth_kib:
            failed.append(f"{app_name}: RSS grew {growth} KiB (limit {arguments.max_growth_kib} KiB)")
    print(f"soak finished in {time.monotonic() - started:.1f} s")
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
