"""Connections waiting in the listen backlog when a stop begins are served,
never reset: in ursa.run() (one process) and under the master, over TCP and
a unix socket, across TERM (the service stops) and HUP (it carries on).

Four clients loop on a 20 ms request with `Connection: close`, so that at
any moment some connections sit in the kernel's accept queue. A failed
request is one whose connection was established but that got no complete
response (a reset, an early EOF). For TERM a connect() refused after the
stop began is no failure: it is how a client learns the server is gone
(for a unix socket, the file is gone). For HUP every connect() must succeed
and be answered.
"""
import signal
import threading

import pytest

from support.processes import STOP_TIMEOUT, process_alive
from support.rawhttp import RawConnection, open_socket, parse_address
from support.waiting import wait_until

from .harness import APPS_DIR, PYTHON
from .test_load_reload import stop_clients, total

CLIENTS = 4
REQUEST = b"GET /slow?0.02 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
REQUESTS_BEFORE_SIGNAL = 60
REQUESTS_AFTER_RELOAD = 60

RUN_ONE_PROCESS = """
import os, sys
import ursa
import deployapp
from ursa.addresses import describe_socket
address = sys.argv[1]
if address.startswith("unix:"):
    sock = ursa.listen(deployapp.app, address)
else:
    sock = ursa.listen(deployapp.app, "127.0.0.1", 0)
sys.stderr.write("Listening at: %s (%d)\\n" % (describe_socket(sock), os.getpid()))
ursa.run()
"""


class ClosingClient(threading.Thread):
    """One request per connection, until told to stop or refused."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.address = address
        self.stop_event = threading.Event()
        self.completed = 0
        self.failures = []
        self.refusals = []

    def connect(self):
        family, target = parse_address(self.address)
        return open_socket(family, target, STOP_TIMEOUT, nodelay=False)

    def run(self):
        while not self.stop_event.is_set():
            try:
                sock = self.connect()
            except (ConnectionRefusedError, FileNotFoundError) as exc:
                self.refusals.append(exc)
                return
            except OSError as exc:
                self.failures.append(f"connect: {exc!r}")
                return
            with sock:
                try:
                    sock.sendall(REQUEST)
                    reply = RawConnection(sock, STOP_TIMEOUT).read_until_close()
                except OSError as exc:
                    self.failures.append(f"request {self.completed}: {exc!r}")
                    continue
            if reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"slow done"):
                self.completed += 1
            else:
                self.failures.append(f"request {self.completed}: incomplete reply {reply[:60]!r}")


def start_clients(address):
    clients = [ClosingClient(address) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    return clients


def address_for(kind, tmp_path):
    return f"unix:{tmp_path}/drain.sock" if kind == "unix" else "127.0.0.1:0"


def stop_under_load(server, signal_number=signal.SIGTERM):
    clients = start_clients(server.address)
    wait_until(lambda: total(clients) >= REQUESTS_BEFORE_SIGNAL, 60, f"{REQUESTS_BEFORE_SIGNAL} requests")
    server.signal(signal_number)
    # Every client goes on until the server refuses it.
    for client in clients:
        client.join(STOP_TIMEOUT * 2)
    failures = stop_clients(clients)
    assert failures == [], f"{len(failures)} failed of {total(clients)}: {failures[:5]}"
    assert server.wait_exit() == 0


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_run_serves_the_backlog_on_term(procs, tmp_path, kind):
    server = procs.start([PYTHON, "-c", RUN_ONE_PROCESS, address_for(kind, tmp_path)], cwd=APPS_DIR,
                         env={"PYTHONPATH": str(APPS_DIR)})
    server.wait_listening()
    stop_under_load(server)
    assert not (tmp_path / "drain.sock").exists()


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_master_serves_the_backlog_on_term(procs, tmp_path, kind):
    server = procs.ursa("-b", address_for(kind, tmp_path), "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    stop_under_load(server)
    wait_until(lambda: not any(process_alive(pid) for pid in workers), STOP_TIMEOUT, "the workers are gone")
    assert not (tmp_path / "drain.sock").exists()


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_master_answers_every_connection_across_hup(procs, tmp_path, kind):
    server = procs.ursa("-b", address_for(kind, tmp_path), "-w", "2", "deployapp:app")
    old = server.wait_workers(2)
    clients = start_clients(server.address)
    try:
        wait_until(lambda: total(clients) >= REQUESTS_BEFORE_SIGNAL, 60, f"{REQUESTS_BEFORE_SIGNAL} requests")
        server.signal(signal.SIGHUP)
        server.wait_workers(2, exclude=old, timeout=60)
        wait_until(lambda: not any(process_alive(pid) for pid in old), STOP_TIMEOUT, "the old workers are gone")
        after = total(clients)
        wait_until(lambda: total(clients) >= after + REQUESTS_AFTER_RELOAD, 60, "requests after the reload")
    finally:
        failures = stop_clients(clients)
    refusals = [refusal for client in clients for refusal in client.refusals]
    assert failures == [] and refusals == [], f"of {total(clients)}: {failures[:5]} {refusals[:5]}"
