"""Access logs: off by default, combined log format when on, gunicorn's
atoms in --access-log-format, lines that cannot be forged."""
import base64
import os
import re
import signal
import socket
import time

import pytest

from ursa.accesslog import AccessLog, FormatError, compile_format

from support.processes import STOP_TIMEOUT
from support.waiting import wait_until

# 127.0.0.1 - - [21/Nov/2026:23:29:41 +0000] "GET /a?b=1 HTTP/1.1" 200 5 "-" "ua"
COMBINED_LINE = re.compile(r'(?P<h>\S+) (?P<l>\S+) (?P<u>\S+) \[(?P<t>[^\]]+)\] "(?P<r>[^"]*)" (?P<s>\d{3}) '
                           r'(?P<b>\S+) "(?P<f>(?:[^"\\]|\\.)*)" "(?P<a>(?:[^"\\]|\\.)*)"')
ENVIRON = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/a b", "QUERY_STRING": "x=1", "RAW_URI": "/a%20b?x=1",
    "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.1.2.3", "HTTP_REFERER": "http://ref/",
    "HTTP_USER_AGENT": "curl/8", "HTTP_X_REQUEST_ID": "abc", "CONTENT_TYPE": "text/plain",
}


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def wait_for_lines(path, count):
    return wait_until(lambda: len(log_lines(path)) >= count and log_lines(path), STOP_TIMEOUT,
                      f"{count} access log line(s) in {path}")


# -- the format language, formatting directly


def format_with(log_format, environ=ENVIRON, status=200, body_bytes=5, duration_us=1_234_567):
    format_line, _ = compile_format(log_format)
    return format_line(dict(environ), status, body_bytes, duration_us)


def test_default_is_the_combined_log_format():
    line = format_with(None)
    match = COMBINED_LINE.fullmatch(line.rstrip("\n"))
    assert match, line
    assert match["h"] == "10.1.2.3" and match["l"] == "-" and match["u"] == "-"
    assert match["r"] == "GET /a%20b?x=1 HTTP/1.1"
    assert (match["s"], match["b"], match["f"], match["a"]) == ("200", "5", "http://ref/", "curl/8")
    assert line.endswith("\n") and line.count("\n") == 1


def test_time_atom_is_when_the_request_arrived_in_clf():
    line = format_with("%(t)s", duration_us=0)
    stamp = time.strptime(line.strip()[1:-1].split()[0], "%d/%b/%Y:%H:%M:%S")
    assert abs(time.mktime(stamp) - time.time()) < 120
    earlier = format_with("%(t)s", duration_us=3600 * 10**6)
    assert earlier != line  # an hour-long request started an hour ago


@pytest.mark.parametrize("atom, expected", [
    ("m", "GET"), ("U", "/a b"), ("q", "x=1"), ("H", "HTTP/1.1"), ("s", "200"), ("B", "5"), ("b", "5"),
    ("D", "1234567"), ("M", "1234"), ("T", "1"), ("L", "1.234567"), ("p", f"<{os.getpid()}>"),
    ("{X-Request-Id}i", "abc"), ("{x-request-id}i", "abc"), ("{Content-Type}i", "text/plain"),
    ("{Missing}i", "-"), ("{REMOTE_ADDR}e", "10.1.2.3"),
])
def test_atoms(atom, expected):
    assert format_with(f"%({atom})s") == expected + "\n"


def test_b_is_a_dash_for_an_empty_body_and_big_b_is_zero():
    assert format_with("%(b)s %(B)s", body_bytes=0) == "- 0\n"


def test_user_comes_from_basic_auth_or_remote_user():
    basic = dict(ENVIRON, HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"alice:secret").decode())
    assert format_with("%(u)s", environ=basic) == "alice\n"
    assert format_with("%(u)s", environ=dict(ENVIRON, REMOTE_USER="bob")) == "bob\n"


def test_literal_percent_and_text_around_atoms():
    assert format_with("100%% [%(s)s] done") == "100% [200] done\n"


def test_quotes_and_control_characters_are_escaped():
    environ = dict(ENVIRON, HTTP_USER_AGENT='evil" "x\nforged line', PATH_INFO="/a\x1b")
    line = format_with(None, environ=environ)
    assert line.count("\n") == 1
    assert 'evil\\" \\"x\\x0aforged line' in line
    assert format_with("%(U)s", environ=environ) == "/a\\x1b\n"


