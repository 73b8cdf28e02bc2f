"""A minimal HTTP/1.1 client for the harness: response checks, callgrind's and
strace's fixed loads, and the idle keep-alive connections of the memory section.

A scenario here is anything with request_bytes(port), keep_alive,
expected_body and expect_chunked (families.Scenario).
"""
import contextlib
import socket

from servers import HOST

CLIENT_SOCKET_TIMEOUT = 60.0  # seconds; generous because of valgrind
# Idle connections are opened this many at a time, each batch answered before
# the next is opened, so the server's listen backlog (1024 for most) never fills.
IDLE_CONNECTION_BATCH = 256
# Seconds an idle connection's request may wait for its answer: a server that
# stops accepting past some number of connections fails soon, not after minutes.
IDLE_CONNECTION_TIMEOUT = 10.0


def read_response(reader):
    """Read one response from a buffered socket reader: (status, headers, body)."""
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ConnectionError(f"not an HTTP/1.x status line: {status_line!r}")
    status = int(parts[1])
    headers = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise ConnectionError("connection closed inside the response headers")
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked_body(reader)
    elif "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    else:
        body = reader.read()  # delimited by close
    return status, headers, body


def _read_chunked_body(reader):
    chunks = []
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            while reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(chunks)
        chunks.append(reader.read(size))
        reader.read(2)  # CRLF after each chunk


def send_requests(port, scenario, count):
    """Send ``count`` requests one after another; returns the last response."""
    request = scenario.request_bytes(port)
    connection = reader = None
    response = None
    try:
        for _ in range(count):
            if connection is None:
                connection = socket.create_connection((HOST, port), timeout=CLIENT_SOCKET_TIMEOUT)
                reader = connection.makefile("rb")
            connection.sendall(request)
            response = read_response(reader)
            # gunicorn's sync worker answers keep-alive requests with a close.
            if not scenario.keep_alive or response[1].get("connection", "").lower() == "close":
                if reader.read() != b"":  # wait for the server's close
                    raise ConnectionError("bytes after a response that closes the connection")
                reader.close()
                connection.close()
                connection = reader = None
    finally:
        if connection is not None:
            reader.close()
            connection.close()
    return response


def response_problem(response, scenario):
    """None if ``response`` is what ``scenario`` expects, else what is wrong."""
    status, headers, body = response
    if status != 200:
        return f"status {status}, expected 200; body {body[:200]!r}"
    if body != scenario.expected_body:
        return f"body of {len(body)} bytes differs from the expected {len(scenario.expected_body)}: {body[:80]!r}"
    if scenario.expect_chunked and headers.get("transfer-encoding", "").lower() != "chunked":
        return f"expected a chunked response, got headers {headers}"
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

    Yields the sockets; closes them all on exit. Raises ConnectionError if a
    response is missing or wrong."""
    request = scenario.request_bytes(port)
    held = []
    try:
        while len(held) < count:
            batch = [socket.create_connection((HOST, port), timeout=IDLE_CONNECTION_TIMEOUT)
                     for _ in range(min(IDLE_CONNECTION_BATCH, count - len(held)))]
            held.extend(batch)
            for connection in batch:
                connection.sendall(request)
            for connection in batch:
                _expect_answer(connection, scenario)
        yield held
    finally:
        for connection in held:
            connection.close()


def _expect_answer(connection, scenario):
    # The reader is closed, the socket stays open (makefile keeps its own reference).
    with connection.makefile("rb") as reader:
        response = read_response(reader)
    problem = response_problem(response, scenario)
    if problem:
        raise ConnectionError(f"an idle connection's request got a wrong answer: {problem}")
