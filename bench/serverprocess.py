"""Runs one benchmarked server (bench/servers.py, or asgi_servers.py) as a child process, for the harness.

    with ServerProcess("ursa", "hello", cpu=0) as server:
        ... load 127.0.0.1:server.port, read /proc/PID for PID in server.descendants() ...
        server.stop()

The process is tests/support's ChildProcess (processes.py there); what is the
benchmark's own is here: the script it runs, pinning to a core, the
environment, valgrind's longer timeouts, and ServerError for what fails.
"""
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from servers import HOST, PORT_LINE_PREFIX, SERVER_DIR_ENV

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.join(os.path.dirname(BENCH_DIR), "tests")
SRC_DIR = os.path.join(os.path.dirname(BENCH_DIR), "src")
if TESTS_DIR not in sys.path:
    sys.path.append(TESTS_DIR)  # after bench/: its apps.py is not tests/apps.py

from support.processes import ChildProcess  # noqa: E402

SERVERS_SCRIPT = os.path.join(BENCH_DIR, "servers.py")

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
    PYTHONHASHSEED is fixed so that instruction counts repeat. This tree's
    src/ comes first on PYTHONPATH: the ursa measured is the one beside the
    harness (its extension built in place for each interpreter: make build,
    or setup.py build_ext --inplace for --python's), whatever else an
    interpreter has installed.
    """
    environment = dict(os.environ if base is None else base)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    environment["PYTHONHASHSEED"] = "0"
    environment["PYTHONPATH"] = os.pathsep.join(
        [SRC_DIR] + [path for path in environment.get("PYTHONPATH", "").split(os.pathsep) if path and path != SRC_DIR])
    return environment


def pinned_command(command, cpu):
    """``command`` run on CPU ``cpu`` only (taskset), or unpinned if cpu is None."""
    if cpu is None:
        return list(command)
    if shutil.which("taskset") is None:
        raise ServerError("taskset not found (Debian package util-linux); run with --no-pin to skip pinning")
    return ["taskset", "-c", str(cpu), *command]


def wait_until_listening(process, port, deadline):
    """Wait until 127.0.0.1:`port` accepts connections; `process`'s Failure
    if it exits first or the monotonic `deadline` passes."""
    while time.monotonic() < deadline and process.running():
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return
        except OSError:  # refused (not listening yet), or timed out
            time.sleep(LISTEN_POLL_SECONDS)
    state = "still running" if process.running() else f"exited {process.popen.returncode}"
    raise process.Failure(f"{process.name} did not accept connections on port {port} ({state})\n"
                          f"{process.log_tail()}")


class ServerProcess(ChildProcess):
    """A running server: its port, its process ids, and a clean stop()."""

    Failure = ServerError

    def __init__(self, server, app_name, cpu=0, wrapper=(), env=None, script=SERVERS_SCRIPT, python=None):
        command = pinned_command([*wrapper, python or sys.executable, script, server, app_name], cpu)
        self.server = server
        self.app_name = app_name
        self.under_valgrind = bool(wrapper)
        self._directory = tempfile.TemporaryDirectory(prefix=f"bench-{server}-")
        child_env = server_environment(env)
        child_env[SERVER_DIR_ENV] = self._directory.name
        # Not a session of its own: a Ctrl-C of the harness reaches the server too.
        super().__init__(command, name=f"{server} ({app_name})", env=child_env, new_session=False,
                         stderr_path=os.path.join(self._directory.name, "server.stderr"))
        try:
            self.start()
            deadline = time.monotonic() + (START_TIMEOUT_UNDER_VALGRIND if self.under_valgrind else START_TIMEOUT)
            self.port = self._read_port(deadline)
            wait_until_listening(self, self.port, deadline)
        except BaseException:
            self.close()
            raise

    def _read_port(self, deadline):
        while True:
            line = self.read_line(deadline)
            if line.startswith(PORT_LINE_PREFIX):
                return int(line[len(PORT_LINE_PREFIX):])

    def stderr_text(self):
        """The server's stderr, and the logs it wrote in its directory (nginx's error.log)."""
        text = self.stderr()
        for name in sorted(os.listdir(self._directory.name)):
            if name.endswith(".log"):
                with open(os.path.join(self._directory.name, name), errors="replace") as log:
                    text += f"--- {name} ---\n{log.read()}"
        return "--- server stderr ---\n" + (text[-4000:] if text else "(empty)")

    log_tail = stderr_text

    def stop(self):
        """SIGINT, wait for a clean exit, and return the exit status.

        Raises ServerError if the server had died before, or does not exit in time.
        """
        if not self.running():
            raise ServerError(f"{self.name} died with status {self.popen.returncode}\n{self.stderr_text()}")
        try:
            return super().stop(signal.SIGINT, STOP_TIMEOUT_UNDER_VALGRIND if self.under_valgrind else STOP_TIMEOUT)
        finally:
            self.close_stdout()

    def close(self):
        self.kill()
        self.close_stdout()
        self._directory.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
