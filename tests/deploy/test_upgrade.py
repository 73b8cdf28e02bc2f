"""SIGUSR2: gunicorn's binary upgrade. The master starts a new master (the
code on disk now) on the same listening sockets; both serve until the old
one gets TERM. No request may fail on the way, and the --pid file names the
master that owns the service: FILE.oldbin the old one meanwhile."""
import os
import re
import signal

from support.processes import STOP_TIMEOUT, children_of, process_alive
from support.waiting import wait_until

from .harness import request
from .test_load_reload import LoadClient, stop_clients, total

REQUESTS_PER_PHASE = 300
LISTENING_PID = re.compile(r"Listening at: \S+ \((\d+)\)")


def listening_pids(server):
    return [int(pid) for pid in LISTENING_PID.findall(server.stderr())]


def wait_for_new_master(server, workers):
    new = wait_until(lambda: next((pid for pid in listening_pids(server) if pid != server.pid), None),
                     60, "a new master says it is listening")
    wait_until(lambda: len([pid for pid in children_of(new) if process_alive(pid)]) == workers, 60,
               f"the new master {new} has {workers} workers")
    return new


def test_usr2_then_term_of_the_old_master_upgrades_without_a_failed_request(procs, tmp_path):
    version_file = tmp_path / "version"
    version_file.write_text("one")
    pid_file = tmp_path / "ursa.pid"
    sock_path = tmp_path / "app.sock"
    server = procs.ursa("-b", "127.0.0.1:0", "-b", f"unix:{sock_path}", "-w", "2", "--pid", pid_file,
                        "deployapp:app", env={"DEPLOYAPP_VERSION_FILE": str(version_file)})
    old_workers = server.wait_workers(2)
    tcp, unix = server.address, f"unix:{sock_path}"
    clients = [LoadClient(tcp, keep_alive=True), LoadClient(tcp, keep_alive=False),
               LoadClient(unix, keep_alive=False)]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: total(clients) >= REQUESTS_PER_PHASE, 60, "requests before the upgrade")
        version_file.write_text("two")
        server.signal(signal.SIGUSR2)
        new = wait_for_new_master(server, 2)
        assert pid_file.read_text().strip() == str(new)
        assert (tmp_path / "ursa.pid.oldbin").read_text().strip() == str(server.pid)
        before_term = total(clients)
        wait_until(lambda: total(clients) >= before_term + REQUESTS_PER_PHASE, 60, "requests with both masters")

        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
        wait_until(lambda: not any(process_alive(pid) for pid in old_workers), STOP_TIMEOUT,
                   "the old workers are gone")
        after_term = total(clients)
        wait_until(lambda: total(clients) >= after_term + REQUESTS_PER_PHASE, 60, "requests after the old master")
    finally:
        failures = stop_clients(clients)
    assert failures == [], f"{len(failures)} failed of {total(clients)}: {failures[:5]}"

    for address in (tcp, unix):  # the new master serves the new code, on both sockets
        assert [request(address, path="/version")[2] for _ in range(4)] == [b"two"] * 4
    assert pid_file.read_text().strip() == str(new)
    assert not (tmp_path / "ursa.pid.oldbin").exists()
    assert sock_path.exists()  # the new master owns it now
    assert "ignoring --bind" not in server.stderr()

    os.kill(new, signal.SIGTERM)
    wait_until(lambda: not process_alive(new), STOP_TIMEOUT, "the new master exits")
    assert not pid_file.exists()
    assert not sock_path.exists()


def test_a_new_master_that_fails_leaves_the_old_one_serving(procs, tmp_path):
    version_file = tmp_path / "version"
    version_file.write_text("one")
    pid_file = tmp_path / "ursa.pid"
    sock_path = tmp_path / "app.sock"
    server = procs.ursa("-b", f"unix:{sock_path}", "--pid", pid_file, "deployapp:app",
                        env={"DEPLOYAPP_VERSION_FILE": str(version_file)})
    (worker,) = server.wait_workers(1)
    version_file.unlink()  # the new master's workers cannot import deployapp
    server.signal(signal.SIGUSR2)
    server.wait_for_log(rf"the new master \d+ exited with status 2; this master \({server.pid}\) goes on serving")
    assert pid_file.read_text().strip() == str(server.pid)
    assert not (tmp_path / "ursa.pid.oldbin").exists()
    assert server.wait_workers(1) == [worker]
    assert server.get("/version")[2] == b"one"

    server.signal(signal.SIGUSR2)  # may be tried again
    server.wait_for_log(r"the new master \d+ exited", count=2)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not pid_file.exists()
    assert not sock_path.exists()  # still this master's, removed as it stopped
