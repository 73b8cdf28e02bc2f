"""The robustness tests' layer over tests/support: the server process
(hostile_server.py under support.servers.ServerProcess), what /proc says
about it, and the checks every rejection must pass.
"""
import json
import pathlib
import sys

from support.processes import fd_count, open_fds, rss_kib
from support.servers import ServerPool, ServerProcess
from support.waiting import wait_until

HERE = pathlib.Path(__file__).resolve().parent
LAUNCHER = HERE / "hostile_server.py"

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
        self.argv = [sys.executable, str(LAUNCHER), "--backlog", str(backlog)]
        if access_log:
            self.argv.append("--access-log")
        for option, value in merged.items():
            self.argv += ["--option", f"{option}={json.dumps(value)}"]

    # -- what the kernel says about the process

    def fd_count(self):
        return fd_count(self.pid)

    def fds(self):
        """{fd: target} of the open descriptors, for messages."""
        return open_fds(self.pid)

    def rss_kib(self):
        return rss_kib(self.pid)

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
    """Starts HostileServers; stops them (SIGTERM, exit 0 required) when it closes."""

    def start(self, name=None, options=None, backlog=1024, access_log=False):
        server = HostileServer(self.directory, name or self.new_name("hostile"), options, backlog, access_log)
        return self.add(server).start()


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
