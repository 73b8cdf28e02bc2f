"""A unix socket file that a server is listening on is never taken by a
second instance (the ursa command, ursa.listen() or ursa.run()): it
refuses with one line. A stale socket file (its server died) is replaced,
and only once every other address is bound."""
import socket
import subprocess

import pytest

from support.processes import STOP_TIMEOUT

from .harness import APPS_DIR, PYTHON, process_env
from .test_cli import assert_one_line_error, run_ursa_to_exit


def leave_a_stale_socket(path):
    """What a server killed with SIGKILL leaves: a socket file nobody listens on."""
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.listen()
    dead.close()


def assert_stale(path):
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))


def test_a_second_instance_refuses_a_live_socket_and_the_first_keeps_it(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    first = procs.ursa("-b", f"unix:{sock_path}", "deployapp:app", name="first")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        # It used to delete the file, bind its own, then fail on the port.
        returncode, _, stderr = run_ursa_to_exit("-b", f"unix:{sock_path}", "-b", f"127.0.0.1:{port}",
                                                 "deployapp:app")
    assert_one_line_error(returncode, stderr, f"unix:{sock_path}", "another server is listening on it")
    returncode, _, stderr = run_ursa_to_exit("-b", f"unix:{sock_path}", "deployapp:app")
    assert_one_line_error(returncode, stderr, f"unix:{sock_path}", "another server is listening on it")
    assert first.get("/")[2] == b"hello"  # through the socket file, still its own


def test_a_stale_socket_is_replaced_only_once_every_address_is_bound(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    leave_a_stale_socket(sock_path)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        returncode, _, stderr = run_ursa_to_exit("-b", f"unix:{sock_path}", "-b", f"127.0.0.1:{port}",
                                                 "deployapp:app")
    assert_one_line_error(returncode, stderr, f"127.0.0.1:{port}", "already in use")
    assert_stale(sock_path)  # still there: nothing was replaced
    server = procs.ursa("-b", f"unix:{sock_path}", "deployapp:app")
    assert server.get("/")[2] == b"hello"


LISTEN_THERE = """
import socket
import sys
import ursa
import deployapp
try:
    getattr(ursa, sys.argv[1])(deployapp.app, "unix:" + sys.argv[2])
except OSError as exc:
    sys.exit(str(exc))
socket.socket(socket.AF_UNIX).connect(sys.argv[2])  # listen() returned: its own socket is there
"""


def call_in_a_process(function, sock_path):
    completed = subprocess.run([PYTHON, "-c", LISTEN_THERE, function, str(sock_path)], cwd=APPS_DIR,
                               env=process_env(), capture_output=True, text=True, timeout=STOP_TIMEOUT,
                               stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stderr


def test_listen_and_run_refuse_a_live_socket(procs, tmp_path):
    sock_path = tmp_path / "app.sock"
    first = procs.ursa("-b", f"unix:{sock_path}", "deployapp:app")
    for function in ("listen", "run"):
        returncode, stderr = call_in_a_process(function, sock_path)
        assert returncode == 1, stderr
        assert stderr.strip() == (f"[Errno 98] another server is listening on the unix socket {sock_path}; "
                                  f"stop it or choose another path"), stderr
    assert first.get("/")[2] == b"hello"


def test_listen_replaces_a_stale_socket(tmp_path):
    sock_path = tmp_path / "app.sock"
    leave_a_stale_socket(sock_path)
    returncode, stderr = call_in_a_process("listen", sock_path)
    assert returncode == 0, stderr
