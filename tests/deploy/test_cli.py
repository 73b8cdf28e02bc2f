"""The ursa command: app specs, options reaching the server, and one-line
errors for the mistakes users make."""
import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

import ursa

from support.processes import STOP_TIMEOUT
from support.rawhttp import RawConnection
from support.waiting import wait_until

from .harness import APPS_DIR, PYTHON, VENV_BIN, process_env, request, ursa_command

NOBODY_UID = 65534


def run_ursa_to_exit(*args, cwd=APPS_DIR, timeout=STOP_TIMEOUT, preexec_fn=None):
    """Run the CLI expecting it to exit on its own: (returncode, stdout, stderr)."""
    completed = subprocess.run(ursa_command(*args), cwd=cwd, capture_output=True, text=True, env=process_env(),
                               timeout=timeout, preexec_fn=preexec_fn, stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stdout, completed.stderr


def assert_one_line_error(returncode, stderr, *fragments):
    lines = stderr.strip().splitlines()
    assert returncode == 2, stderr
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("ursa: error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_version_prints_the_package_version():
    returncode, stdout, _ = run_ursa_to_exit("--version")
    assert returncode == 0
    assert stdout.strip() == f"ursa {ursa.__version__}"


def test_help_lists_every_limit_and_timeout_of_run():
    returncode, stdout, _ = run_ursa_to_exit("--help")
    assert returncode == 0
    for name in ursa.OPTIONS:
        if name not in ("access_log", "multiprocess"):
            assert "--" + name.replace("_", "-") in stdout, name
    for flag in ("--bind", "--workers", "--access-log-format", "--max-requests-jitter", "--chdir", "--pid",
                 "--umask", "--user", "--group", "--config", "--reload", "--log-level"):
        assert flag in stdout, flag


def test_serves_module_colon_name(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app")
    status, _, body = server.get("/")
    assert (status, body) == (200, b"hello")


def test_bare_module_serves_its_application(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp")
    assert server.get("/")[2] == b"hello"


def test_factory_call_without_arguments(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "factoryapp:create_app()")
    assert server.get("/")[2] == b"hi!"


def test_factory_call_with_literal_arguments(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "factoryapp:create_app('hello', punctuation='?')")
    assert server.get("/")[2] == b"hello?"


def console_script():
    script = shutil.which("ursa", path=str(VENV_BIN))
    assert script is not None, f"no ursa console script in {VENV_BIN}: run pip install -e . to install it"
    return script


def test_python_dash_m_and_console_script_run_the_same_command():
    script = console_script()
    completed = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=STOP_TIMEOUT)
    assert completed.stdout.strip() == f"ursa {ursa.__version__}"


def test_console_script_finds_modules_in_the_working_directory(procs):
    script = console_script()
    server = procs.start([script, "-b", "127.0.0.1:0", "deployapp:app"], cwd=APPS_DIR)
    server.wait_listening()
    assert server.get("/")[2] == b"hello"


def test_binds_several_addresses_at_once(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    server = procs.ursa("-b", "127.0.0.1:0", "-b", f"unix:{sock_path}", "-b", "[::1]:0", "deployapp:app")
    server.wait_for_log(r"Listening at: ", count=3)  # the first line may come before the others are written
    addresses = [match.split()[0] for match in server.stderr().split("Listening at: ")[1:]]
    assert len(addresses) == 3
    for address in addresses:
        assert request(address, path="/")[2] == b"hello", address
    assert f"unix:{sock_path}" in addresses


def test_abstract_unix_socket(procs, token):
    server = procs.ursa("-b", f"unix:@{token}", "deployapp:app")
    assert server.address == f"unix:@{token}"
    assert server.get("/")[2] == b"hello"


def test_fd_bind_serves_an_inherited_listening_socket(procs):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    server = procs.ursa("-b", f"fd://{fd}", "deployapp:app", pass_fds=(fd,))
    listener.close()
    assert server.address == f"http://127.0.0.1:{port}"
    assert server.get("/")[2] == b"hello"


def test_limit_options_reach_the_server(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--max-request-line", "64", "deployapp:app")
    assert server.get("/" + "a" * 100)[0] == 414
    assert server.get("/short")[0] == 200


def test_one_worker_is_not_multiprocess_and_two_are(procs):
    single = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", name="single")
    double = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "deployapp:app", name="double")
    assert json.loads(single.get("/environ")[2])["wsgi.multiprocess"] is False
    assert json.loads(double.get("/environ")[2])["wsgi.multiprocess"] is True


def test_chdir_loads_the_app_from_that_directory(procs, tmp_path):
    server = procs.ursa("-b", "127.0.0.1:0", "--chdir", APPS_DIR, "factoryapp:create_app()", cwd=tmp_path)
    assert server.get("/")[2] == b"hi!"


def test_pid_file_is_written_and_removed_at_exit(procs, tmp_path):
    pid_file = tmp_path / "ursa.pid"
    server = procs.ursa("-b", "127.0.0.1:0", "--pid", pid_file, "deployapp:app")
    assert pid_file.read_text().strip() == str(server.pid)
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not pid_file.exists()


def test_pid_file_of_a_running_server_refuses_a_second_one(procs, tmp_path):
    pid_file = tmp_path / "ursa.pid"
    procs.ursa("-b", "127.0.0.1:0", "--pid", pid_file, "deployapp:app")
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "--pid", pid_file, "deployapp:app")
    assert_one_line_error(returncode, stderr, str(pid_file), "running")


def test_umask_applies_to_the_unix_socket_file(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    procs.ursa("-b", f"unix:{sock_path}", "--umask", "077", "deployapp:app")
    assert os.stat(sock_path).st_mode & 0o777 == 0o700


def test_unix_socket_file_is_removed_at_exit(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    server = procs.ursa("-b", f"unix:{sock_path}", "deployapp:app")
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not sock_path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_and_group_run_workers_unprivileged(procs):
    # factoryapp imports nothing: nobody cannot read this machine's stdlib under /root.
    server = procs.ursa("-b", "127.0.0.1:0", "--user", "nobody", "--group", str(NOBODY_UID),
                        "factoryapp:create_app()")
    (worker,) = server.wait_workers(1)
    with open(f"/proc/{worker}/status") as status:
        fields = dict(line.split(":", 1) for line in status.read().splitlines())
    assert fields["Uid"].split()[:2] == [str(NOBODY_UID)] * 2
    assert fields["Gid"].split()[:2] == [str(NOBODY_UID)] * 2
    assert server.get("/")[2] == b"hi!"


def test_log_level_debug_shows_worker_starts_and_warning_hides_info(procs):
    debug = procs.ursa("-b", "127.0.0.1:0", "--log-level", "debug", "deployapp:app", name="debug")
    (worker,) = debug.wait_workers(1)
    assert f"started worker {worker}" in debug.stderr()
    quiet = procs.ursa("-b", "unix:@" + f"quiet-{os.getpid()}", "--log-level", "warning", "deployapp:app",
                       name="quiet", wait=False)
    quiet.wait_workers(1)
    quiet.address = f"unix:@quiet-{os.getpid()}"
    assert quiet.get("/")[2] == b"hello"
    assert quiet.stderr() == ""


def test_app_exceptions_are_logged_through_the_error_log(procs, tmp_path):
    error_log = tmp_path / "error.log"
    server = procs.ursa("-b", f"unix:{tmp_path}/s.sock", "--error-log", error_log, "deployapp:app", wait=False)
    wait_until(lambda: "Listening at" in error_log.read_text() if error_log.exists() else False, STOP_TIMEOUT,
               "the error log shows the start")
    server.address = "unix:" + str(tmp_path / "s.sock")
    assert server.get("/raise")[0] == 500
    wait_until(lambda: "ValueError: deployapp failure" in error_log.read_text(), STOP_TIMEOUT,
               "the traceback is in the error log")
    text = error_log.read_text()
    assert "Traceback (most recent call last)" in text and "[ERROR]" in text
    assert server.stderr() == ""


def test_reuse_port_lets_two_masters_share_a_port(procs):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = procs.ursa("-b", f"127.0.0.1:{port}", "--reuse-port", "deployapp:app", name="first")
    second = procs.ursa("-b", f"127.0.0.1:{port}", "--reuse-port", "deployapp:app", name="second")
    assert first.address == second.address == f"http://127.0.0.1:{port}"
    assert first.get("/")[2] == b"hello"


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (Debian's iproute2)")
def test_backlog_sets_the_listen_queue(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--backlog", "7", "deployapp:app")
    port = server.address.rpartition(":")[2]
    listing = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    # For a listening socket, ss shows the backlog as Send-Q.
    assert listing.split()[2] == "7", listing


def test_keepalive_timeout_closes_idle_connections(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--keepalive-timeout", "0.2", "deployapp:app")
    host, _, port = server.address[len("http://"):].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=STOP_TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        RawConnection(sock, STOP_TIMEOUT).read_response()
        assert sock.recv(4096) == b""  # closed by the server after 0.2 s idle, well before the timeout


# -- errors: one line, what to fix, exit status 2


def test_unknown_module_is_one_line(procs):
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "no_such_module:app")
    assert_one_line_error(returncode, stderr, "no_such_module", "--chdir")


def test_unknown_attribute_suggests_the_close_name():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "deployapp:ap")
    assert_one_line_error(returncode, stderr, "'ap'", "did you mean 'app'")


def test_exception_while_importing_the_app_names_file_and_line():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "brokenapp:app")
    assert_one_line_error(returncode, stderr, "KeyError", "brokenapp.py", "line 3")


def test_attribute_that_is_not_callable_is_rejected():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "factoryapp:not_an_app")
    assert_one_line_error(returncode, stderr, "not a WSGI app")


def test_bad_factory_arguments_are_rejected():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "factoryapp:create_app(nope=1)")
    assert_one_line_error(returncode, stderr, "create_app", "TypeError")


def test_app_errors_are_one_line_with_several_workers():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "-w", "3", "no_such_module:app")
    assert_one_line_error(returncode, stderr, "no_such_module")


def test_port_in_use_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        returncode, _, stderr = run_ursa_to_exit("-b", f"127.0.0.1:{port}", "deployapp:app")
    assert_one_line_error(returncode, stderr, f"127.0.0.1:{port}", "already in use")


# Started as root, the command drops to nobody after importing what it
# needs: this machine's Python lives under /root, which nobody cannot read.
RUN_AS_NOBODY = f"""
import os, sys
import ursa.cli, ursa.arbiter, ursa.accesslog, ursa.config, ursa.systemd
ursa.cli.build_parser()  # argparse loads gettext's modules on first use
"x".encode("idna")  # getaddrinfo loads this codec on first use
os.setgroups([])
os.setgid({NOBODY_UID})
os.setuid({NOBODY_UID})
sys.exit(ursa.cli.main(sys.argv[1:]))
"""


def run_ursa_unprivileged(*args):
    if os.geteuid() != 0:
        return run_ursa_to_exit(*args)
    completed = subprocess.run([PYTHON, "-c", RUN_AS_NOBODY, *map(str, args)], cwd=APPS_DIR, env=process_env(),
                               capture_output=True, text=True, timeout=STOP_TIMEOUT, stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stdout, completed.stderr


def test_privileged_port_without_rights_is_one_line():
    returncode, _, stderr = run_ursa_unprivileged("-b", "127.0.0.1:81", "deployapp:app")
    assert_one_line_error(returncode, stderr, "permission denied", "below 1024")


def test_unix_socket_in_unwritable_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    returncode, _, stderr = run_ursa_unprivileged("-b", f"unix:{locked}/app.sock", "deployapp:app")
    assert_one_line_error(returncode, stderr, "permission denied", str(locked))


def test_bad_bind_syntax_is_one_line():
    returncode, _, stderr = run_ursa_to_exit("-b", "8000", "deployapp:app")
    assert_one_line_error(returncode, stderr, "127.0.0.1:8000")
    returncode, _, stderr = run_ursa_to_exit("-b", "localhost:http", "deployapp:app")
    assert_one_line_error(returncode, stderr, "port must be a number")


def test_bad_option_value_is_one_line():
    returncode, _, stderr = run_ursa_to_exit("-w", "zero", "deployapp:app")
    assert_one_line_error(returncode, stderr, "--workers", "whole number")
    returncode, _, stderr = run_ursa_to_exit("--keepalive-timeout", "-1", "deployapp:app")
    assert_one_line_error(returncode, stderr, "--keepalive-timeout")


@pytest.mark.parametrize("flag, value, expected", [
    ("--header-timeout", "0", "--header-timeout must be between 0.001 and 1e+07 seconds, got 0"),
    ("--graceful-timeout", "-1", "--graceful-timeout must be between 0.001 and 1e+07 seconds, got -1"),
    ("--max-headers", "0", "--max-headers must be between 1 and 1048576, got 0"),
    ("--max-request-line", "8", "--max-request-line must be between 16 and "),
    ("--min-body-rate", "-5", "--min-body-rate must be between 0 (off) and 1e+12 bytes per second, got -5"),
    ("--body-timeout", "soon", "--body-timeout must be a number of seconds, got 'soon'"),
    ("--max-requests", "-1", "--max-requests must be between 0 and "),
])
def test_values_the_core_refuses_are_refused_before_binding(flag, value, expected):
    # Before the check, the master bound, said "Listening at" and its
    # workers died one after the other on the core's ValueError.
    returncode, stdout, stderr = run_ursa_to_exit("-w", "2", flag, value, "deployapp:app")
    assert_one_line_error(returncode, stderr, expected)
    assert "Listening at" not in stderr + stdout


def test_user_switch_without_root_is_one_line():
    returncode, _, stderr = run_ursa_unprivileged("--user", "root", "deployapp:app")
    assert_one_line_error(returncode, stderr, "--user", "root")


def test_unwritable_access_log_is_one_line(tmp_path):
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0", "--access-log", tmp_path / "missing" / "a.log",
                                             "deployapp:app")
    assert_one_line_error(returncode, stderr, "access log", "missing")


def test_bad_access_log_format_is_one_line():
    returncode, _, stderr = run_ursa_to_exit("--access-log", "-", "--access-log-format", "%(zz)s", "deployapp:app")
    assert_one_line_error(returncode, stderr, "%(zz)s")


def test_missing_app_argument_prints_usage_and_exits_2():
    returncode, _, stderr = run_ursa_to_exit("-b", "127.0.0.1:0")
    assert returncode == 2
    assert "MODULE:APP" in stderr


def test_errors_do_not_leave_processes_or_socket_files(tmp_path):
    sock_path = tmp_path / "app.sock"
    returncode, _, _ = run_ursa_to_exit("-b", f"unix:{sock_path}", "-w", "2", "no_such_module:app")
    assert returncode == 2
    assert not sock_path.exists()
