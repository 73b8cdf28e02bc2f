"""Crowds of clients for the load tests, each crowd in its own process so
that the test process stays free to measure.

    python crowd.py slowloris PORT COUNT   # COUNT connections trickling a head, 1 byte/s each
    python crowd.py many PORT COUNT        # COUNT connections, one request each, all held open

Both print one JSON line once their connections are in place (slowloris:
{"connected": n}; many: {"answered": n, "failed": [...], "seconds": s}),
then keep the connections open until stdin closes, and print a last JSON
line ({"closed_by_server": n} for slowloris) before they exit.
"""
import json
import resource
import selectors
import socket
import sys
import time

HOST = "127.0.0.1"
CONNECT_WINDOW = 256  # connects in flight at once: stays well inside the listen backlog
GIVE_UP_SECONDS = 120  # bounds every loop here, whatever happens to the server


def raise_open_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def report(value):
    print(json.dumps(value), flush=True)


def stdin_closed(timeout):
    """Wait up to ``timeout`` seconds; True once stdin reached EOF."""
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    try:
        if selector.select(timeout):
            return sys.stdin.buffer.read1(1) == b""
        return False
    finally:
        selector.close()


def slowloris(port, count):
    raise_open_file_limit(count + 64)
    head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: "
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=30)
        sock.setblocking(False)
        sock.send(head[:1])
        socks.append(sock)
    report({"connected": len(socks)})
    sent = 1
    alive = set(range(count))
    started = time.monotonic()
    while not stdin_closed(1.0) and time.monotonic() - started < GIVE_UP_SECONDS:
        byte = head[sent:sent + 1] or b"a"
        sent += 1
        for index in list(alive):
            try:
                socks[index].send(byte)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                alive.discard(index)
    for sock in socks:
        sock.close()
    report({"closed_by_server": count - len(alive)})


def many(port, count):
    """Open ``count`` connections, send one GET on each, read each answer."""
    raise_open_file_limit(count + 64)
    request = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    selector = selectors.DefaultSelector()
    socks, buffers = {}, {}
    answered, failed = 0, []
    opened = 0
    started = time.monotonic()

    def open_one():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((HOST, port))
        socks[sock.fileno()] = sock
        buffers[sock.fileno()] = b""
        selector.register(sock, selectors.EVENT_WRITE, "connecting")

    in_flight = 0
    while answered + len(failed) < count and time.monotonic() - started < GIVE_UP_SECONDS:
        while opened < count and in_flight < CONNECT_WINDOW:
            open_one()
            opened += 1
            in_flight += 1
        for key, events in selector.select(1.0):
            sock = key.fileobj
            if key.data == "connecting":
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    failed.append(f"connect: errno {error}")
                    selector.unregister(sock)
                    in_flight -= 1
                    continue
                sock.send(request)
                selector.modify(sock, selectors.EVENT_READ, "reading")
                continue
            try:
                data = sock.recv(4096)
            except OSError as error:
                data, reason = b"", repr(error)
            else:
                reason = "closed before the whole answer"
            buffers[sock.fileno()] += data
            whole = buffers[sock.fileno()]
            if whole.endswith(b"\r\n\r\npong"):
                if not whole.startswith(b"HTTP/1.1 200 "):
                    failed.append(whole[:40].decode("latin-1"))
                else:
                    answered += 1
            elif data:
                continue
            else:
                failed.append(reason)
            selector.unregister(sock)
            in_flight -= 1
    report({"answered": answered, "failed": failed[:20], "failures": len(failed),
            "seconds": round(time.monotonic() - started, 2)})
    stdin_closed(GIVE_UP_SECONDS)
    for sock in socks.values():
        sock.close()
    report({"closed": len(socks)})


if __name__ == "__main__":
    mode, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    {"slowloris": slowloris, "many": many}[mode](port, count)
