"""Steady load across a reload (HUP) and a graceful stop (TERM) of a
2-worker master: no request may fail.

One client thread reuses a keep-alive connection, another opens a new
connection per request. A keep-alive client may find that the server closed
the idle connection just as it sent the next request (an old worker
retiring); HTTP/1.1 lets clients retry an idempotent request on a new
connection then (RFC 9112, 9.3.1), and this client does so once, as
browsers and urllib3 do. Everything else counts as a failure: a refused or
reset new connection, a retry that fails, a wrong status or body.
"""
import http.client
import signal
import threading

from support.processes import STOP_TIMEOUT, process_alive
from support.waiting import wait_until

from .harness import connection_to, request
from .test_master import slow_request_in_background, start_with_markers, wait_in_flight

REQUESTS_BEFORE_HUP = 800
REQUESTS_AFTER_RELOAD = 2000
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class LoadClient(threading.Thread):
    def __init__(self, address, keep_alive):
        super().__init__(daemon=True)
        self.address = address
        self.keep_alive = keep_alive
        self.stop_event = threading.Event()
        self.completed = 0
        self.retries = 0
        self.failures = []
        self.connection = None

    def run(self):
        while not self.stop_event.is_set():
            try:
                body = self.one_request()
                if body != b"hello":
                    self.failures.append(f"wrong body {body!r}")
            except Exception as exc:
                kind = "keep-alive" if self.keep_alive else "new connection"
                self.failures.append(f"{kind} request {self.completed}: {exc!r}")
                self.close()
            self.completed += 1
        self.close()

    def one_request(self):
        if not self.keep_alive:
            status, _, body = request(self.address, path="/")
            assert status == 200, status
            return body
        reused = self.connection is not None
        if not reused:
            self.connection = connection_to(self.address)
        try:
            return self.get_on_connection()
        except RETRYABLE:
            if not reused:
                raise
            self.retries += 1
            self.close()
            self.connection = connection_to(self.address)
            return self.get_on_connection()

    def get_on_connection(self):
        self.connection.request("GET", "/")
        response = self.connection.getresponse()
        body = response.read()
        assert response.status == 200, response.status
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return body

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def total(clients):
    return sum(client.completed for client in clients)


def stop_clients(clients):
    """Stop the clients (threads with a stop_event and a failures list);
    returns their failures."""
    for client in clients:
        client.stop_event.set()
    for client in clients:
        client.join(STOP_TIMEOUT * 2)  # a connect() may wait for SYN retries
        assert not client.is_alive(), "a client is stuck"
    return [failure for client in clients for failure in client.failures]


def test_no_request_fails_across_hup_and_term(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path, "-w", "2")
    first_workers = server.wait_workers(2)
    clients = [LoadClient(server.address, keep_alive=True), LoadClient(server.address, keep_alive=False)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: total(clients) >= REQUESTS_BEFORE_HUP, 60, f"{REQUESTS_BEFORE_HUP} requests")
        server.signal(signal.SIGHUP)
        second_workers = server.wait_workers(2, exclude=first_workers, timeout=60)
        wait_until(lambda: not any(process_alive(pid) for pid in first_workers), STOP_TIMEOUT,
                   "the first workers are gone")
        after_reload = total(clients)
        wait_until(lambda: total(clients) >= after_reload + REQUESTS_AFTER_RELOAD, 60,
                   f"{REQUESTS_AFTER_RELOAD} requests after the reload")
    finally:
        failures = stop_clients(clients)
    assert failures == [], f"{len(failures)} failed of {total(clients)}: {failures[:5]}"
    assert total(clients) >= REQUESTS_BEFORE_HUP + REQUESTS_AFTER_RELOAD

    # TERM with a request in flight on each worker: both complete, then all exit.
    results = []
    threads = [slow_request_in_background(server, 0.5, results) for _ in range(2)]
    wait_in_flight(markers, count=2)
    server.signal(signal.SIGTERM)
    for thread in threads:
        thread.join(STOP_TIMEOUT)
    assert [result[:1] + result[2:] for result in results] == [(200, b"slow done")] * 2, results
    assert server.wait_exit() == 0
    wait_until(lambda: not any(process_alive(pid) for pid in second_workers), STOP_TIMEOUT,
               "every worker is gone")
