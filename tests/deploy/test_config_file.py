"""-c FILE: a Python file of settings, as gunicorn.conf.py."""
import json
import signal
import subprocess
import textwrap

from support.processes import STOP_TIMEOUT
from support.waiting import wait_until

from .harness import APPS_DIR, process_env, ursa_command


def write_config(tmp_path, text, name="ursa.conf.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_settings_come_from_the_file(procs, tmp_path):
    config = write_config(tmp_path, f"""
        bind = ["127.0.0.1:0", "unix:{tmp_path}/app.sock"]
        workers = 2
        max_request_line = 64
        access_log = "{tmp_path}/access.log"
        wsgi_app = "deployapp:app"
    """)
    server = procs.ursa("-c", config)
    assert len(server.wait_workers(2)) == 2
    assert server.get("/" + "x" * 100)[0] == 414
    assert json.loads(server.get("/environ")[2])["wsgi.multiprocess"] is True
    assert (tmp_path / "app.sock").exists()
    wait_until(lambda: (tmp_path / "access.log").exists(), STOP_TIMEOUT, "the access log exists")


def test_command_line_wins_over_the_file(procs, tmp_path):
    config = write_config(tmp_path, """
        bind = "127.0.0.1:0"
        workers = 3
        max_request_line = 64
    """)
    server = procs.ursa("-c", config, "-w", "1", "--max-request-line", "4096", "deployapp:app")
    assert len(server.wait_workers(1)) == 1
    assert server.get("/" + "x" * 100)[0] == 200


def test_gunicorn_setting_names_are_understood(procs, tmp_path):
    config = write_config(tmp_path, f"""
        bind = "unix:{tmp_path}/app.sock"
        accesslog = "{tmp_path}/access.log"
        loglevel = "warning"
        pidfile = "{tmp_path}/ursa.pid"
        limit_request_line = 64
    """)
    server = procs.ursa("-c", config, "deployapp:app", wait=False)
    wait_until(lambda: (tmp_path / "ursa.pid").exists(), STOP_TIMEOUT, "the pid file exists")
    assert (tmp_path / "ursa.pid").read_text().strip() == str(server.pid)
    server.wait_workers(1)
    server.address = f"unix:{tmp_path}/app.sock"
    assert server.get("/" + "x" * 100)[0] == 414
    server.get("/logged")
    wait_until(lambda: "/logged" in (tmp_path / "access.log").read_text(), STOP_TIMEOUT, "the request is logged")
    assert "Listening at" not in server.stderr()  # an info line, below loglevel = warning


def test_hooks_run_with_gunicorn_signatures(procs, tmp_path):
    record = tmp_path / "hooks.log"
    config = write_config(tmp_path, f"""
        import os
        bind = "127.0.0.1:0"
        workers = 2

        def note(text):
            with open("{record}", "a") as out:
                out.write(text + "\\n")

        def on_starting(arbiter):
            note("on_starting")

        def when_ready(arbiter):
            note("when_ready %d" % arbiter.pid)

        def post_fork(arbiter, worker):
            note("post_fork %d" % worker.pid)

        def post_worker_init(worker):
            note("post_worker_init %d" % os.getpid())

        def worker_exit(arbiter, worker):
            note("worker_exit %d in %d" % (worker.pid, os.getpid()))

        def child_exit(arbiter, worker):
            note("child_exit %d in %d" % (worker.pid, os.getpid()))

        def on_exit(arbiter):
            note("on_exit")
    """)
    server = procs.ursa("-c", config, "deployapp:app")
    workers = server.wait_workers(2)
    wait_until(lambda: record.read_text().count("post_worker_init") == 2, STOP_TIMEOUT, "both workers init")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    lines = record.read_text().splitlines()
    assert lines[0] == "on_starting"
    assert f"when_ready {server.pid}" in lines
    for pid in workers:
        assert f"post_fork {pid}" in lines
        assert f"post_worker_init {pid}" in lines
        assert f"worker_exit {pid} in {pid}" in lines
        assert f"child_exit {pid} in {server.pid}" in lines
    assert lines[-1] == "on_exit"


def test_hup_rereads_the_file(procs, tmp_path):
    config = write_config(tmp_path, """
        bind = "127.0.0.1:0"
        workers = 1
    """)
    server = procs.ursa("-c", config, "deployapp:app")
    (old,) = server.wait_workers(1)
    config.write_text('bind = "127.0.0.1:0"\nworkers = 3\n')
    server.signal(signal.SIGHUP)
    new = server.wait_workers(3, exclude=[old])
    assert len(new) == 3
    assert server.get("/")[2] == b"hello"


def test_hup_with_a_broken_file_keeps_serving(procs, tmp_path):
    config = write_config(tmp_path, 'bind = "127.0.0.1:0"\n')
    server = procs.ursa("-c", config, "deployapp:app")
    (worker,) = server.wait_workers(1)
    config.write_text("workers = = 2\n")
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"reload cancelled, the config file has an error: config file .*line 1")
    assert server.wait_workers(1) == [worker]
    assert server.get("/")[2] == b"hello"


