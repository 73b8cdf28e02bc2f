"""The master process: signals, worker supervision, --max-requests."""
import os
import re
import signal
import threading

import pytest

from support.processes import STOP_TIMEOUT, process_alive
from support.waiting import wait_until

from .harness import request


def slow_request_in_background(server, seconds, results):
    """GET /slow?seconds on its own thread; its outcome lands in `results`."""
    def run():
        try:
            results.append(request(server.address, path=f"/slow?{seconds}"))
        except Exception as exc:  # the test inspects what happened
            results.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def wait_in_flight(marker_dir, count=1):
    wait_until(lambda: len(os.listdir(marker_dir)) >= count, STOP_TIMEOUT, f"{count} slow request(s) in flight")


def assert_all_gone(pids):
    wait_until(lambda: not any(process_alive(pid) for pid in pids), STOP_TIMEOUT,
               f"processes {pids} are gone")


def start_with_markers(procs, tmp_path, *args):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    server = procs.ursa("-b", "127.0.0.1:0", *args, "deployapp:app", env={"DEPLOYAPP_MARKER_DIR": str(marker_dir)})
    return server, marker_dir


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_graceful_stop_finishes_the_request_in_flight(procs, tmp_path, signal_number):
    server, markers = start_with_markers(procs, tmp_path, "-w", "2")
    workers = server.wait_workers(2)
    results = []
    thread = slow_request_in_background(server, 1.0, results)
    wait_in_flight(markers)
    server.signal(signal_number)
    thread.join(STOP_TIMEOUT)
    assert results and not isinstance(results[0], Exception), results
    assert results[0][0] == 200 and results[0][2] == b"slow done"
    assert server.wait_exit() == 0
    assert_all_gone(workers)
    with pytest.raises(ConnectionRefusedError):
        server.get("/")


def test_graceful_stop_kills_requests_that_outlive_the_graceful_timeout(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path, "--graceful-timeout", "0.5")
    workers = server.wait_workers(1)
    results = []
    slow_request_in_background(server, 60, results)
    wait_in_flight(markers)
    server.signal(signal.SIGTERM)
    # 60 s of app time would be far beyond this bound.
    assert server.wait_exit(timeout=STOP_TIMEOUT) == 0
    assert_all_gone(workers)


def test_quit_stops_at_once_without_waiting_for_requests(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path, "-w", "2")
    workers = server.wait_workers(2)
    results = []
    thread = slow_request_in_background(server, 60, results)
    wait_in_flight(markers)
    server.signal(signal.SIGQUIT)
    assert server.wait_exit() == 0
    assert_all_gone(workers)
    thread.join(STOP_TIMEOUT)
    assert results and isinstance(results[0], (ConnectionError, OSError)), results


def test_a_second_int_stops_at_once(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path)
    workers = server.wait_workers(1)
    results = []
    slow_request_in_background(server, 60, results)
    wait_in_flight(markers)
    server.signal(signal.SIGINT)
    server.wait_for_log("SIGINT: stopping gracefully")
    server.signal(signal.SIGINT)
    assert server.wait_exit() == 0  # long before the request's 60 s
    assert "SIGINT again: stopping now" in server.stderr()
    assert_all_gone(workers)


def test_hup_replaces_every_worker_and_loads_new_code(procs, tmp_path):
    version_file = tmp_path / "version"
    version_file.write_text("one")
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "deployapp:app",
                        env={"DEPLOYAPP_VERSION_FILE": str(version_file)})
    old = server.wait_workers(2)
    assert server.get("/version")[2] == b"one"
    version_file.write_text("two")
    server.signal(signal.SIGHUP)
    new = server.wait_workers(2, exclude=old)
    assert_all_gone(old)
    assert server.get("/version")[2] == b"two"
    assert int(server.get("/pid")[2]) in new


