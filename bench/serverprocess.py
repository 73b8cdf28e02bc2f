"""Runs one benchmarked server (bench/servers.py, or asgi_servers.py) as a child process, for the harness.

    with ServerProcess("ursa", "hello", cpu=0) as server:
        ... load 127.0.0.1:server.port, read /proc/PID for PID in server.pids() ...
        server.stop()
"""
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from servers import HOST, PORT_LINE_PREFIX, SERVER_DIR_ENV

SERVERS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers.py")

# Seconds a server gets to listen; valgrind makes startup ~50x slower.
START_TIMEOUT = 15.0
START_TIMEOUT_UNDER_VALGRIND = 120.0
# Seconds a server gets to exit after SIGINT before it is killed.
STOP_TIMEOUT = 10.0
STOP_TIMEOUT_UNDER_VALGRIND = 120.0
LISTEN_POLL_SECONDS = 0.02


class ServerError(Exception):
    """A server did not start, or died: the message says which and shows its stderr."""


def server_environment(base=None):
    """The environment a benchmarked server runs in.

    Bytecode caching stays on even if the caller turned it off: an installed
    package (bjoern) has its .pyc from pip, while a package run from the
    source tree (ursa) would otherwise recompile at every start, which costs
    time and leaves the compiler's memory in the server's heap.
    PYTHONHASHSEED is fixed so that instruction counts repeat.
    """
    environment = dict(os.environ if base is None else base)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["PYTHONHASHSEED"] = "0"
    return environment


def pinned_command(command, cpu):
    """``command`` run on CPU ``cpu`` only (taskset), or unpinned if cpu is None."""
    if cpu is None:
        return list(command)
    if shutil.which("taskset") is None:
        raise ServerError("taskset not found (Debian package util-linux); run with --no-pin to skip pinning")
    return ["taskset", "-c", str(cpu), *command]


def process_tree(root_pid):
    """``root_pid`` and every descendant of it (a master's workers)."""
    children_of = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children_of.setdefault(parent, []).append(int(entry))
    found, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children_of.get(pid, []))
    return found


class ServerProcess:
    """A running server: its port, its process ids, and a clean stop()."""

    def __init__(self, server, app_name, cpu=0, wrapper=(), env=None, script=SERVERS_SCRIPT):
        self.server = server
        self.app_name = app_name
        self.under_valgrind = bool(wrapper)
        self._stderr = tempfile.TemporaryFile(mode="w+", prefix=f"bench-{server}-")
        self._directory = tempfile.TemporaryDirectory(prefix=f"bench-{server}-")
        child_env = server_environment(env)
        child_env[SERVER_DIR_ENV] = self._directory.name
        command = pinned_command([*wrapper, sys.executable, script, server, app_name], cpu)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, env=child_env, text=True
        )
        self.pid = self.process.pid
        try:
            deadline = time.monotonic() + (START_TIMEOUT_UNDER_VALGRIND if self.under_valgrind else START_TIMEOUT)
            self.port = self._read_port(deadline)
            self._wait_until_listening(deadline)
        except BaseException:
            self.close()
            raise

    def _read_port(self, deadline):
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self.process.stdout.readline()
                    if line.startswith(PORT_LINE_PREFIX):
                        return int(line[len(PORT_LINE_PREFIX):])
                    if not line:  # end of output: the child exited
                        break
        raise self._start_failure("did not report its port")

    def _wait_until_listening(self, deadline):
        while time.monotonic() < deadline and self.alive():
            try:
                socket.create_connection((HOST, self.port), timeout=1.0).close()
                return
            except OSError:  # refused (not listening yet), or timed out
                time.sleep(LISTEN_POLL_SECONDS)
        raise self._start_failure(f"did not accept connections on port {self.port}")

    def _start_failure(self, what):
        self.process.poll()
        state = "timed out" if self.process.returncode is None else f"exited {self.process.returncode}"
        return ServerError(f"{self.server} ({self.app_name}) {what} ({state} after start)\n{self.stderr_text()}")

    def stderr_text(self):
        """The server's stderr, and the logs it wrote in its directory (nginx's error.log)."""
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()
        for name in sorted(os.listdir(self._directory.name)):
            if name.endswith(".log"):
                with open(os.path.join(self._directory.name, name), errors="replace") as log:
                    text += f"--- {name} ---\n{log.read()}"
        return "--- server stderr ---\n" + (text[-4000:] if text else "(empty)")

    def alive(self):
        return self.process.poll() is None

    def pids(self):
        """The server's process and every descendant (gunicorn's and granian's worker)."""
        return process_tree(self.pid)

    def stop(self):
        """SIGINT, wait for a clean exit, and return the exit status.

        Raises ServerError if the server had died before, or does not exit in time.
        """
        if not self.alive():
            raise ServerError(f"{self.server} ({self.app_name}) died with status {self.process.returncode}\n"
                              f"{self.stderr_text()}")
        self.process.send_signal(signal.SIGINT)
        timeout = STOP_TIMEOUT_UNDER_VALGRIND if self.under_valgrind else STOP_TIMEOUT
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError(f"{self.server} ({self.app_name}) did not exit {timeout:.0f} s after SIGINT; killed")
        finally:
            self.process.stdout.close()
        return status

    def kill(self):
        if self.alive():
            for pid in reversed(self.pids()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait()
        if not self.process.stdout.closed:
            self.process.stdout.close()

    def close(self):
        self.kill()
        self._stderr.close()
        self._directory.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
