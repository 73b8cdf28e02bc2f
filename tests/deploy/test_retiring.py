"""A retiring worker (--max-requests, HUP, TTOU) loses no request of the
clients that keep their connections alive: the response that reaches the
limit says Connection: close, every response while retiring says it too,
and an idle keep-alive connection is closed only after a short drain, so
a request sent in the instant before it could know is answered.

The clients loop on keep-alive connections and count a request as lost
when it was sent on an open connection and got no response (EOF or reset).
"""
import signal
import socket
import threading
import time

from support.processes import STOP_TIMEOUT
from support.rawhttp import ConnectionClosed, IncompleteBody, RawConnection
from support.waiting import wait_until

REQUEST = b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n"


class LoopingClient(threading.Thread):
    """Requests on one keep-alive connection, reconnecting only when the
    server said Connection: close."""

    def __init__(self, address):
        super().__init__(daemon=True)
        host, _, port = address[len("http://"):].rpartition(":")
        self.target = (host, int(port))
        self.running = True
        self.answered = 0
        self.lost = []
        self.sock = None

    def run(self):
        on_connection = 0
        answered_at = None
        while self.running:
            if self.sock is None:
                self.sock = socket.create_connection(self.target, timeout=STOP_TIMEOUT)
                on_connection = 0
            try:
                sent_at = time.monotonic()
                self.sock.sendall(REQUEST)
                head, close = self.read_response()
            except (ConnectionError, OSError) as error:
                idle = f"{sent_at - answered_at:.3f}s after the last response" if on_connection else "a new one"
                self.lost.append(f"{error!r}: request {on_connection + 1} on its connection, {idle}")
                close = True
            else:
                self.answered += 1
                on_connection += 1
                answered_at = time.monotonic()
            if close:
                self.sock.close()
                self.sock = None
        if self.sock is not None:
            self.sock.close()

    def read_response(self):
        """(the response's head, whether it says Connection: close); ConnectionError at an EOF."""
        try:
            response = RawConnection(self.sock, STOP_TIMEOUT).read_response()
        except (ConnectionClosed, IncompleteBody) as error:
            raise ConnectionError(f"EOF before a complete response: {error}") from None
        return response.raw_head, (response.header("Connection") or "").lower() == "close"

    def stop(self):
        self.running = False
        self.join(STOP_TIMEOUT)


def run_clients(address, count, until):
    clients = [LoopingClient(address) for _ in range(count)]
    for client in clients:
        client.start()
    try:
        until(clients)
    finally:
        for client in clients:
            client.stop()
    return clients


def test_max_requests_loses_no_request_on_keep_alive_connections(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "5", "deployapp:app")
    clients = run_clients(server.address, 4, lambda clients: server.wait_for_log(
        r"served its 5 requests", count=20))
    assert sum(client.answered for client in clients) > 0
    assert [client.lost for client in clients] == [[]] * 4


def test_response_that_reaches_max_requests_says_connection_close(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "5", "deployapp:app")
    host, _, port = server.address[len("http://"):].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=STOP_TIMEOUT) as sock:
        client = LoopingClient(server.address)
        client.sock = sock
        closes = []
        for _ in range(5):
            sock.sendall(REQUEST)
            closes.append(client.read_response()[1])
        assert closes == [False, False, False, False, True]
        assert sock.recv(1) == b""


def test_hup_loses_no_request_on_keep_alive_connections(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--log-level", "debug", "deployapp:app")
    server.wait_for_log(r"worker \d+ is ready", count=2)

    def reload(clients):
        wait_until(lambda: all(client.answered for client in clients), STOP_TIMEOUT, "every client is served")
        for round_ in range(1, 5):
            server.signal(signal.SIGHUP)
            server.wait_for_log(r"worker \d+ is ready", count=2 + 2 * round_)
            server.wait_for_log(r"worker \d+ stopped", count=2 * round_)
    clients = run_clients(server.address, 10, reload)
    assert [client.lost for client in clients] == [[]] * 10


def test_ttou_loses_no_request_on_keep_alive_connections(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "3", "--log-level", "debug", "deployapp:app")
    server.wait_for_log(r"worker \d+ is ready", count=3)

    def shrink(clients):
        wait_until(lambda: all(client.answered for client in clients), STOP_TIMEOUT, "every client is served")
        server.signal(signal.SIGTTOU)
        server.wait_for_log(r"worker \d+ stopped")
    clients = run_clients(server.address, 10, shrink)
    assert [client.lost for client in clients] == [[]] * 10
