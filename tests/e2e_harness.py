"""The harness of the end-to-end tests: real ursa servers in subprocesses,
and a small raw HTTP/1.x client that shows exactly what the server sent.

Each server is tests/serve.py in its own process, serving an app from
tests/apps.py; its stderr goes to a file the tests can search
(``server.log_since(offset)``). Servers stop with SIGTERM and must exit 0
within STOP_TIMEOUT. The fixtures that start them are in conftest.py.
"""
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import time

TESTS_DIR = pathlib.Path(__file__).resolve().parent
SERVE_SCRIPT = TESTS_DIR / "serve.py"

# Generous bounds: the machine has 2 cores and other test suites run beside this one.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 30.0

# Under AddressSanitizer (make test-asan) freed memory waits in ASan's
# quarantine, so a server's RSS grows without a leak: memory bounds that use
# RSS are reported but not enforced there.
RSS_IS_MEANINGFUL = os.environ.get("URSA_SANITIZE") != "1"


def wait_until(predicate, timeout, message, interval=0.01):
    """Poll ``predicate`` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {message}")
        time.sleep(interval)


# ---------------------------------------------------------------- raw HTTP client

class ConnectionClosed(Exception):
    """The server closed the connection before a complete response head."""


class IncompleteBody(Exception):
    """The connection closed inside a response body; ``response.body`` holds what came."""

    def __init__(self, response):
        super().__init__(f"connection closed inside the body after {len(response.body)} bytes")
        self.response = response


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, as sent
        self.raw_head = raw_head
        self.body = b""
        self.framing = None  # "content-length", "chunked", "close" or "none"

    def headers_named(self, name):
        return [value for header, value in self.headers if header.lower() == name.lower()]

    def header(self, name):
        """The value of a header sent once; None if absent; an error if repeated."""
        values = self.headers_named(name)
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {self.headers} body={self.body[:200]!r}>"


class RawConnection:
    """One client socket, with a read buffer and a strict response parser."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buffer = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def local_port(self):
        return self.sock.getsockname()[1]

    def receive_more(self):
        """Receive what is available into the buffer; False at end of stream."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _take(self, count):
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                return self._take(end + 2)[:-2]
            if not self.receive_more():
                raise ConnectionClosed(f"closed inside a line; got {bytes(self.buffer)!r}")

    def read_exactly(self, count):
        while len(self.buffer) < count:
            if not self.receive_more():
                raise ConnectionClosed(f"closed after {len(self.buffer)} of {count} bytes")
        return self._take(count)

    def read_head(self):
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                return self._take(end + 4)
            if not self.receive_more():
                raise ConnectionClosed(f"closed before a complete response head; got {bytes(self.buffer)!r}")

    def read_response(self, method="GET"):
        """Read one response (a 1xx interim response is returned on its own)."""
        head = self.read_head()
        lines = head[:-4].split(b"\r\n")
        version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
        assert version in ("HTTP/1.0", "HTTP/1.1"), f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, colon, value = line.decode("latin-1").partition(":")
            assert colon and name and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip(" \t")))
        response = Response(version, int(status), reason, headers, head)
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            response.framing = "none"
            return response
        transfer_encoding = response.header("Transfer-Encoding")
        content_length = response.header("Content-Length")
        if transfer_encoding is not None:
            assert transfer_encoding.lower() == "chunked", f"unexpected Transfer-Encoding {transfer_encoding!r}"
            assert content_length is None, "both Transfer-Encoding and Content-Length sent"
            response.framing = "chunked"
            self._read_chunked_body(response)
        elif content_length is not None:
            response.framing = "content-length"
            length = int(content_length)
            while len(self.buffer) < length:
                if not self.receive_more():
                    response.body = self._take(len(self.buffer))
                    raise IncompleteBody(response)
            response.body = self._take(length)
        else:
            response.framing = "close"
            response.body = self.read_until_close()
        return response

    def _read_chunked_body(self, response):
        parts = []
        try:
            while True:
                size_line = self.read_line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_line():  # trailers, up to the empty line
                        pass
                    break
                parts.append(self.read_exactly(size))
                assert self.read_exactly(2) == b"\r\n", "chunk data not followed by CRLF"
        except ConnectionClosed:
            parts.append(self._take(len(self.buffer)))
            response.body = b"".join(parts)
            raise IncompleteBody(response)
        response.body = b"".join(parts)

    def receive_until(self, marker):
        """Buffer received bytes until ``marker`` is among them (nothing is consumed)."""
        while marker not in self.buffer:
            if not self.receive_more():
                raise ConnectionClosed(f"closed before {marker!r} arrived; got {bytes(self.buffer)[-200:]!r}")

    def read_until_close(self):
        while self.receive_more():
            pass
        return self._take(len(self.buffer))

    def is_closed_by_server(self, timeout=IO_TIMEOUT):
        """True when the server closes (EOF or reset) with no further bytes."""
        self.sock.settimeout(timeout)
        try:
            more = self.read_until_close()
        except ConnectionResetError:
            more = b""
        assert not more, f"bytes after the response: {more[:200]!r}"
        return True

    def abort(self):
        """Close with a TCP reset, as a client that vanishes does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method, target, headers=(), body=b"", version="HTTP/1.1", host="test"):
    lines = [f"{method} {target} {version}"]
    names = {name.lower() for name, _ in headers}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---------------------------------------------------------------- server processes

