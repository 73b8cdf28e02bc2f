"""systemd socket activation and readiness notification, set up by hand the
way systemd does it: listening sockets as fds 3, 4, ..., LISTEN_PID naming
the exec'd process and LISTEN_FDS their count; NOTIFY_SOCKET a datagram
socket that receives READY=1."""
import json
import signal
import socket

from support.processes import STOP_TIMEOUT

from .harness import APPS_DIR, PYTHON, request, ursa_command

# What systemd does between fork and exec: move the sockets to fds 3, 4, ...
# and set LISTEN_PID to the pid that execs the service.
SOCKET_ACTIVATE = """
import os, sys
count = int(sys.argv[1])
sources = [int(fd) for fd in sys.argv[2:2 + count]]
moved = [os.dup(fd) for fd in sources]
for index, fd in enumerate(moved):
    if fd == 3 + index:
        os.set_inheritable(fd, True)
    else:
        os.dup2(fd, 3 + index)
        os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = os.environ.get("CLAIMED_FDS", str(count))
argv = sys.argv[2 + count:]
os.execv(argv[0], argv)
"""


def socket_activated(procs, sockets, *ursa_args, env=None):
    fds = [sock.fileno() for sock in sockets]
    argv = [PYTHON, "-c", SOCKET_ACTIVATE, len(fds), *fds, *ursa_command(*ursa_args)]
    return procs.start(argv, cwd=APPS_DIR, pass_fds=fds, env=env)


def test_serves_the_sockets_systemd_passes(procs, tmp_path):
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "activated.sock"))
    unix.listen(16)
    server = socket_activated(procs, [tcp, unix], "-w", "2", "deployapp:app")
    server.wait_listening()
    server.wait_for_log("Listening at: ", count=2)  # one line per socket, written one after the other
    listening = [line.split("Listening at: ")[1].split()[0] for line in server.stderr().splitlines()
                 if "Listening at: " in line]
    port = tcp.getsockname()[1]
    assert listening == [f"http://127.0.0.1:{port}", f"unix:{tmp_path / 'activated.sock'}"]
    tcp.close()
    unix.close()
    for address in listening:
        assert request(address)[2] == b"hello"


def test_activation_overrides_bind_with_a_warning(procs):
    tcp = socket.create_server(("127.0.0.1", 0))
    server = socket_activated(procs, [tcp], "-b", "127.0.0.1:1", "deployapp:app")
    address = server.wait_listening()
    assert address == f"http://127.0.0.1:{tcp.getsockname()[1]}"
    assert "ignoring --bind: using the 1 socket(s) systemd passed" in server.stderr()


def test_listen_variables_are_not_passed_on_to_the_app(procs):
    tcp = socket.create_server(("127.0.0.1", 0))
    server = socket_activated(procs, [tcp], "deployapp:app")
    server.wait_listening()
    assert json.loads(server.get("/listen-env")[2]) == [None, None]


def test_a_pid_mismatch_means_the_variables_are_not_for_us(procs):
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env=env)
    assert server.address.startswith("http://127.0.0.1:")
    assert server.get("/")[2] == b"hello"


def test_notify_socket_gets_ready_and_stopping(procs, tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(STOP_TIMEOUT)
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    assert notify.recv(4096).decode().split("\n") == ["READY=1", f"MAINPID={server.pid}"]
    server.signal(signal.SIGTERM)
    assert notify.recv(4096) == b"STOPPING=1"
    assert server.wait_exit() == 0
    notify.close()


def test_abstract_notify_socket(procs, token):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("\0" + token)
    notify.settimeout(STOP_TIMEOUT)
    procs.ursa("-b", "127.0.0.1:0", "deployapp:app", env={"NOTIFY_SOCKET": "@" + token})
    assert notify.recv(4096).startswith(b"READY=1")
    notify.close()


def test_a_missing_activated_fd_is_a_one_line_error(procs):
    tcp = socket.create_server(("127.0.0.1", 0))
    server = socket_activated(procs, [tcp], "deployapp:app", env={"CLAIMED_FDS": "3"})
    assert server.wait_exit() == 2
    assert server.stderr().strip().splitlines() == [
        "ursa: error: systemd socket activation: LISTEN_FDS=3, but fd 4 is not open; is the service "
        "started by its .socket unit?"]