def test_unknown_names_warn_with_a_suggestion(procs, tmp_path):
    config = write_config(tmp_path, 'bind = "127.0.0.1:0"\nwokers = 2\n')
    server = procs.ursa("-c", config, "deployapp:app")
    assert "ignoring unknown setting 'wokers' (did you mean 'workers'?)" in server.stderr()


def run_to_exit(*args):
    completed = subprocess.run(ursa_command(*args), cwd=APPS_DIR, capture_output=True, text=True,
                               env=process_env(),
                               timeout=STOP_TIMEOUT, stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stderr.strip().splitlines()


def test_errors_in_the_file_are_one_line(tmp_path):
    syntax = write_config(tmp_path, "workers = \n", name="syntax.py")
    assert run_to_exit("-c", syntax, "deployapp:app") == (2, [f"ursa: error: config file {syntax}, line 1: "
                                                              f"invalid syntax"])
    raising = write_config(tmp_path, "import os\nworkers = int(os.environ['NOPE_NOT_SET'])\n", name="raising.py")
    code, lines = run_to_exit("-c", raising, "deployapp:app")
    assert code == 2 and len(lines) == 1
    assert f"config file {raising}, line 2: KeyError" in lines[0]
    bad_value = write_config(tmp_path, "workers = 'many'\n", name="value.py")
    code, lines = run_to_exit("-c", bad_value, "deployapp:app")
    assert (code, lines) == (2, [f"ursa: error: config file {bad_value}: workers must be a whole number, "
                                 f"got 'many'"])
    assert run_to_exit("-c", tmp_path / "absent.py", "deployapp:app") == (
        2, [f"ursa: error: config file {tmp_path / 'absent.py'} does not exist"])


def test_values_the_core_refuses_are_one_line_naming_the_file(tmp_path):
    config = write_config(tmp_path, "header_timeout = 0\n")
    assert run_to_exit("-c", config, "deployapp:app") == (
        2, [f"ursa: error: config file {config}: header_timeout must be between 0.001 and 1e+07 seconds, got 0"])
    config = write_config(tmp_path, "limit_request_line = 4\n", name="alias.py")
    code, lines = run_to_exit("-c", config, "deployapp:app")
    assert code == 2 and lines[0].startswith(
        f"ursa: error: config file {config}: limit_request_line must be between 16 and "), lines


def test_worker_int_hook_runs_on_quit(procs, tmp_path):
    record = tmp_path / "hooks.log"
    config = write_config(tmp_path, f"""
        import os
        bind = "127.0.0.1:0"

        def worker_int(worker):
            with open("{record}", "a") as out:
                out.write("worker_int %d\\n" % os.getpid())
    """)
    server = procs.ursa("-c", config, "deployapp:app")
    (worker,) = server.wait_workers(1)
    server.signal(signal.SIGQUIT)
    assert server.wait_exit() == 0
    assert record.read_text() == f"worker_int {worker}\n"