@pytest.mark.parametrize("bad", ["%(nope)s", "%(h)d", "50% off", "%({X}z)s"])
def test_unknown_atoms_and_stray_percents_are_rejected(bad):
    with pytest.raises(FormatError):
        compile_format(bad)


def test_response_header_atoms_read_the_captured_headers(tmp_path):
    log = AccessLog(str(tmp_path / "a.log"), "%({X-Test}o)s %({Content-Length}o)s")
    assert log.needs_response_headers

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2"), ("X-Test", "yes")])
        return [b"ok"]
    environ = dict(ENVIRON)
    log.wrap_app(app)(environ, lambda status, headers, exc_info=None: None)
    log(environ, 200, 2, 10)
    log.close()
    assert (tmp_path / "a.log").read_text() == "yes 2\n"


# -- through the server


def test_off_by_default(procs, tmp_path):
    server = procs.ursa("-b", "127.0.0.1:0", "deployapp:app")
    server.get("/nothing-logged")
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "/nothing-logged" not in server.stdout() + server.stderr()


def test_combined_lines_in_a_file(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--access-log", log_path, "deployapp:app")
    server.get("/path?q=1", headers={"Referer": "http://example.test/", "User-Agent": "deploy-test/1"})
    server.get("/stream?3")
    (first, second) = sorted(wait_for_lines(log_path, 2), key=lambda line: "stream" in line)
    match = COMBINED_LINE.fullmatch(first)
    assert match, first
    assert match["h"] == "127.0.0.1"
    assert match["r"] == "GET /path?q=1 HTTP/1.1"
    assert (match["s"], match["b"]) == ("200", "5")
    assert (match["f"], match["a"]) == ("http://example.test/", "deploy-test/1")
    assert '"GET /stream?3 HTTP/1.1" 200 24 ' in second  # 3 x "chunk i\n"


def test_dash_writes_to_stdout(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "--access-log", "-", "--access-log-format", "%(m)s %(U)s %(s)s",
                        "deployapp:app")
    server.get("/to-stdout")
    wait_until(lambda: "GET /to-stdout 200" in server.stdout(), STOP_TIMEOUT, "the line reaches stdout")


def test_custom_format_with_timing_and_header_atoms(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "--access-log", log_path, "--access-log-format",
                        "%(s)s %(D)s %({X-Request-Id}i)s %({X-Test}o)s %(p)s", "deployapp:app")
    server.get("/header", headers={"X-Request-Id": "req-42"})
    (line,) = wait_for_lines(log_path, 1)
    status, micros, request_id, response_header, pid = line.split()
    assert (status, request_id, response_header) == ("200", "req-42", "yes")
    assert int(micros) >= 0
    assert pid == f"<{server.workers()[0]}>"


def test_lines_from_several_workers_never_interleave(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "2", "--access-log", log_path, "deployapp:app")
    for index in range(200):
        server.get(f"/line-{index}")
    lines = wait_for_lines(log_path, 200)
    assert len(lines) == 200
    assert all(COMBINED_LINE.fullmatch(line) for line in lines)
    assert sorted(int(line.split()[6].split("-")[1]) for line in lines) == list(range(200))


@pytest.mark.parametrize("app", ["deployapp:app", "asgiapp:app"], ids=["wsgi", "asgi"])
def test_requests_the_server_rejects_are_logged_too(procs, tmp_path, app):
    """A 414 or 431 made by the server itself, before any app runs, is a
    request the operator wants to see in the access log (nginx and gunicorn
    log theirs)."""
    log_path = tmp_path / "access.log"
    server = procs.ursa("-b", "127.0.0.1:0", "--max-request-line", "64", "--access-log", log_path,
                        "--access-log-format", "%(s)s %(m)s", app)
    assert server.get("/" + "x" * 100)[0] == 414
    # A request line without a target: a 400 whose method and path are not known.
    host, port = server.address.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=STOP_TIMEOUT) as raw:
        raw.sendall(b"GET\r\n\r\n")
        assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")
    assert server.get("/")[0] == 200
    # One worker handles them in order: once the 200 is logged, so are the others.
    wait_until(lambda: "200 GET" in log_lines(log_path), STOP_TIMEOUT, "the 200 is logged")
    assert log_lines(log_path) == ["414 GET", "400 -", "200 GET"]
