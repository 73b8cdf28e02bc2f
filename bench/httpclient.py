"""The harness's HTTP/1.1 client: response checks, callgrind's and strace's
fixed loads, and the idle keep-alive connections of the memory section.
Connections and response parsing are tests/support's raw client
(support.rawhttp); what is here is what a scenario expects.

A scenario here is anything with request_bytes(port), keep_alive,
expected_body and expect_chunked (families.Scenario).
"""
import contextlib
import os
import socket
import sys

from servers import HOST

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if TESTS_DIR not in sys.path:
    sys.path.append(TESTS_DIR)  # after bench/: its apps.py is not tests/apps.py

from support.rawhttp import ConnectionClosed, IncompleteBody, connect  # noqa: E402

CLIENT_SOCKET_TIMEOUT = 60.0  # seconds; generous because of valgrind
# Idle connections are opened this many at a time, each batch answered before
# the next is opened, so the server's listen backlog (1024 for most) never fills.
IDLE_CONNECTION_BATCH = 256
# Seconds an idle connection's request may wait for its answer: a server that
# stops accepting past some number of connections fails soon, not after minutes.
IDLE_CONNECTION_TIMEOUT = 10.0


def open_connection(port, timeout):
    return connect((socket.AF_INET, (HOST, port)), timeout, nodelay=False)


def read_response(connection):
    """One response on a RawConnection; ConnectionError if it is cut short or malformed."""
    try:
        return connection.read_response()
    except (ConnectionClosed, IncompleteBody, AssertionError, ValueError) as error:
        raise ConnectionError(f"no complete response: {error}") from None


def send_requests(port, scenario, count):
    """Send ``count`` requests one after another; returns the last response."""
    request = scenario.request_bytes(port)
    connection = None
    response = None
    try:
        for _ in range(count):
            if connection is None:
                connection = open_connection(port, CLIENT_SOCKET_TIMEOUT)
            connection.send(request)
            response = read_response(connection)
            # gunicorn's sync worker answers keep-alive requests with a close.
            closes = any(value.lower() == "close" for value in response.headers_named("Connection"))
            if not scenario.keep_alive or closes:
                if connection.read_until_close() != b"":  # wait for the server's close
                    raise ConnectionError("bytes after a response that closes the connection")
                connection.close()
                connection = None
    finally:
        if connection is not None:
            connection.close()
    return response


def response_problem(response, scenario):
    """None if ``response`` is what ``scenario`` expects, else what is wrong."""
    if response.status != 200:
        return f"status {response.status}, expected 200; body {response.body[:200]!r}"
    if response.body != scenario.expected_body:
        return (f"body of {len(response.body)} bytes differs from the expected {len(scenario.expected_body)}: "
                f"{response.body[:80]!r}")
    if scenario.expect_chunked and response.framing != "chunked":
        return f"expected a chunked response, got headers {response.headers}"
    return None


def check_response(port, scenario, count=None):
    """Return None if the server answers ``scenario`` correctly, else what is wrong.

    Two requests by default on keep-alive, so the second rides the first's connection."""
    if count is None:
        count = 2 if scenario.keep_alive else 1
    try:
        response = send_requests(port, scenario, count)
    except (OSError, ValueError) as error:
        return f"request failed: {error!r}"
    return response_problem(response, scenario)


@contextlib.contextmanager
def idle_connections(port, scenario, count):
    """Open ``count`` keep-alive connections, one answered request on each, and hold them open.

    Yields the connections; closes them all on exit. Raises ConnectionError
    if a response is missing or wrong."""
    request = scenario.request_bytes(port)
    held = []
    try:
        while len(held) < count:
            batch = [open_connection(port, IDLE_CONNECTION_TIMEOUT)
                     for _ in range(min(IDLE_CONNECTION_BATCH, count - len(held)))]
            held.extend(batch)
            for connection in batch:
                connection.send(request)
            for connection in batch:
                problem = response_problem(read_response(connection), scenario)
                if problem:
                    raise ConnectionError(f"an idle connection's request got a wrong answer: {problem}")
        yield held
    finally:
        for connection in held:
            connection.close()
