"""gunicorn users' command lines and config files: gunicorn's spellings of
ursa's settings, the flags ursa added for them (--log-config,
--capture-output, --check-config, --print-config, --name, -e, --pythonpath),
PORT and WEB_CONCURRENCY, what ursa says about gunicorn settings it does not
have, and wsgi.errors landing in the error log."""
import json
import os
import signal
import subprocess
import textwrap

import pytest

from support.processes import STOP_TIMEOUT, free_port
from support.waiting import file_text, wait_for_text, wait_until

from .harness import APPS_DIR, LISTENING, process_env, request, ursa_command


def run_to_exit(*args, env=None, cwd=APPS_DIR):
    """(returncode, stdout, stderr lines) of an ursa command expected to exit."""
    completed = subprocess.run(ursa_command(*args), cwd=cwd, capture_output=True, text=True, env=process_env(env),
                               timeout=STOP_TIMEOUT, stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stdout, completed.stderr.strip().splitlines()


def printed_config(*args, env=None):
    """--print-config's settings as a dict of name -> the printed value's text."""
    code, stdout, stderr = run_to_exit("--print-config", *args, env=env)
    assert code == 0, stderr
    return dict(line.split(" = ", 1) for line in stdout.splitlines())


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def serving_logged_to(procs, log_path, *args, env=None):
    """Start ursa whose error log is a file (so its stderr is silent); wait
    until the file says where it listens."""
    server = procs.ursa(*args, wait=False, env=env)
    server.address = wait_for_text(log_path, LISTENING.pattern).group(1)
    return server


# -- gunicorn's spellings

def test_gunicorn_limit_flags_reach_the_server(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--limit-request-line", "64", "--limit-request-fields", "4",
                        "--limit-request-field_size", "40", "deployapp:app")
    assert server.get("/" + "x" * 100)[0] == 414
    assert server.get("/", headers={f"X-{n}": "v" for n in range(6)})[0] == 431
    assert server.get("/", headers={"X-Long": "v" * 60})[0] == 431
    assert server.get("/", headers={"X-Short": "v"})[:3:2] == (200, b"hello")


def test_zero_limits_are_the_largest_ursa_allows(procs, tmp_path):
    # The defaults (8192-byte request line and header line, 100 fields)
    # would refuse each of these requests.
    config = write(tmp_path / "ursa.conf.py", "limit_request_fields = 0\n")
    server = procs.ursa("-b", "127.0.0.1:0", "-c", config, "--limit-request-line", "0",
                        "--limit-request-field_size", "0", "deployapp:app")
    assert server.get("/?" + "q" * 20000)[:3:2] == (200, b"hello")
    assert server.get("/", headers={"X-Long": "v" * 20000})[:3:2] == (200, b"hello")
    assert server.get("/", headers={f"X-{n}": "v" for n in range(150)})[:3:2] == (200, b"hello")


def test_gunicorn_spellings_set_the_same_settings_as_ursas():
    settings = printed_config("--keep-alive", "7", "--access-logfile", "/tmp/a.log", "--error-logfile",
                              "/tmp/e.log", "--worker-connections", "50", "--access-logformat", "%(h)s",
                              "-p", "/tmp/u.pid", "--log-level", "warn")
    expected = {"keepalive_timeout": "7.0", "access_log": "'/tmp/a.log'", "error_log": "'/tmp/e.log'",
                "max_connections": "50", "access_log_format": "'%(h)s'", "pid": "'/tmp/u.pid'",
                "log_level": "'warning'"}
    assert {name: settings[name] for name in expected} == expected
    assert printed_config("--log-file", "/tmp/l.log")["error_log"] == "'/tmp/l.log'"
    # ursa's own spelling wins over gunicorn's.
    assert printed_config("--keep-alive", "7", "--keepalive-timeout", "3")["keepalive_timeout"] == "3.0"


@pytest.mark.parametrize("flag", ["-t", "--timeout"])
def test_the_worker_timeout_flag_in_both_spellings(flag):
    assert printed_config(flag, "12")["timeout"] == "12.0"


@pytest.mark.parametrize("flags, trusted", [((), True), (("--forwarded-allow-ips", "10.0.0.0/8,::1"), False),
                                            (("--forwarded-allow-ips", "*"), True),
                                            (("--forwarded-allow-ips", "192.0.2.1, 127.0.0.0/8"), True)],
                         ids=["default", "a-range-without-the-peer", "star", "a-list-with-a-cidr"])
def test_forwarded_allow_ips_on_the_command_line(procs, flags, trusted):
    """The proxy here is the test itself, on 127.0.0.1: its X-Forwarded-*
    headers count only when the flag (127.0.0.1,::1 by default) trusts it."""
    server = procs.ursa("-b", "127.0.0.1:0", *flags, "deployapp:app")
    status, _, body = server.get("/environ", headers={"X-Forwarded-Proto": "https",
                                                      "X-Forwarded-For": "203.0.113.7"})
    environ = json.loads(body)
    assert status == 200
    seen = (environ["wsgi.url_scheme"], environ["REMOTE_ADDR"], environ["ursa.peer"])
    # ursa.peer keeps the socket's peer when REMOTE_ADDR is not it.
    assert seen == (("https", "203.0.113.7", "127.0.0.1") if trusted else ("http", "127.0.0.1", None))


def test_error_logfile_and_access_logfile_receive_the_lines(procs, tmp_path):
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    server = serving_logged_to(procs, error_log, "-b", "127.0.0.1:0", "--error-logfile", error_log,
                               "--access-logfile", access_log, "deployapp:app")
    assert server.get("/logged")[0] == 200
    wait_for_text(access_log, r'"GET /logged HTTP/1.1" 200')
    assert "Listening at" not in server.stderr()


def test_log_level_warn_hides_info_lines(procs, tmp_path):
    socket_path = tmp_path / "app.sock"
    server = procs.ursa("-b", f"unix:{socket_path}", "--log-level", "warn", "deployapp:app", wait=False)
    server.address = f"unix:{socket_path}"
    wait_until(lambda: socket_path.exists() and len(server.workers()) == 1, STOP_TIMEOUT, "a worker runs")
    wait_until(lambda: request(server.address)[2] == b"hello", STOP_TIMEOUT, "it serves")
    assert "Listening at" not in server.stderr()


def test_bad_values_under_gunicorns_spelling_name_that_flag():
    code, _, lines = run_to_exit("--limit-request-field_size", "3", "deployapp:app")
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith("ursa: error: --limit-request-field_size must be between 16 and "), lines
    assert run_to_exit("--log-level", "loud", "deployapp:app")[0::2] == (
        2, ["ursa: error: --log-level must be one of debug, info, warning, error, critical, got 'loud'"])


# -- -e/--env, raw_env, --pythonpath

def test_env_flags_and_raw_env_reach_the_workers(procs, tmp_path):
    config = write(tmp_path / "ursa.conf.py", 'raw_env = ["FROM_FILE=file value", "SHARED=from the file"]\n')
    server = procs.ursa("-b", "127.0.0.1:0", "-c", config, "-e", "GREETING=hi there", "--env", "EMPTY=",
                        "-e", "SHARED=from the command line", "deployapp:app")
    assert server.get("/getenv?GREETING")[2] == b"hi there"
    assert server.get("/getenv?EMPTY")[2] == b""
    # The command line adds to the file's raw_env, and wins where both set a name.
    assert server.get("/getenv?FROM_FILE")[2] == b"file value"
    assert server.get("/getenv?SHARED")[2] == b"from the command line"


def test_env_without_an_equals_sign_is_one_line():
    assert run_to_exit("-e", "GREETING", "deployapp:app")[0::2] == (
        2, ["ursa: error: --env must be KEY=VALUE, got 'GREETING'"])


def test_pythonpath_finds_the_app_elsewhere(procs, tmp_path):
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    write(tmp_path / "two" / "elsewhere.py", """
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"found elsewhere"]
    """)
    server = procs.ursa("-b", "127.0.0.1:0", "--pythonpath", f"{tmp_path / 'one'},{tmp_path / 'two'}",
                        "elsewhere:app")
    assert server.get("/")[2] == b"found elsewhere"


# -- PORT and WEB_CONCURRENCY

def test_port_binds_every_address_without_bind(procs):
    port = free_port()
    server = procs.ursa("deployapp:app", env={"PORT": str(port)})
    assert server.address == f"http://0.0.0.0:{port}"
    assert request(f"http://127.0.0.1:{port}")[2] == b"hello"


def test_bind_wins_over_port(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env={"PORT": str(free_port())})
    assert server.address.startswith("http://127.0.0.1:")


def test_web_concurrency_is_the_default_number_of_workers(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env={"WEB_CONCURRENCY": "3"})
    assert len(server.wait_workers(3)) == 3
    assert printed_config("-w", "2", env={"WEB_CONCURRENCY": "3"})["workers"] == "2"


def test_script_name_in_the_environment_mounts_the_app(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env={"SCRIPT_NAME": "/shop"})
    assert server.get("/shop/header")[2] == b"header"
    # Outside the prefix a request reaches the app as it is (test_forwarded.py).
    assert server.get("/header")[2] == b"header"
    assert printed_config("--script-name", "/other", env={"SCRIPT_NAME": "/shop"})["script_name"] == "'/other'"


@pytest.mark.parametrize("name, value, expected", [
    ("PORT", "http", "ursa: error: the PORT environment variable must be a whole number, got 'http'; unset it "
                     "or give -b/--bind"),
    ("WEB_CONCURRENCY", "0", "ursa: error: the WEB_CONCURRENCY environment variable must be at least 1, got 0; "
                             "unset it or give -w/--workers"),
    ("SCRIPT_NAME", "shop/", 'ursa: error: the SCRIPT_NAME environment variable must be "" or a path like /app '
                             '(a leading "/", none at the end), got \'shop/\'; unset it or give --script-name'),
])
def test_bad_paas_variables_are_one_line(name, value, expected):
    assert run_to_exit("deployapp:app", env={name: value})[0::2] == (2, [expected])


# -- logging: --log-config, logconfig_dict, --capture-output, wsgi.errors

def test_log_config_file_shapes_the_error_log(procs, tmp_path):
    shaped = tmp_path / "shaped.log"
    config = write(tmp_path / "logging.ini", f"""
        [loggers]
        keys = root, ursa

        [handlers]
        keys = shaped

        [formatters]
        keys = plain

        [logger_root]
        level = WARNING
        handlers =

        [logger_ursa]
        level = INFO
        handlers = shaped
        qualname = ursa.error
        propagate = 0

        [handler_shaped]
        class = FileHandler
        args = ({str(shaped)!r}, "a")
        formatter = plain

        [formatter_plain]
        format = SHAPED %(levelname)s %(message)s
    """)
    server = serving_logged_to(procs, shaped, "-b", "127.0.0.1:0", "--log-config", config, "deployapp:app")
    assert server.get("/raise")[0] == 500
    wait_for_text(shaped, r"SHAPED ERROR .*\nTraceback")
    assert "SHAPED INFO Listening at: http://127.0.0.1:" in shaped.read_text()


def test_logconfig_dict_in_the_config_file(procs, tmp_path):
    shaped = tmp_path / "shaped.log"
    config = write(tmp_path / "ursa.conf.py", f"""
        logconfig_dict = {{
            "formatters": {{"plain": {{"format": "DICT %(levelname)s %(message)s"}}}},
            "handlers": {{"shaped": {{"class": "logging.FileHandler", "filename": {str(shaped)!r},
                                     "formatter": "plain"}}}},
            "loggers": {{"ursa.error": {{"handlers": ["shaped"], "level": "INFO", "propagate": False}}}},
        }}
    """)
    serving_logged_to(procs, shaped, "-b", "127.0.0.1:0", "-c", config, "deployapp:app")
    assert "DICT INFO Listening at" in shaped.read_text()


def test_bad_logging_configurations_are_one_line(tmp_path):
    code, _, lines = run_to_exit("--log-config", tmp_path / "absent.ini", "deployapp:app")
    assert (code, lines) == (2, [f"ursa: error: --log-config {tmp_path / 'absent.ini'} does not exist; give a "
                                 f"logging fileConfig file"])
    broken = write(tmp_path / "broken.ini", "[loggers]\nkeys = root\n")
    code, _, lines = run_to_exit("--log-config", broken, "deployapp:app")
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"ursa: error: --log-config {broken}: "), lines
    config = write(tmp_path / "ursa.conf.py", 'logconfig_dict = {"handlers": {"h": {"class": "no.such.Class"}}}\n')
    code, _, lines = run_to_exit("-c", config, "deployapp:app")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("ursa: error: logconfig_dict: "), lines
    assert "no.such" in lines[0] or "'h'" in lines[0], lines


