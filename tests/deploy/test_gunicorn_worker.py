"""gunicorn -k ursa.gunicorn.Worker: gunicorn's master and settings, ursa's loop."""
import json
import signal
import textwrap
import threading

from support.processes import STOP_TIMEOUT, process_alive
from support.waiting import wait_until

from .harness import VENV_BIN, request
from .test_master import wait_in_flight


def start_gunicorn(procs, tmp_path, *args, app="deployapp:app", env=None):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir(exist_ok=True)
    argv = [VENV_BIN / "gunicorn", "-k", "ursa.gunicorn.Worker", "--no-control-socket",
            "--worker-tmp-dir", tmp_path, *args, app]
    server = procs.start(argv, env=dict(env or {}, DEPLOYAPP_MARKER_DIR=str(marker_dir)))
    server.wait_listening()
    return server, marker_dir


def test_gunicorn_workers_serve_with_ursa(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-w", "2", "-b", "127.0.0.1:0")
    workers = server.wait_workers(2)
    assert "Using worker: ursa.gunicorn.Worker" in server.stderr()
    served_by = {int(server.get("/pid")[2]) for _ in range(20)}
    assert served_by <= set(workers)
    environ = json.loads(server.get("/environ")[2])
    assert environ["wsgi.multiprocess"] is True
    status, headers, body = server.get("/stream?3")
    assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\n")
    assert headers.get("Server") == "ursa"
    assert request(server.address, "POST", "/echo", body=b"x" * 100_000)[2] == b"x" * 100_000


def test_gunicorn_unix_socket_bind(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-b", f"unix:{tmp_path}/g.sock")
    assert server.address == f"unix:{tmp_path}/g.sock"
    assert server.get("/")[2] == b"hello"


def test_gunicorn_limits_map_to_ursa_options(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-b", "127.0.0.1:0", "--limit-request-line", "64",
                               "--limit-request-fields", "5")
    assert server.get("/" + "x" * 100)[0] == 414
    assert server.get("/", headers={f"X-{index}": "1" for index in range(10)})[0] == 431
    assert server.get("/")[0] == 200


def test_gunicorn_max_requests_recycles_workers(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-w", "1", "-b", "127.0.0.1:0", "--max-requests", "4")
    pids = [int(server.get("/pid")[2]) for _ in range(10)]
    assert pids[0:4] == [pids[0]] * 4
    assert pids[4:8] == [pids[4]] * 4
    assert len({pids[0], pids[4], pids[8]}) == 3


def test_gunicorn_term_is_graceful(procs, tmp_path):
    server, markers = start_gunicorn(procs, tmp_path, "-w", "2", "-b", "127.0.0.1:0")
    workers = server.wait_workers(2)
    results = []
    thread = threading.Thread(target=lambda: results.append(server.get("/slow?1")), daemon=True)
    thread.start()
    wait_in_flight(markers)
    server.signal(signal.SIGTERM)
    thread.join(STOP_TIMEOUT)
    assert results and results[0][0] == 200 and results[0][2] == b"slow done"
    assert server.wait_exit() == 0
    wait_until(lambda: not any(process_alive(pid) for pid in workers), STOP_TIMEOUT, "workers are gone")


def test_gunicorn_quit_is_a_quick_shutdown(procs, tmp_path):
    server, markers = start_gunicorn(procs, tmp_path, "-w", "1", "-b", "127.0.0.1:0", "--graceful-timeout", "60")
    (worker,) = server.wait_workers(1)
    results = []

    def slow():
        try:
            results.append(server.get("/slow?60"))
        except Exception as exc:
            results.append(exc)
    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    wait_in_flight(markers)
    server.signal(signal.SIGQUIT)
    # Neither the request's 60 s nor the 60 s graceful timeout are waited for.
    assert server.wait_exit() == 0
    thread.join(STOP_TIMEOUT)
    assert results and isinstance(results[0], (ConnectionError, OSError)), results
    assert not process_alive(worker)


def test_gunicorn_hup_replaces_workers(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-w", "2", "-b", "127.0.0.1:0")
    old = server.wait_workers(2)
    server.signal(signal.SIGHUP)
    server.wait_workers(2, exclude=old)
    wait_until(lambda: not any(process_alive(pid) for pid in old), STOP_TIMEOUT, "the old workers are gone")
    assert server.get("/")[2] == b"hello"


def test_idle_workers_keep_their_heartbeat(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-w", "1", "-b", "127.0.0.1:0", "--timeout", "1")
    (worker,) = server.wait_workers(1)
    # Three timeouts of idleness: without heartbeats gunicorn would have
    # killed the worker by now.
    threading.Event().wait(3)
    assert server.wait_workers(1) == [worker]
    assert int(server.get("/pid")[2]) == worker
    assert "WORKER TIMEOUT" not in server.stderr()


def test_a_request_stuck_in_the_app_gets_the_worker_killed_after_timeout(procs, tmp_path):
    server, markers = start_gunicorn(procs, tmp_path, "-w", "1", "-b", "127.0.0.1:0", "--timeout", "1")
    (worker,) = server.wait_workers(1)
    outcome = []

    def stuck():
        try:
            outcome.append(server.get("/slow?60"))
        except Exception as exc:
            outcome.append(exc)
    threading.Thread(target=stuck, daemon=True).start()
    wait_in_flight(markers)
    server.wait_for_log(rf"WORKER TIMEOUT \(pid:{worker}\)")
    server.wait_workers(1, exclude=[worker])
    assert server.get("/")[2] == b"hello"


def test_gunicorn_access_log_with_its_format_option(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server, _ = start_gunicorn(procs, tmp_path, "-b", "127.0.0.1:0", "--access-logfile", log_path,
                               "--access-logformat", "%(m)s %(U)s %(q)s %(s)s %(b)s %({X-Test}o)s")
    server.get("/header?a=1")
    wait_until(lambda: log_path.exists() and log_path.read_text(), STOP_TIMEOUT, "a line is logged")
    assert log_path.read_text().splitlines() == ["GET /header a=1 200 6 yes"]


def test_gunicorn_access_log_off_by_default(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-b", "127.0.0.1:0")
    server.get("/not-logged")
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "/not-logged" not in server.stdout() + server.stderr()


def test_gunicorn_hooks_run(procs, tmp_path):
    record = tmp_path / "hooks.log"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(textwrap.dedent(f"""
        import os

        def note(text):
            with open("{record}", "a") as out:
                out.write(text + "\\n")

        def post_fork(server, worker):
            note("post_fork %d" % worker.pid)

        def post_worker_init(worker):
            note("post_worker_init %s" % type(worker).__module__)

        def worker_exit(server, worker):
            note("worker_exit %d" % worker.pid)
    """))
    server, _ = start_gunicorn(procs, tmp_path, "-c", config, "-b", "127.0.0.1:0")
    (worker,) = server.wait_workers(1)
    wait_until(lambda: record.exists() and "post_worker_init" in record.read_text(), STOP_TIMEOUT,
               "post_worker_init ran")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert record.read_text().splitlines() == [f"post_fork {worker}", "post_worker_init ursa.gunicorn",
                                               f"worker_exit {worker}"]


def test_gunicorn_reload_restarts_workers_on_change(procs, tmp_path):
    from .test_reload import bump_mtime, serves, write_app

    write_app(tmp_path, b"one")
    server, _ = start_gunicorn(procs, tmp_path, "-b", "127.0.0.1:0", "--reload", "--reload-engine", "poll",
                               "--chdir", tmp_path, app="editable:app")
    assert server.get("/")[2] == b"one"

    # gunicorn's reloader thread takes its first look at the files some time
    # after the worker starts; an edit before that look goes unnoticed. So
    # edit (move the mtime on) until the new code serves.
    def edited_and_serving():
        bump_mtime(write_app(tmp_path, b"two"))
        return serves(server, b"two")
    wait_until(edited_and_serving, STOP_TIMEOUT, "the new code serves", interval=0.5)


def test_gunicorn_serves_an_asgi_app_with_its_lifespan(procs, tmp_path):
    log = tmp_path / "lifespan.log"
    access = tmp_path / "access.log"
    server, _ = start_gunicorn(procs, tmp_path, "-w", "2", "-b", "127.0.0.1:0", "--access-logfile", access,
                               app="asgiapp:app", env={"ASGIAPP_LIFESPAN_LOG": str(log)})
    workers = server.wait_workers(2)
    wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 2, STOP_TIMEOUT,
               "each worker ran the startup")
    served_by = {int(server.get("/pid")[2]) for _ in range(20)}
    assert served_by <= set(workers)
    assert json.loads(server.get("/scope")[2])["http_version"] == "1.1"
    assert request(server.address, "POST", "/echo", body=b"y" * 100_000)[2] == b"y" * 100_000
    wait_until(lambda: access.exists() and '"GET /scope HTTP/1.1" 200' in access.read_text(), STOP_TIMEOUT,
               "gunicorn's access log has the request")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert sorted(line.split()[0] for line in log.read_text().splitlines()) == ["shutdown"] * 2 + ["startup"] * 2
