"""Shared pieces of the robustness tests: the server process (hostile_server.py
under tests/e2e_harness.py's ServerProcess), what /proc says about it, and
the checks every rejection must pass.
"""
import json
import os
import pathlib
import sys

from e2e_harness import ServerPool, ServerProcess, build_request, wait_until

HERE = pathlib.Path(__file__).resolve().parent
LAUNCHER = HERE / "hostile_server.py"

# Under ASan every allocation carries redzones and quarantine: RSS says
# nothing about ursa's own memory there, so those assertions are skipped.
SANITIZED = os.environ.get("URSA_SANITIZE") == "1"

# Keeps teardown short: a test that leaves a half-sent request behind must
# not hold the server's graceful stop for the 30 s default.
TEST_DEFAULTS = {"graceful_timeout": 3.0}

# An error answer is a status line, a few headers and one line of text.
SHORT_BODY_MAX = 200


class HostileServer(ServerProcess):
    """A hostile_server.py process; ``options`` are ursa server options."""

    def __init__(self, log_dir, name, options=None, backlog=1024, access_log=False):
        merged = dict(TEST_DEFAULTS, **(options or {}))
        super().__init__(log_dir, name, options=merged)
        self.options = merged
        self.command = [sys.executable, str(LAUNCHER), "--backlog", str(backlog)]
        if access_log:
            self.command.append("--access-log")
        for option, value in merged.items():
            self.command += ["--option", f"{option}={json.dumps(value)}"]

    # -- what the kernel says about the process

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def fds(self):
        """{fd: target} of the open descriptors, for messages."""
        result = {}
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                result[int(name)] = os.readlink(f"/proc/{self.pid}/fd/{name}")
            except FileNotFoundError:
                pass
        return result

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError(f"no VmRSS in /proc/{self.pid}/status")

    def wait_fd_count(self, expected, timeout=10.0, what="the server's fd count returns to its baseline"):
        try:
            wait_until(lambda: self.fd_count() <= expected, timeout, what)
        except AssertionError:
            raise AssertionError(f"{what}: {self.fd_count()} open, expected {expected}; fds {self.fds()}") from None

    # -- app records

    def record(self, token):
        return self.get_json(f"/record?token={token}")

    def wait_record(self, token, predicate, what, timeout=10.0):
        last = {}

        def check():
            last.update(self.record(token))
            return predicate(last)
        try:
            wait_until(check, timeout, what)
            return last
        except AssertionError:
            raise AssertionError(f"{what}; record of {token}: {last}") from None


class HostilePool(ServerPool):
    """Starts HostileServers; stops them (SIGTERM, exit 0 required) at teardown."""

    def start(self, name=None, options=None, backlog=1024, access_log=False):
        server = HostileServer(self.log_dir, name or f"hostile{len(self.servers)}", options, backlog, access_log)
        self.servers.append(server)
        return server.start()


# ---------------------------------------------------------------- rejections

def assert_rejected(conn, status, request_bytes=None, reason=None):
    """Read the error answer on ``conn``: ``status``, a short text body
    (naming ``reason`` if given), Connection: close, then the server closes
    with nothing more."""
    response = conn.read_response()
    assert response.status == status, f"expected {status} for {request_bytes!r}, got {response}"
    if reason is not None:
        assert reason.encode() in response.body, f"expected the reason {reason!r}, got {response}"
    assert response.header("Connection") == "close", response
    assert len(response.body) <= SHORT_BODY_MAX, response
    assert response.body.startswith(str(status).encode()), response
    assert conn.is_closed_by_server(), "the server keeps the connection open after an error answer"
    return response


def send_and_expect_rejection(server, request_bytes, status, reason=None):
    with server.connect() as conn:
        conn.send(request_bytes)
        response = assert_rejected(conn, status, request_bytes, reason)
    server.assert_serving()
    return response


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered) + 0.5)) - 1))
    return ordered[index]


__all__ = ["HostileServer", "HostilePool", "assert_rejected", "send_and_expect_rejection", "percentile",
           "build_request", "wait_until", "HERE", "SANITIZED"]
