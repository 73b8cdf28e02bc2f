"""gunicorn's pre_request, post_request and worker_abort hooks, and the
server.log and worker.log that gunicorn's hooks call, in a config file of
the ursa command."""
import json
import signal
import textwrap

import pytest

from support.processes import STOP_TIMEOUT
from support.waiting import file_text, wait_for_text, wait_until

# Each hook appends one JSON line to RECORD.
HOOKS = """
import json, os
RECORD = {record!r}
bind = "127.0.0.1:0"

def note(**fields):
    with open(RECORD, "a") as out:
        out.write(json.dumps(dict(pid=os.getpid(), **fields)) + "\\n")

def pre_request(worker, req):
    note(hook="pre_request", worker=worker.pid, method=req.method, uri=req.uri, path=req.path, query=req.query,
         version=list(req.version), scheme=req.scheme, headers=dict(req.headers), remote_addr=req.remote_addr)
    if req.path == "/refused-by-hook":
        raise RuntimeError("pre_request refuses this one")

def post_request(worker, req, environ, resp):
    note(hook="post_request", worker=worker.pid, path=req.path, path_info=environ.get("PATH_INFO",
         environ.get("path")), status=resp.status, status_code=resp.status_code, sent=resp.sent,
         headers=dict(resp.headers))
    if req.path == "/stream":
        raise ValueError("post_request fails for this one")
"""


def records(path):
    return [json.loads(line) for line in file_text(path).splitlines()]


def wait_for_records(path, count):
    return wait_until(lambda: len(records(path)) >= count and records(path), STOP_TIMEOUT,
                      f"{count} hook records in {path}")


@pytest.fixture
def hooks_config(tmp_path):
    record = tmp_path / "hooks.jsonl"
    config = tmp_path / "ursa.conf.py"
    config.write_text(HOOKS.format(record=str(record)))
    return config, record


def test_pre_and_post_request_see_the_request_and_its_response(procs, hooks_config):
    config, record = hooks_config
    server = procs.ursa("-c", config, "deployapp:app")
    (worker,) = server.wait_workers(1)
    assert server.get("/header?x=1", headers={"X-Client": "tests"})[2] == b"header"
    pre, post = wait_for_records(record, 2)
    assert pre == {"pid": worker, "hook": "pre_request", "worker": worker, "method": "GET", "uri": "/header?x=1",
                   "path": "/header", "query": "x=1", "version": [1, 1], "scheme": "http",
                   "headers": {"HOST": pre["headers"]["HOST"], "ACCEPT-ENCODING": "identity", "X-CLIENT": "tests"},
                   "remote_addr": "127.0.0.1"}
    assert post == {"pid": worker, "hook": "post_request", "worker": worker, "path": "/header",
                    "path_info": "/header", "status": "200 OK", "status_code": 200, "sent": 6,
                    "headers": {"Content-Type": "text/plain", "Content-Length": "6", "X-Test": "yes"}}


def test_post_request_of_a_failing_app_sees_the_servers_500(procs, hooks_config):
    config, record = hooks_config
    server = procs.ursa("-c", config, "deployapp:app")
    assert server.get("/raise")[0] == 500
    _, post = wait_for_records(record, 2)
    assert (post["path"], post["status"], post["status_code"]) == ("/raise", "500 Internal Server Error", 500)


def test_a_failing_pre_request_is_a_500_and_a_failing_post_request_only_a_log_line(procs, hooks_config):
    config, record = hooks_config
    server = procs.ursa("-c", config, "--access-log", "-", "deployapp:app")
    assert server.get("/refused-by-hook")[0] == 500
    server.wait_for_log("RuntimeError: pre_request refuses this one")
    status, _, body = server.get("/stream?3")
    assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\n")
    server.wait_for_log(r"the post_request hook failed for GET /stream\?3(.|\n)*ValueError: post_request fails")
    # The access log, which shares the after-response call, still has both.
    wait_until(lambda: '"GET /stream?3 HTTP/1.1" 200' in server.stdout(), STOP_TIMEOUT, "the access line")
    assert '"GET /refused-by-hook HTTP/1.1" 500' in server.stdout()
    assert server.get("/")[2] == b"hello"


def test_hooks_run_for_an_asgi_app_with_the_scope_as_environ(procs, hooks_config):
    config, record = hooks_config
    server = procs.ursa("-c", config, "asgiapp:app")
    (worker,) = server.wait_workers(1)
    assert server.get("/?q=2")[2] == b"hello"
    pre, post = wait_for_records(record, 2)
    assert (pre["hook"], pre["method"], pre["uri"], pre["query"], pre["worker"]) == ("pre_request", "GET", "/?q=2",
                                                                                    "q=2", worker)
    assert (post["hook"], post["path_info"], post["status"], post["sent"]) == ("post_request", "/", "200 OK", 5)
    assert post["headers"] == {"content-type": "text/plain"}


def test_server_log_and_worker_log_write_to_the_error_log(procs, tmp_path):
    config = tmp_path / "ursa.conf.py"
    config.write_text(textwrap.dedent("""
        bind = "127.0.0.1:0"

        def when_ready(server):
            server.log.info("when_ready says hello through server.log")
            server.log.warning("and warns")

        def post_worker_init(worker):
            worker.log.info("worker %d is ready", worker.pid)

        def on_exit(server):
            server.log.critical("on_exit, the last word")
    """))
    server = procs.ursa("-c", config, "deployapp:app")
    (worker,) = server.wait_workers(1)
    server.wait_for_log(r"\[INFO\] when_ready says hello through server.log")
    server.wait_for_log(r"\[WARNING\] and warns")
    server.wait_for_log(rf"\[{worker}\] \[INFO\] worker {worker} is ready")
    assert server.stop() == 0
    assert "[CRITICAL] on_exit, the last word" in server.stderr()


def test_worker_abort_runs_when_the_timeout_kills_a_worker(procs, tmp_path):
    record = tmp_path / "abort.log"
    config = tmp_path / "ursa.conf.py"
    config.write_text(textwrap.dedent(f"""
        import os
        bind = "127.0.0.1:0"
        timeout = 1

        def worker_abort(worker):
            worker.log.warning("worker_abort in %d", worker.pid)
            with open({str(record)!r}, "a") as out:
                out.write("worker_abort %d %d\\n" % (worker.pid, os.getpid()))
    """))
    server = procs.ursa("-c", config, "deployapp:app")
    (worker,) = server.wait_workers(1)
    try:
        server.get("/spin", timeout=STOP_TIMEOUT)
    except OSError:
        pass  # the worker died with the connection
    wait_for_text(record, rf"worker_abort {worker} {worker}\n")
    server.wait_for_log(rf"WORKER TIMEOUT \(pid:{worker}\)")
    # faulthandler still writes the stack, before the hook runs.
    log = server.wait_for_log(rf"worker_abort in {worker}")
    assert "spin_forever" in server.stderr()[:log.start()]
    (replacement,) = server.wait_workers(1, exclude=[worker])
    assert server.get("/pid")[2] == str(replacement).encode()


def test_worker_abort_is_not_called_on_a_plain_stop(procs, tmp_path):
    record = tmp_path / "abort.log"
    config = tmp_path / "ursa.conf.py"
    config.write_text(f'bind = "127.0.0.1:0"\ndef worker_abort(worker):\n    open({str(record)!r}, "a").close()\n')
    server = procs.ursa("-c", config, "deployapp:app")
    server.wait_workers(1)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not record.exists()
