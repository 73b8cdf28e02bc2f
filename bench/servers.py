"""Starts one benchmarked server, as a child process, on a port of its choosing.

As a script (what the harness runs, pinned to a core by taskset):

    python bench/servers.py SERVER APP

binds 127.0.0.1 on a free port through the server's own listen(), prints
"port N" on stdout once it listens, and serves APP (a name from apps.APPS)
until SIGINT. The harness uses start_server() below instead of doing that
by hand.

Each server runs as it would in production with one process: ursa.run and
bjoern.run as documented; gunicorn with one sync worker (its master process
stays beside the worker, and both are counted).
"""
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"
PORT_LINE_PREFIX = "port "

# Seconds a server gets to print its port; valgrind makes startup ~50x slower.
START_TIMEOUT = 15.0
START_TIMEOUT_UNDER_VALGRIND = 120.0
# Seconds a server gets to exit after SIGINT before it is killed.
STOP_TIMEOUT = 10.0
STOP_TIMEOUT_UNDER_VALGRIND = 120.0


class ServerError(Exception):
    """A server did not start, or died: the message says which and shows its stderr."""


# --- inside the child process ----------------------------------------------


def _announce_port(port):
    print(f"{PORT_LINE_PREFIX}{port}", flush=True)


def _serve_with_ursa(app):
    import ursa

    sock = ursa.listen(app, HOST, 0)
    _announce_port(sock.getsockname()[1])
    ursa.run()


def _serve_with_bjoern(app):
    import bjoern

    sock = bjoern.listen(app, HOST, 0)
    _announce_port(sock.getsockname()[1])
    bjoern.run()


def _serve_with_gunicorn(app):
    import socket

    from gunicorn.app.base import BaseApplication

    # gunicorn's master binds before forking the worker; handing it a socket
    # we bound on port 0 (bind "fd://N") lets us learn the port without races.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]

    class OneWorker(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [f"fd://{sock.fileno()}"])
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            # Announced by the worker once it is ready, so the harness sees
            # (and measures) both processes from the start.
            self.cfg.set("post_worker_init", lambda worker: _announce_port(port))

        def load(self):
            return app

    OneWorker().run()


SERVE_FUNCTIONS = {
    "ursa": _serve_with_ursa,
    "bjoern": _serve_with_bjoern,
    "gunicorn": _serve_with_gunicorn,
}

def _child_main(argv):
    sys.path.insert(0, BENCH_DIR)
    from apps import APPS

    if len(argv) != 2 or argv[0] not in SERVE_FUNCTIONS or argv[1] not in APPS:
        sys.exit(f"usage: servers.py {{{','.join(SERVE_FUNCTIONS)}}} {{{','.join(APPS)}}}")
    server, app_name = argv
    try:
        SERVE_FUNCTIONS[server](APPS[app_name])
    except KeyboardInterrupt:
        pass


# --- in the harness --------------------------------------------------------


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


def server_available(server):
    """Return None if ``server`` can be imported by the benchmark's Python, else why not.

    The import also writes the server's bytecode cache before any measurement."""
    module = server  # each server's Python package bears its name
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60,
        env=server_environment(),
    )
    if probe.returncode == 0:
        return None
    last_line = (probe.stderr.strip().splitlines() or ["(no error output)"])[-1]
    return f"cannot import {module} with {sys.executable}: {last_line}"


def pinned_command(command, cpu):
    """``command`` run on CPU ``cpu`` only (taskset), or unpinned if cpu is None."""
    if cpu is None:
        return list(command)
    if shutil.which("taskset") is None:
        raise ServerError("taskset not found (Debian package util-linux); run with --no-pin to skip pinning")
    return ["taskset", "-c", str(cpu), *command]


class ServerProcess:
    """A running server: its port, its process ids, and a clean stop()."""

    def __init__(self, server, app_name, cpu=0, wrapper=(), env=None):
        self.server = server
        self.app_name = app_name
        self.under_valgrind = bool(wrapper)
        self._stderr = tempfile.TemporaryFile(mode="w+", prefix=f"bench-{server}-")
        child_env = server_environment(env)
        command = pinned_command([*wrapper, sys.executable, os.path.abspath(__file__), server, app_name], cpu)
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, env=child_env, text=True
        )
        self.pid = self.process.pid
        try:
            self.port = self._read_port()
        except BaseException:
            self.kill()
            raise

    def _read_port(self):
        timeout = START_TIMEOUT_UNDER_VALGRIND if self.under_valgrind else START_TIMEOUT
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self.process.stdout.readline()
                    if line.startswith(PORT_LINE_PREFIX):
                        return int(line[len(PORT_LINE_PREFIX):])
                    if not line:  # end of output: the child exited
                        break
        self.process.poll()
        state = "timed out" if self.process.returncode is None else f"exited {self.process.returncode}"
        raise ServerError(
            f"{self.server} ({self.app_name}) did not report its port ({state} after start)\n{self.stderr_text()}"
        )

    def stderr_text(self):
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()
        return "--- server stderr ---\n" + (text[-4000:] if text else "(empty)")

    def alive(self):
        return self.process.poll() is None

    def pids(self):
        """The server's process and every descendant (gunicorn's worker)."""
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
        found, pending = [], [self.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            pending.extend(children_of.get(pid, []))
        return found

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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


if __name__ == "__main__":
    _child_main(sys.argv[1:])