def test_hup_lets_the_old_workers_finish_their_requests(procs, tmp_path):
    server, markers = start_with_markers(procs, tmp_path, "-w", "1")
    (old,) = server.wait_workers(1)
    results = []
    thread = slow_request_in_background(server, 1.0, results)
    wait_in_flight(markers)
    server.signal(signal.SIGHUP)
    thread.join(STOP_TIMEOUT)
    assert results[0][0] == 200 and results[0][2] == b"slow done", results
    server.wait_workers(1, exclude=[old])
    assert_all_gone([old])


def start_then_break_the_code(procs, tmp_path):
    """Two workers serve deployapp; then its next import fails. Returns
    the server, its workers and the file whose absence breaks the code."""
    version_file = tmp_path / "version"
    version_file.write_text("good")
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--log-level", "debug", "deployapp:app",
                        env={"DEPLOYAPP_VERSION_FILE": str(version_file)})
    old = server.wait_workers(2)
    for pid in old:  # both have imported deployapp before it breaks
        server.wait_for_log(rf"worker {pid} is ready")
    version_file.unlink()
    return server, old, version_file


def test_hup_with_broken_code_keeps_the_old_workers(procs, tmp_path):
    server, old, _ = start_then_break_the_code(procs, tmp_path)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, the previous workers keep serving: importing 'deployapp' failed")
    assert server.wait_workers(2) == old
    assert server.get("/version")[2] == b"good"


def test_ttin_adds_a_worker_and_ttou_removes_one(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "deployapp:app")
    server.wait_workers(1)
    server.signal(signal.SIGTTIN)
    server.wait_workers(2)
    server.signal(signal.SIGTTIN)
    three = server.wait_workers(3)
    server.signal(signal.SIGTTOU)
    two = server.wait_workers(2)
    assert set(two) < set(three)
    assert server.get("/")[2] == b"hello"


def test_ttou_never_goes_below_one_worker(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "deployapp:app")
    (worker,) = server.wait_workers(1)
    server.signal(signal.SIGTTOU)
    server.wait_for_log(r"SIGTTOU: 1 workers")
    assert server.wait_workers(1) == [worker]