class ServerProcess:
    def __init__(self, log_dir, name, app="routing_app", factory=False, mode="listen-run", host="127.0.0.1",
                 port=0, options=None, reuse_port=False, usr1_file=None, warnings_error=False,
                 command_prefix=(), ready_path="/ping"):
        self.name = name
        self.stderr_path = pathlib.Path(log_dir) / f"{name}.stderr"
        self.mode = mode
        self.host = host
        self.requested_port = port
        self.ready_path = ready_path
        self.traced = bool(command_prefix)
        self.command = [*command_prefix, sys.executable, str(SERVE_SCRIPT), "--app", app, "--mode", mode,
                        "--host", host]
        if port is not None:
            self.command += ["--port", str(port)]
        if factory:
            self.command.append("--factory")
        if reuse_port:
            self.command.append("--reuse-port")
        if usr1_file:
            self.command += ["--usr1-file", str(usr1_file)]
        if warnings_error:
            self.command.append("--warnings-error")
        for option, value in (options or {}).items():
            self.command += ["--option", f"{option}={json.dumps(value)}"]
        self.process = None
        self.pid = None
        self.addresses = []
        self.exit_code = None
        self._stdout = b""

    # -- lifecycle

    def start(self):
        env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONDONTWRITEBYTECODE="1")
        # Under `make test-asan`, servers (and only they: not every tool a test
        # runs) exit non-zero when LeakSanitizer finds a leak at exit. It
        # cannot work under strace: both would trace the process.
        if "URSA_SERVER_ASAN_OPTIONS" in env and not self.traced:
            env["ASAN_OPTIONS"] = env["URSA_SERVER_ASAN_OPTIONS"]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=stderr, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        line = self._read_stdout_line(deadline)
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

    def _read_stdout_line(self, deadline):
        fd = self.process.stdout.fileno()
        while b"\n" not in self._stdout:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"server {self.name} did not start in {START_TIMEOUT} s\n{self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait(STOP_TIMEOUT)
                    raise AssertionError(f"server {self.name} exited with {self.process.returncode} before "
                                         f"listening; stdout {self._stdout!r}\n{self.log_tail()}")
                self._stdout += chunk
        line, _, self._stdout = self._stdout.partition(b"\n")
        return line.decode()

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
            if self.process.poll() is not None:
                raise AssertionError(f"server {self.name} exited with {self.process.returncode}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server {self.name} not ready in {START_TIMEOUT} s: {problem}\n{self.log_tail()}")
            time.sleep(0.02)

    def send_signal(self, signum):
        os.kill(self.pid, signum)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Wait for the process to end; returns its exit code (killing it if it does not)."""
        try:
            self.exit_code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server {self.name} still running {timeout} s after being asked to stop; "
                                 f"killed\n{self.log_tail()}")
        self._stdout += self.process.stdout.read()
        self.process.stdout.close()
        return self.exit_code

    def stop(self, signum=signal.SIGTERM, timeout=STOP_TIMEOUT):
        if self.process.poll() is None:
            self.send_signal(signum)
        return self.wait_exit(timeout)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stdout_text(self):
        return self._stdout.decode(errors="replace")

    # -- logs

    def log_text(self):
        return self.stderr_path.read_bytes().decode(errors="replace")

    def log_offset(self):
        return self.stderr_path.stat().st_size

    def log_since(self, offset):
        with open(self.stderr_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def wait_for_log(self, text, since=0, timeout=IO_TIMEOUT):
        return wait_until(lambda: text in self.log_since(since) and self.log_since(since), timeout,
                          f"{text!r} appears in the log of server {self.name}")

    def log_tail(self, size=4000):
        try:
            return f"--- stderr of {self.name} (tail) ---\n{self.log_text()[-size:]}"
        except OSError:
            return ""

    # -- clients

    @property
    def address(self):
        return self.addresses[0]

    @property
    def port(self):
        return self.address["port"]

    def socket_address(self, index=0):
        address = self.addresses[index]
        if address["family"] == "unix":
            return socket.AF_UNIX, address["path"]
        if address["family"] == "inet6":
            return socket.AF_INET6, (address["host"], address["port"])
        return socket.AF_INET, (address["host"], address["port"])

    def connect(self, timeout=IO_TIMEOUT, index=0, nodelay=True, source=None):
        """A raw connection; `source` is the local address to connect from."""
        family, address = self.socket_address(index)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source is not None:
                sock.bind((source, 0))
            sock.connect(address)
            if nodelay and family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        return RawConnection(sock, timeout)

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


class ServerPool:
    """Starts servers; at teardown stops those still running with SIGTERM
    and requires each to exit 0 in time."""

    def __init__(self, log_dir):
        self.log_dir = pathlib.Path(log_dir)
        self.servers = []

    def start(self, name=None, **settings):
        name = name or f"server{len(self.servers)}"
        server = ServerProcess(self.log_dir, name, **settings)
        self.servers.append(server)
        return server.start()

    def stop_all(self):
        problems = []
        for server in self.servers:
            if server.process is None or server.exit_code is not None:
                continue
            try:
                code = server.stop()
            except AssertionError as error:
                problems.append(str(error))
                continue
            if code != 0:
                problems.append(f"server {server.name} exited with {code} after SIGTERM\n{server.log_tail()}")
        assert not problems, "\n".join(problems)