def test_wsgi_errors_land_in_the_error_log(procs, tmp_path):
    error_log = tmp_path / "error.log"
    server = serving_logged_to(procs, error_log, "-b", "127.0.0.1:0", "--error-log", error_log, "deployapp:app")
    assert server.get("/wsgi-errors?the-app-complains")[2] == b"written"
    wait_for_text(error_log, r"\[ERROR\] the-app-complains\n")
    assert "the-app-complains" not in server.stderr() + server.stdout()


def test_capture_output_sends_stdout_and_stderr_to_the_error_log_and_follows_a_reopen(procs, tmp_path):
    error_log = tmp_path / "error.log"
    server = serving_logged_to(procs, error_log, "-b", "127.0.0.1:0", "--error-log", error_log,
                               "--capture-output", "deployapp:app")
    assert server.get("/print?first")[2] == b"printed"
    wait_for_text(error_log, r"stdout first\n")
    wait_for_text(error_log, r"stderr first\n")
    # logrotate moves the file away and sends USR1: the streams follow.
    error_log.rename(tmp_path / "error.log.1")
    server.signal(signal.SIGUSR1)
    wait_for_text(error_log, r"SIGUSR1: log files reopened")
    wait_until(lambda: server.get("/print?second")[2] == b"printed" and "stderr second" in file_text(error_log),
               STOP_TIMEOUT, "the worker's stderr reaches the new file")
    wait_for_text(error_log, r"stdout second\n")
    assert "second" not in (tmp_path / "error.log.1").read_text()
    assert "first" not in server.stdout() + server.stderr()


