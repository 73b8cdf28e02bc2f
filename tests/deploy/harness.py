"""The deployment tests' layer over tests/support: run the `ursa` command
(or gunicorn, nginx, a PasteDeploy runner...) as a real process, find its
address in its log, talk HTTP to it (http.client) over TCP or unix
sockets, and run code as another user.

Every process started through a ProcessPool is killed (with its whole
process group and every process it started) when the test ends, whatever
happened.
"""
import http.client
import os
import pathlib
import re
import socket
import subprocess
import sys

from support import processes
from support.processes import START_TIMEOUT, ChildProcess
from support.rawhttp import parse_address
from support.waiting import wait_until

DEPLOY_DIR = pathlib.Path(__file__).resolve().parent
APPS_DIR = DEPLOY_DIR / "apps"
VENV_BIN = pathlib.Path(sys.executable).parent
PYTHON = sys.executable

HTTP_TIMEOUT = 20.0

LISTENING = re.compile(r"Listening at: (\S+) \((\d+)\)")


def ursa_command(*args):
    """argv running the ursa CLI of this checkout with the test interpreter."""
    return [PYTHON, "-m", "ursa", *map(str, args)]


# Python starts as root (this machine's Python is under /root, which other
# users cannot read), imports what `code` needs, then becomes the user.
RUN_AS_USER = """
import grp, os, pwd, socket, sys
entry = pwd.getpwnam(sys.argv[1])
os.setgroups([])
os.setgid(entry.pw_gid)
os.setuid(entry.pw_uid)
del sys.argv[1]
"""


def run_python_as(user, code, *args, timeout=START_TIMEOUT):
    """Run `code` (which may use socket, os, sys) in a Python process as
    `user`; returns the CompletedProcess (text output captured)."""
    return subprocess.run([PYTHON, "-c", RUN_AS_USER + code, user, *map(str, args)], capture_output=True,
                          text=True, env=process_env(), timeout=timeout, stdin=subprocess.DEVNULL)


CONNECT_TO_UNIX_SOCKET = """
probe = socket.socket(socket.AF_UNIX)
try:
    probe.connect(sys.argv[1])
except OSError as exc:
    sys.exit(exc.strerror)
"""


def connect_as(user, path):
    """connect() to the unix socket at `path` as `user`: None if it
    succeeds, else the error's text (as 'Permission denied')."""
    completed = run_python_as(user, CONNECT_TO_UNIX_SOCKET, path)
    return None if completed.returncode == 0 else completed.stderr.strip()


def process_env(extra=None):
    """The environment of processes the tests start."""
    env = dict(os.environ)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in tests/deploy/apps
    env.update(extra or {})
    return env


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=HTTP_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def connection_to(address, timeout=HTTP_TIMEOUT):
    """An http.client connection to 'http://host:port' or 'unix:/path'."""
    family, target = parse_address(address)
    if family == socket.AF_UNIX:
        return UnixHTTPConnection(target, timeout)
    host, port = target
    return http.client.HTTPConnection(host, port, timeout=timeout)


def request(address, method="GET", path="/", body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a new connection: (status, headers dict, body bytes)."""
    connection = connection_to(address, timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Process(ChildProcess):
    """One started process: its Popen, log files and address."""

    def __init__(self, argv, directory, name, cwd, env, **popen_options):
        super().__init__(argv, name=name, stderr_path=directory / f"{name}.stderr",
                         stdout_path=directory / f"{name}.stdout", cwd=cwd, env=process_env(env), **popen_options)
        self.address = None

    def wait_for_log(self, pattern, timeout=START_TIMEOUT, count=1):
        """Wait until stderr matches `pattern` `count` times; returns the last match."""
        return self.wait_for_stderr(pattern, count=count, timeout=timeout)

    def wait_listening(self, timeout=START_TIMEOUT):
        match = self.wait_for_log(LISTENING.pattern, timeout)
        self.address = match.group(1)
        return self.address

    def workers(self):
        return self.children()

    def wait_workers(self, count, timeout=START_TIMEOUT, exclude=()):
        """Wait until the master has exactly `count` children, none of them
        in `exclude`; returns their pids."""
        def settled():
            pids = [pid for pid in self.workers() if processes.process_alive(pid)]
            return pids if len(pids) == count and not set(pids) & set(exclude) else None
        return wait_until(settled, timeout, f"{count} workers (excluding {list(exclude)}); "
                          f"have {self.workers()}; stderr:\n{self.stderr()}")

    def get(self, path="/", **kwargs):
        return request(self.address, "GET", path, **kwargs)


class ProcessPool(processes.ProcessPool):
    """Starts processes in their own process groups; when the pool closes,
    every one is killed."""

    def start(self, argv, cwd=APPS_DIR, env=None, name=None, **popen_options):
        process = Process(argv, self.directory, name or self.new_name("proc"), cwd, env, **popen_options)
        return self.add(process).start()

    def ursa(self, *args, name=None, cwd=APPS_DIR, env=None, wait=True, **popen_options):
        """Start `python -m ursa ARGS`; by default wait until it listens."""
        process = self.start(ursa_command(*args), cwd=cwd, env=env, name=name, **popen_options)
        if wait:
            process.wait_listening()
        return process
