"""ursa servers in processes of their own, for the end-to-end tests.

A ServerProcess is tests/serve.py serving an app from tests/apps.py (or
another script that prints the same first line on stdout, as
tests/robustness/hostile_server.py does):

    LISTENING {"pid": ..., "addresses": [...]}     (STARTING {"pid": ...} in "run" mode)

Its stderr goes to a file the tests can search (``server.log_since(offset)``).
Servers stop with SIGTERM and must exit 0 within STOP_TIMEOUT; a ServerPool
requires that of each server still running when it closes. The fixtures
that start them are in tests/conftest.py.
"""
import json
import os
import pathlib
import re
import socket
import sys
import time

from .processes import START_TIMEOUT, STOP_TIMEOUT, ChildProcess, ProcessPool
from .rawhttp import IO_TIMEOUT, ConnectionClosed, build_request, connect

TESTS_DIR = pathlib.Path(__file__).resolve().parent.parent
SERVE_SCRIPT = TESTS_DIR / "serve.py"
# The "family" of an address in the LISTENING line.
FAMILIES = {"unix": socket.AF_UNIX, "inet": socket.AF_INET, "inet6": socket.AF_INET6}


class ServerProcess(ChildProcess):
    def __init__(self, log_dir, name, app="routing_app", factory=False, mode="listen-run", host="127.0.0.1",
                 port=0, options=None, reuse_port=False, usr1_file=None, warnings_error=False,
                 command_prefix=(), ready_path="/ping"):
        super().__init__([], name=name, stderr_path=pathlib.Path(log_dir) / f"{name}.stderr")
        self.mode = mode
        self.host = host
        self.requested_port = port
        self.ready_path = ready_path
        self.traced = bool(command_prefix)
        self.argv = [*command_prefix, sys.executable, str(SERVE_SCRIPT), "--app", app, "--mode", mode,
                     "--host", host]
        if port is not None:
            self.argv += ["--port", str(port)]
        if factory:
            self.argv.append("--factory")
        if reuse_port:
            self.argv.append("--reuse-port")
        if usr1_file:
            self.argv += ["--usr1-file", str(usr1_file)]
        if warnings_error:
            self.argv.append("--warnings-error")
        for option, value in (options or {}).items():
            self.argv += ["--option", f"{option}={json.dumps(value)}"]
        self.addresses = []

    # -- lifecycle

    def start(self):
        self.env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONDONTWRITEBYTECODE="1")
        # Under `make test-asan`, servers (and only they: not every tool a test
        # runs) exit non-zero when LeakSanitizer finds a leak at exit. It
        # cannot work under strace: both would trace the process.
        if "URSA_SERVER_ASAN_OPTIONS" in self.env and not self.traced:
            self.env["ASAN_OPTIONS"] = self.env["URSA_SERVER_ASAN_OPTIONS"]
        super().start()
        deadline = time.monotonic() + START_TIMEOUT
        line = self.read_line(deadline)
        kind, _, payload = line.partition(" ")
        details = json.loads(payload)
        self.pid = details["pid"]
        if kind == "LISTENING":
            self.addresses = details["addresses"]
        elif kind == "STARTING":
            self.addresses = [self._address_given()]
        else:
            raise AssertionError(f"server {self.name}: unexpected first line {line!r}")
        if self.ready_path is not None:
            self._wait_ready(deadline)
        return self

    def _address_given(self):
        if self.host.startswith("unix:@"):
            return {"family": "unix", "path": "\0" + self.host[len("unix:@"):]}
        if self.host.startswith("unix:"):
            return {"family": "unix", "path": self.host[len("unix:"):]}
        family = "inet6" if ":" in self.host else "inet"
        return {"family": family, "host": self.host, "port": self.requested_port}

    def _wait_ready(self, deadline):
        """Wait until the server answers a request: its loop is running (and its signal handling set)."""
        request = build_request("GET", self.ready_path, [("Connection", "close")])
        while True:
            try:
                with self.connect(timeout=max(deadline - time.monotonic(), 0.1)) as conn:
                    conn.send(request)
                    reply = conn.read_until_close()
                if reply.startswith(b"HTTP/1."):
                    return
                problem = f"bad reply {reply[:200]!r}"
            except (ConnectionRefusedError, FileNotFoundError, ConnectionResetError) as error:
                problem = repr(error)  # "run" mode: not bound yet
            if self.popen.poll() is not None:
                raise AssertionError(f"server {self.name} exited with {self.popen.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server {self.name} not ready in {START_TIMEOUT} s: {problem}\n{self.log_tail()}")
            time.sleep(0.02)

    send_signal = ChildProcess.signal

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the process to end; returns its exit code (killing it if it does not)."""
        super().wait_exit(timeout)
        self._stdout += self.popen.stdout.read()
        self.close_stdout()
        return self.exit_code

    # -- logs

    stdout_text = ChildProcess.stdout
    log_text = ChildProcess.stderr

    def wait_for_log(self, text, since=0, timeout=IO_TIMEOUT):
        self.wait_for_stderr(re.escape(text), since=since, timeout=timeout)
        return self.log_since(since)

    # -- clients

    @property
    def address(self):
        return self.addresses[0]

    @property
    def port(self):
        return self.address["port"]

    def socket_address(self, index=0):
        address = self.addresses[index]
        family = FAMILIES[address["family"]]
        if family == socket.AF_UNIX:
            return family, address["path"]
        return family, (address["host"], address["port"])

    def connect(self, timeout=IO_TIMEOUT, index=0, nodelay=True, source=None):
        """A raw connection; `source` is the local address to connect from."""
        return connect(self.socket_address(index), timeout, nodelay, source)

    def url(self, target):
        host = self.address["host"]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{target}"

    def request(self, method, target, headers=(), body=b"", version="HTTP/1.1"):
        """One request on a new connection; returns the parsed response."""
        with self.connect() as conn:
            conn.send(build_request(method, target, headers, body, version))
            return conn.read_response(method)

    def get(self, target, headers=()):
        return self.request("GET", target, headers)

    def get_json(self, target):
        response = self.get(target)
        assert response.status == 200, response
        return response.json()

    def assert_serving(self):
        """The server still answers on a new connection."""
        response = self.get("/ping")
        assert (response.status, response.body) == (200, b"pong"), response

    def reset_mid_response(self, target, count):
        """`count` times, a new connection asks for `target` (a response
        that does not end), reads its head and resets, as a client that
        vanishes does. A small receive buffer makes the server block on
        the write soon."""
        request = build_request("GET", target)
        for _ in range(count):
            conn = self.connect()
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conn.send(request)
            conn.receive_until(b"\r\n\r\n")
            conn.abort()

    def drive(self, request, count, method="GET", batch=50):
        """Send ``request`` ``count`` times, pipelined ``batch`` at a time on
        keep-alive connections (reconnecting when the server closes one).
        Returns {status: count}."""
        statuses = {}
        remaining = count
        conn = None
        try:
            while remaining:
                if conn is None:
                    conn = self.connect()
                in_flight = min(batch, remaining)
                conn.send(request * in_flight)
                answered = 0
                try:
                    while answered < in_flight:
                        response = conn.read_response(method)
                        statuses[response.status] = statuses.get(response.status, 0) + 1
                        answered += 1
                        if (response.header("Connection") or "").lower() == "close":
                            raise ConnectionClosed("server sent Connection: close")
                except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                    conn.close()
                    conn = None
                    if answered == 0:
                        raise AssertionError(f"server closed without answering; statuses so far {statuses}")
                    batch = answered  # the server closes after that many: send no more than it answers
                remaining -= answered
        finally:
            if conn is not None:
                conn.close()
        return statuses


class ServerPool(ProcessPool):
    """Starts ServerProcesses; when it closes, those still running get
    SIGTERM and must each exit 0 in time."""

    def start(self, name=None, **settings):
        server = self.add(ServerProcess(self.directory, name or self.new_name("server"), **settings))
        return server.start()

    def close(self):
        self.stop_all()