def test_without_capture_output_prints_stay_on_the_standard_streams(procs, tmp_path):
    error_log = tmp_path / "error.log"
    server = serving_logged_to(procs, error_log, "-b", "127.0.0.1:0", "--error-log", error_log, "deployapp:app")
    assert server.get("/print?plain")[2] == b"printed"
    wait_until(lambda: "stdout plain" in server.stdout() and "stderr plain" in server.stderr(), STOP_TIMEOUT,
               "the prints reach the standard streams")
    assert "plain" not in error_log.read_text()


# -- --check-config, --print-config

def test_check_config_loads_the_config_and_the_app_and_binds_nothing(tmp_path):
    socket_path = tmp_path / "app.sock"
    config = write(tmp_path / "ursa.conf.py", f'bind = "unix:{socket_path}"\nworkers = 2\n')
    code, stdout, lines = run_to_exit("--check-config", "-c", config, "deployapp:app")
    assert (code, lines) == (0, [])
    assert stdout == "ursa: the config and the app deployapp:app load\n"
    assert not socket_path.exists()


@pytest.mark.parametrize("args, expected", [
    (["deployapp:nope"], "ursa: error: 'deployapp' has no attribute 'nope'; check APP in MODULE:APP"),
    (["brokenapp:app"], "ursa: error: "),
    (["--workers", "many", "deployapp:app"], "ursa: error: --workers must be a whole number, got 'many'"),
    ([], "ursa: error: which app? give MODULE:APP"),
])
def test_check_config_fails_with_status_1_and_the_reason(args, expected):
    code, stdout, lines = run_to_exit("--check-config", *args)
    assert (code, stdout, len(lines)) == (1, "", 1), lines
    assert lines[0].startswith(expected), lines


