"""HUPs faster than the app loads: a HUP during a reload restarts it, so
live workers stay within two generations (the one serving and the one
loading), the site serves throughout and ends on the new code.

deployapp waits at import until it can take a file from a folder of
tokens, so the test decides when (and how many) new workers finish
loading, whatever the machine's load."""
import signal
import threading
import time

from support.processes import STOP_TIMEOUT, children_of, process_alive
from support.waiting import wait_until

from .harness import request
from .test_load_reload import LoadClient, stop_clients, total

WORKERS = 2
HUPS = 20
HUP_INTERVAL = 0.05  # the burst's pace (as in the report: 20 HUPs 50 ms apart), not a wait for anything
REQUESTS_BEFORE = 50
PARTIAL_ROUNDS = 5


class LiveWorkerCounter(threading.Thread):
    """Counts the master's live (not zombie) children, keeping the most seen."""

    def __init__(self, master_pid):
        super().__init__(daemon=True)
        self.master_pid = master_pid
        self.stop_event = threading.Event()
        self.most = 0

    def live(self):
        return [pid for pid in children_of(self.master_pid) if process_alive(pid)]

    def run(self):
        while not self.stop_event.is_set():
            self.most = max(self.most, len(self.live()))
            self.stop_event.wait(0.002)

    def stop(self):
        self.stop_event.set()
        self.join(STOP_TIMEOUT)


def add_tokens(folder, count):
    for _ in range(count):
        (folder / f"token-{time.monotonic_ns()}").write_text("")


def start_slow_loading_app(procs, tmp_path, *args):
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    add_tokens(tokens, WORKERS)
    version = tmp_path / "version"
    version.write_text("one")
    server = procs.ursa("-b", "127.0.0.1:0", "-w", WORKERS, *args, "deployapp:app",
                        env={"DEPLOYAPP_IMPORT_TOKENS": str(tokens), "DEPLOYAPP_VERSION_FILE": str(version)})
    first = server.wait_workers(WORKERS)
    clients = [LoadClient(server.address, keep_alive=True), LoadClient(server.address, keep_alive=False)]
    for client in clients:
        client.start()
    wait_until(lambda: total(clients) >= REQUESTS_BEFORE, 60, f"{REQUESTS_BEFORE} requests")
    version.write_text("two")
    return server, first, clients, tokens


def finish_on_the_new_code(server, first, clients, tokens):
    add_tokens(tokens, 10 * WORKERS)
    server.wait_workers(WORKERS, exclude=first, timeout=60)
    wait_until(lambda: not any(process_alive(pid) for pid in first), STOP_TIMEOUT, "the first workers are gone")
    after = total(clients)
    wait_until(lambda: total(clients) >= after + REQUESTS_BEFORE, 60, "requests on the new workers")


def test_a_burst_of_hups_keeps_two_generations_at_most(procs, tmp_path):
    server, first, clients, tokens = start_slow_loading_app(procs, tmp_path)
    counter = LiveWorkerCounter(server.pid)
    counter.start()
    try:
        for count in range(1, HUPS + 1):
            server.signal(signal.SIGHUP)
            server.wait_for_log("SIGHUP: reloading", count=count)  # signals sent too close together merge
            time.sleep(HUP_INTERVAL)
        assert counter.most <= 2 * WORKERS, f"{counter.most} live workers during the burst"
        assert set(first) <= set(counter.live())  # still serving: nothing new has loaded
        finish_on_the_new_code(server, first, clients, tokens)
    finally:
        counter.stop()
        failures = stop_clients(clients)
    assert failures == [], f"{len(failures)} failed of {total(clients)}: {failures[:5]}"
    assert counter.most <= 2 * WORKERS, f"{counter.most} live workers"
    assert [request(server.address, path="/version")[2] for _ in range(4)] == [b"two"] * 4


def test_reloads_cut_short_keep_no_more_serving_workers_than_asked_for(procs, tmp_path):
    # Each HUP comes after one new worker has loaded: every generation is
    # half ready when the next one starts. The workers that serve stay at
    # WORKERS however many generations pass: the oldest retire.
    server, first, clients, tokens = start_slow_loading_app(procs, tmp_path, "--log-level", "debug")
    counter = LiveWorkerCounter(server.pid)
    try:
        for count in range(1, PARTIAL_ROUNDS + 1):
            ready = server.stderr().count(" is ready")
            server.signal(signal.SIGHUP)
            server.wait_for_log("SIGHUP: reloading", count=count)
            add_tokens(tokens, 1)
            server.wait_for_log(r"worker \d+ is ready", count=ready + 1)
            # WORKERS serving (old ones), one new one ready, one loading.
            wait_until(lambda: len(counter.live()) <= 2 * WORKERS, STOP_TIMEOUT,
                       f"no more than {2 * WORKERS} live workers after round {count}; have {counter.live()}")
        finish_on_the_new_code(server, first, clients, tokens)
    finally:
        failures = stop_clients(clients)
    assert failures == [], f"{len(failures)} failed of {total(clients)}: {failures[:5]}"
    assert [request(server.address, path="/version")[2] for _ in range(4)] == [b"two"] * 4
