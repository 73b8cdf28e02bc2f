"""wsgiref.validate checks the server's side of PEP 3333 (environ, input,
start_response use, iterable close). The validated app runs with every
warning turned into an error; the log must stay free of both."""
import pytest

from support.rawhttp import ConnectionClosed, build_request

PROBLEM_MARKERS = ("AssertionError", "Warning", "Traceback", "Exception ignored", "Error")


@pytest.fixture(scope="module")
def validated_server(module_servers):
    # Keep-alive idles from the last byte handed to the kernel (as nginx's
    # does): a client still reading a 3 MiB answer out of its socket buffer
    # when the 5 s default runs out finds the idle close on its next request
    # (a client reading 64 KiB per 20 ms meets it with a 0.3 s limit). Two CI
    # runs under load did; validation is what this file tests, so the idle
    # limit is put out of its way.
    return module_servers.start(name="validated", app="make_validated_app", factory=True, warnings_error=True,
                                ready_path="/", options={"keepalive_timeout": 120})


def exchange(server, request, method="GET"):
    """Send one request, then a second one on the same connection so the
    first response's iterable is surely closed and collected; returns the
    first response and what the server logged meanwhile."""
    offset = server.log_offset()
    with server.connect() as conn:
        conn.send(request)
        response = conn.read_response(method)
        # A first answer that ends the connection would fail the second
        # request with no word of why: say it here, with the server's log.
        assert response.header("Connection") != "close", (response.status, response.headers,
                                                          server.log_since(offset))
        conn.send(build_request("GET", "/"))
        try:
            second = conn.read_response()
        except ConnectionClosed as closed:
            raise AssertionError(f"{closed}; the server's log:\n{server.log_since(offset)}") from None
        assert second.body == b"hello"
    log = server.log_since(offset)
    return response, log


def assert_clean(log):
    problems = [marker for marker in PROBLEM_MARKERS if marker in log]
    assert not problems, f"validator problems in the server log:\n{log}"


def test_validated_get(validated_server):
    response, log = exchange(validated_server, build_request("GET", "/?a=1"))
    assert (response.status, response.body) == (200, b"hello")
    assert_clean(log)


def test_validated_post_with_content_length(validated_server):
    response, log = exchange(validated_server, build_request("POST", "/", [("Content-Type", "text/plain")],
                                                             body=b"posted body"))
    assert (response.status, response.body) == (200, b"posted body")
    assert_clean(log)


def test_validated_head(validated_server):
    response, log = exchange(validated_server, build_request("HEAD", "/"), method="HEAD")
    assert response.status == 200
    assert_clean(log)


def test_validated_chunked_post(validated_server):
    request = build_request("POST", "/", [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")])
    response, log = exchange(validated_server, request + b"6\r\nchunks\r\n5\r\n body\r\n0\r\n\r\n")
    assert (response.status, response.body) == (200, b"chunks body")
    assert_clean(log)


def test_validated_post_spilled_to_a_temporary_file(validated_server):
    body = b"z" * (3 << 20)
    response, log = exchange(validated_server, build_request("POST", "/", [("Content-Type", "text/plain")],
                                                             body=body))
    assert response.status == 200 and response.body == body
    assert_clean(log)
