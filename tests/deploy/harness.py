"""Helpers of the deployment tests: run the `ursa` command (or gunicorn,
nginx...) as a real process, find its address in its log, talk HTTP to it
over TCP or unix sockets, and list and reap its processes.

Every process started through a ProcessPool is killed (with its whole
process group) when the test ends, whatever happened.
"""
import http.client
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys

from e2e_harness import wait_until  # noqa: F401  (the deploy tests import it from here)

DEPLOY_DIR = pathlib.Path(__file__).resolve().parent
APPS_DIR = DEPLOY_DIR / "apps"
REPO_DIR = DEPLOY_DIR.parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent
PYTHON = sys.executable

# Generous bounds: 2 cores, other suites running beside this one.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 20.0

LISTENING = re.compile(r"Listening at: (\S+) \((\d+)\)")


def ursa_command(*args):
    """argv running the ursa CLI of this checkout with the test interpreter."""
    return [PYTHON, "-m", "ursa", *map(str, args)]


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return sorted(int(child) for child in children.read().split())
    except FileNotFoundError:
        return []


def process_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def file_text(path):
    try:
        return pathlib.Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_text(path, pattern, timeout=START_TIMEOUT, count=1):
    """Wait until the file at `path` matches `pattern` `count` times; returns the last match."""
    regex = re.compile(pattern)

    def found():
        matches = list(regex.finditer(file_text(path)))
        return matches[count - 1] if len(matches) >= count else None
    return wait_until(found, timeout, f"{path} shows {pattern!r} (x{count}); it holds:\n{file_text(path)}")


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
    if address.startswith("unix:"):
        path = address[len("unix:"):]
        return UnixHTTPConnection("\0" + path[1:] if path.startswith("@") else path, timeout)
    host, _, port = address[len("http://"):].rpartition(":")
    return http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)


def request(address, method="GET", path="/", body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a new connection: (status, headers dict, body bytes)."""
    connection = connection_to(address, timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class Process:
    """One started process: its Popen, log files and address."""

    def __init__(self, popen, stdout_path, stderr_path):
        self.popen = popen
        self.pid = popen.pid
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.address = None

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def wait_for_log(self, pattern, timeout=START_TIMEOUT, count=1):
        """Wait until stderr matches `pattern` `count` times; returns the last match."""
        regex = re.compile(pattern)

        def found():
            matches = list(regex.finditer(self.stderr()))
            if len(matches) >= count:
                return matches[count - 1]
            if self.popen.poll() is not None:
                raise AssertionError(f"process exited ({self.popen.returncode}) before logging "
                                     f"{pattern!r}; stderr:\n{self.stderr()}")
            return None
        return wait_until(found, timeout, f"the log shows {pattern!r} (x{count}); stderr so far:\n"
                          f"{self.stderr()}")

    def wait_listening(self, timeout=START_TIMEOUT):
        match = self.wait_for_log(LISTENING.pattern, timeout)
        self.address = match.group(1)
        return self.address

    def workers(self):
        return children_of(self.pid)

    def wait_workers(self, count, timeout=START_TIMEOUT, exclude=()):
        """Wait until the master has exactly `count` children, none of them
        in `exclude`; returns their pids."""
        def settled():
            pids = [pid for pid in self.workers() if process_alive(pid)]
            return pids if len(pids) == count and not set(pids) & set(exclude) else None
        return wait_until(settled, timeout, f"{count} workers (excluding {list(exclude)}); "
                          f"have {self.workers()}; stderr:\n{self.stderr()}")

    def signal(self, number):
        os.kill(self.pid, number)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"process {self.pid} still running {timeout}s later; stderr:\n"
                                 f"{self.stderr()}") from None

    def get(self, path="/", **kwargs):
        return request(self.address, "GET", path, **kwargs)


class ProcessPool:
    """Starts processes in their own process groups; kill_all() ends them."""

    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        self.processes = []

    def start(self, argv, cwd=APPS_DIR, env=None, name=None, **popen_options):
        name = name or f"proc{len(self.processes)}"
        stdout_path = self.directory / f"{name}.stdout"
        stderr_path = self.directory / f"{name}.stderr"
        full_env = process_env(env)
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            popen = subprocess.Popen([str(part) for part in argv], cwd=cwd, env=full_env, stdout=stdout,
                                     stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True,
                                     **popen_options)
        process = Process(popen, stdout_path, stderr_path)
        self.processes.append(process)
        return process

    def ursa(self, *args, name=None, cwd=APPS_DIR, env=None, wait=True, **popen_options):
        """Start `python -m ursa ARGS`; by default wait until it listens."""
        process = self.start(ursa_command(*args), cwd=cwd, env=env, name=name, **popen_options)
        if wait:
            process.wait_listening()
        return process

    def kill_all(self):
        for process in self.processes:
            pids = [process.pid] + process.workers()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                process.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.processes = []