def test_usr1_reopens_the_access_log_after_rotation(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--access-log", log_path, "deployapp:app")
    server.get("/before")
    wait_until(lambda: "/before" in log_path.read_text(), STOP_TIMEOUT, "the first line is logged")
    rotated = tmp_path / "access.log.1"
    os.rename(log_path, rotated)
    server.signal(signal.SIGUSR1)
    server.wait_for_log("SIGUSR1: log files reopened")

    def new_file_has_line():
        server.get("/after")  # either worker: both must reopen
        return log_path.exists() and "/after" in log_path.read_text()
    wait_until(new_file_has_line, STOP_TIMEOUT, "requests are logged to a new file")
    wait_until(lambda: all(process_reopened(pid, log_path) for pid in server.workers()), STOP_TIMEOUT,
               "every worker has the new file open")
    assert "/after" not in rotated.read_text()


def process_reopened(pid, path):
    fd_dir = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass
    return str(path) in targets


def test_a_worker_that_dies_is_replaced(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    os.kill(workers[0], signal.SIGKILL)
    replaced = server.wait_workers(2, exclude=[workers[0]])
    assert workers[1] in replaced
    server.wait_for_log(rf"worker {workers[0]} was killed by signal SIGKILL")
    assert server.get("/")[2] == b"hello"


def test_workers_crashing_at_start_are_restarted_with_growing_delays(procs, tmp_path):
    marker = tmp_path / "crash"
    marker.write_text("")
    server = procs.ursa("-b", "127.0.0.1:0", "crashapp:app", env={"CRASHAPP_MARKER": str(marker)}, wait=False)
    match = server.wait_for_log(r"next start in (\d+\.\d)s", count=4)
    assert float(match.group(1)) > 0.4  # 0.1, 0.2, 0.4, 0.8: doubling
    # Without a delay the master would restart hundreds of times by now.
    assert server.stderr().count("was killed by signal SIGKILL") <= 8
    marker.unlink()
    server.wait_listening()
    assert server.get("/")[2] == b"alive"


def test_a_failed_reload_keeps_the_backoff_until_the_new_code_starts(procs, tmp_path):
    # The workers of the previous code keep serving after a failed reload;
    # they must not count as proof that the code now starts, or a dead
    # worker is restarted every 0.1 s, each start a failed import.
    server, old, version_file = start_then_break_the_code(procs, tmp_path)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload failed, the previous workers keep serving")
    failed_before = server.stderr().count("importing 'deployapp' failed")
    os.kill(old[0], signal.SIGKILL)
    server.wait_for_log(r"next start in", count=5)
    text = server.stderr()
    delays = [float(delay) for delay in re.findall(r"next start in (\d+\.\d)s", text)]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.8, 1.6], delays
    # Each failed start is followed by one longer wait: no burst of imports.
    assert text.count("importing 'deployapp' failed") - failed_before <= len(delays)
    assert server.get("/version")[2] == b"good"  # the survivor serves throughout
    version_file.write_text("fixed")
    server.wait_workers(2, exclude=[old[0]])
    wait_until(lambda: server.get("/version")[2] == b"fixed", STOP_TIMEOUT, "the new worker serves")


def stuck_request_in_background(server, path, results):
    def run():
        try:
            results.append(request(server.address, path=path))
        except Exception as exc:  # the test inspects what happened
            results.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("path, function", [("/spin", "spin_forever"), ("/block", "block_forever")],
                         ids=["python-loop", "c-call"])
def test_a_worker_stuck_in_the_app_is_killed_and_replaced(procs, tmp_path, path, function):
    # The gunicorn name of the setting, in a config file: it is --timeout.
    config = tmp_path / "ursa.conf.py"
    config.write_text("timeout = 2\n")
    server = procs.ursa("-c", config, "-b", "127.0.0.1:0", "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    results = []
    thread = stuck_request_in_background(server, path, results)
    match = server.wait_for_log(rf"WORKER TIMEOUT \(pid:(\d+)\): GET {path} held its loop for more than 2s")
    stuck = int(match.group(1))
    assert stuck in workers
    # Its Python stack, written by the worker itself as it aborts.
    server.wait_for_log(rf'File ".*deployapp\.py", line \d+ in {function}')
    replaced = server.wait_workers(2, exclude=[stuck])
    assert set(workers) - {stuck} < set(replaced)
    assert_all_gone([stuck])
    thread.join(STOP_TIMEOUT)
    assert results and isinstance(results[0], (ConnectionError, OSError)), results
    for _ in range(10):  # the site keeps serving, on either worker
        assert server.get("/")[2] == b"hello"
    assert "ignoring unknown setting 'timeout'" not in server.stderr()


def test_max_requests_recycles_the_worker_without_failing_requests(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "5", "deployapp:app")
    pids = [int(server.get("/pid")[2]) for _ in range(12)]
    assert pids[0:5] == [pids[0]] * 5
    assert pids[5:10] == [pids[5]] * 5
    assert pids[10:12] == [pids[10]] * 2
    assert len({pids[0], pids[5], pids[10]}) == 3
    server.wait_for_log(r"served its 5 requests \(--max-requests\)")


def test_max_requests_jitter_varies_the_limit_within_bounds(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "2", "--max-requests-jitter", "3",
                        "deployapp:app")
    pids = [int(server.get("/pid")[2]) for _ in range(40)]
    runs = []
    for pid in pids:
        if runs and runs[-1][0] == pid:
            runs[-1][1] += 1
        else:
            runs.append([pid, 1])
    complete = [length for _, length in runs[:-1]]
    assert complete and all(2 <= length <= 5 for length in complete), runs
    assert len({pid for pid, _ in runs}) == len(runs)


def test_workers_exit_when_the_master_is_killed(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    server.signal(signal.SIGKILL)
    server.wait_exit()
    assert_all_gone(workers)


def test_master_never_serves_requests_itself(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "deployapp:app")
    workers = server.wait_workers(2)
    served_by = {int(server.get("/pid")[2]) for _ in range(20)}
    assert served_by <= set(workers)
    assert server.pid not in served_by