def test_print_config_shows_each_source_in_order(tmp_path):
    config = write(tmp_path / "ursa.conf.py", """
        workers = 3
        limit_request_line = 100
        timeout = 12
        def post_request(worker, req, environ, resp):
            pass
    """)
    settings = printed_config("-c", config, "-w", "2", "deployapp:app", env={"PORT": "5123"})
    expected = {"wsgi_app": "'deployapp:app'", "bind": "['0.0.0.0:5123']", "workers": "2",
                "max_request_line": "100", "timeout": "12.0", "post_request": "post_request"}
    assert {name: settings[name] for name in expected} == expected


# -- --name

def command_line_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode().strip()


def test_name_sets_the_process_titles(procs):
    pytest.importorskip("setproctitle")
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--name", "shop", "deployapp:app")
    workers = server.wait_workers(2)
    assert command_line_of(server.pid) == "ursa: master [shop]"
    wait_until(lambda: [command_line_of(pid) for pid in workers] == ["ursa: worker [shop]"] * 2, STOP_TIMEOUT,
               "both workers have their title")


def test_name_without_setproctitle_keeps_the_title_silently(procs, tmp_path):
    (tmp_path / "setproctitle.py").write_text("raise ImportError('setproctitle is not installed here')\n")
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    server = procs.ursa("-b", "127.0.0.1:0", "--name", "shop", "deployapp:app", env={"PYTHONPATH": pythonpath})
    (worker,) = server.wait_workers(1)
    assert server.get("/")[2] == b"hello"
    assert "-m ursa" in command_line_of(server.pid) and "-m ursa" in command_line_of(worker)
    assert "setproctitle" not in server.stderr() and "WARNING" not in server.stderr()


