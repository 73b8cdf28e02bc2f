"""ASGI apps under the ursa command: found by --interface auto, their
lifespan run in each worker (startup before the worker is counted ready,
shutdown when it stops), a failed startup stopping the command with one
clear message, reloads, the access log, and a request in flight at SIGTERM."""
import json
import signal
import sys

import pytest

from support.waiting import wait_until

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")


def lifespan_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_an_asgi_app_is_served_by_two_workers_with_their_lifespans(procs, tmp_path):
    log = tmp_path / "lifespan.log"
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "-w", "2", "asgiapp:app", env={"ASGIAPP_LIFESPAN_LOG": str(log)})
    pids = server.wait_workers(2)
    server.wait_for_log(r"worker \d+ is ready", count=2)
    assert sorted(lifespan_lines(log)) == sorted(f"startup {pid}" for pid in pids)
    status, _, body = server.get("/")
    assert (status, body) == (200, b"hello")
    status, _, body = server.get("/scope")
    scope = json.loads(body)
    assert (scope["scheme"], scope["http_version"], scope["client"][0]) == ("http", "1.1", "127.0.0.1")
    assert server.stop() == 0
    assert sorted(lifespan_lines(log)) == sorted([f"startup {pid}" for pid in pids] +
                                                 [f"shutdown {pid}" for pid in pids])


def test_a_failed_lifespan_startup_stops_the_command_with_its_message(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "asgiapp:app", env={"ASGIAPP_FAIL_STARTUP": "1"}, wait=False)
    assert server.wait_exit() != 0
    assert "the database is unreachable" in server.stderr()


def test_an_app_without_lifespan_is_served(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "asgiapp:app_without_lifespan")
    server.wait_for_log(r"worker \d+ is ready")
    assert server.get("/")[2] == b"hello"


def test_lifespan_on_refuses_an_app_without_it(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "--lifespan", "on", "asgiapp:app_without_lifespan", wait=False)
    assert server.wait_exit() != 0
    assert "lifespan startup failed" in server.stderr()


def test_interface_wsgi_given_for_an_asgi_app_gives_500s(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "--interface", "wsgi", "asgiapp:app")
    server.wait_for_log(r"worker \d+ is ready")
    assert server.get("/")[0] == 500


def test_a_bad_interface_value_is_one_line(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "--interface", "rsgi", "asgiapp:app", wait=False)
    assert server.wait_exit() == 2
    assert "--interface must be one of auto, wsgi, asgi" in server.stderr()


def test_access_log_lines_for_an_asgi_app(procs, tmp_path):
    access = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "--access-log", str(access), "asgiapp:app")
    server.wait_for_log(r"worker \d+ is ready")
    assert server.get("/?x=1", headers={"User-Agent": "pytest-agent"})[0] == 200
    wait_until(lambda: access.exists() and access.read_text(), 30, "the access line is written")
    line = access.read_text().splitlines()[0]
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /?x=1 HTTP/1.1" 200 5 "-" "pytest-agent"' in line


def test_hup_runs_the_new_workers_startup_and_the_old_ones_shutdown(procs, tmp_path):
    log = tmp_path / "lifespan.log"
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "-w", "1", "asgiapp:app",
                        env={"ASGIAPP_LIFESPAN_LOG": str(log)})
    [old] = server.wait_workers(1)
    server.wait_for_log(r"worker \d+ is ready")
    server.signal(signal.SIGHUP)
    [new] = server.wait_workers(1, exclude=[old])
    wait_until(lambda: f"shutdown {old}" in lifespan_lines(log), 30, "the old worker's shutdown ran")
    assert lifespan_lines(log)[:1] == [f"startup {old}"]
    assert f"startup {new}" in lifespan_lines(log)
    assert server.get("/pid")[2] == str(new).encode()


def test_sigterm_lets_a_request_in_flight_finish(procs, tmp_path):
    server = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "asgiapp:app", env={"ASGIAPP_MARKER_DIR": str(tmp_path)})
    server.wait_for_log(r"worker \d+ is ready")
    import threading

    result = {}
    client = threading.Thread(target=lambda: result.update(response=server.get("/slow?1")))
    client.start()
    wait_until(lambda: list(tmp_path.glob("slow-*")), 30, "the request is in the app")
    server.signal(signal.SIGTERM)
    client.join(30)
    status, headers, body = result["response"]
    assert (status, body) == (200, b"slow done")
    assert server.wait_exit() == 0