# -- gunicorn settings ursa does not have

def test_unsupported_gunicorn_settings_say_what_ursa_does_instead(procs, tmp_path):
    config = write(tmp_path / "gunicorn.conf.py", """
        bind = "127.0.0.1:0"
        threads = 4
        worker_class = "gevent"
        certfile = "/etc/ssl/app.pem"
        timeout = 60
        forwarded_allow_ips = "127.0.0.1,10.0.0.0/8"
        raw_env = ["A=b"]
        def pre_exec(server):
            pass
    """)
    server = procs.ursa("-c", config, "deployapp:app")
    log = server.stderr()
    assert (f"config file {config}: ignoring gunicorn's threads: ursa workers are single-threaded event loops; "
            f"use more workers") in log
    assert "ignoring gunicorn's worker_class: ursa runs its own worker" in log
    assert "gunicorn -k ursa.gunicorn.Worker" in log
    assert "ignoring gunicorn's certfile: ursa does not terminate TLS; put nginx or HAProxy in front" in log
    assert "the pre_exec hook is never called" in log
    # These are ursa's settings too: no word about them.
    for supported in ("timeout", "forwarded_allow_ips", "raw_env"):
        assert supported not in log
    assert server.get("/")[2] == b"hello"


@pytest.mark.parametrize("args, expected", [
    (["--threads", "4"], "ursa: error: --threads is gunicorn's and ursa has no such flag: ursa workers are "
                         "single-threaded event loops; use more workers"),
    (["-k", "gevent"], "ursa: error: -k is gunicorn's and ursa has no such flag: ursa runs its own worker"),
    (["-D"], "ursa: error: -D is gunicorn's and ursa has no such flag: ursa stays in the foreground"),
    (["--certfile", "x.pem"], "ursa: error: --certfile is gunicorn's and ursa has no such flag: ursa does not "
                              "terminate TLS"),
])
def test_unsupported_gunicorn_flags_are_one_line(args, expected):
    code, _, lines = run_to_exit(*args, "deployapp:app")
    assert (code, len(lines)) == (2, 1), lines
    assert lines[0].startswith(expected), lines
