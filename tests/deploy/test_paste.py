"""PasteDeploy: [server:main] use = egg:ursa#main, loaded by paste.deploy
with a real pipeline (PasteDeploy's prefix filter in front of an app factory)."""
import signal
import socket
import textwrap

import pytest

from support.processes import STOP_TIMEOUT, free_port, process_alive
from support.waiting import wait_until

from .harness import APPS_DIR, PYTHON, request


def write_ini(tmp_path, server_options, name="app.ini"):
    path = tmp_path / name
    path.write_text(textwrap.dedent("""
        [pipeline:main]
        pipeline = prefix app

        [filter:prefix]
        use = egg:PasteDeploy#prefix
        prefix = /mounted

        [app:app]
        use = call:pasteapp:make_app
        greeting = from paste

        [server:main]
        use = egg:ursa#main
    """) + textwrap.dedent(server_options))
    return path


def serve_ini(procs, ini, name=None, wait=True):
    server = procs.start([PYTHON, APPS_DIR / "paste_serve.py", ini], env={"PYTHONPATH": str(APPS_DIR)}, name=name)
    if wait:
        server.wait_listening()
    return server


def test_tcp_server_runs_the_pipeline(procs, tmp_path):
    server = serve_ini(procs, write_ini(tmp_path, """
        host = 127.0.0.1
        port = 0
    """))
    assert server.address.startswith("http://127.0.0.1:")
    assert server.get("/mounted/page")[2] == b"from paste at /mounted|/page"
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0


def test_unix_socket_server(procs, tmp_path):
    sock_path = tmp_path / "paste.sock"
    server = serve_ini(procs, write_ini(tmp_path, f"""
        unix_socket = {sock_path}
    """))
    assert server.address == f"unix:{sock_path}"
    assert server.get("/mounted/")[2] == b"from paste at /mounted|/"
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert not sock_path.exists()


def test_ini_strings_become_limits_and_timeouts(procs, tmp_path):
    server = serve_ini(procs, write_ini(tmp_path, """
        host = 127.0.0.1
        port = 0
        max_request_line = 64
        max_body_size = 10
        keepalive_timeout = 0.5
    """))
    assert server.get("/mounted/" + "x" * 100)[0] == 414
    assert request(server.address, "POST", "/mounted/", body=b"y" * 100)[0] == 413
    assert server.get("/mounted/ok")[0] == 200


def test_reuse_port_lets_two_servers_share_a_port(procs, tmp_path):
    port = free_port()
    options = f"""
        host = 127.0.0.1
        port = {port}
        reuse_port = true
    """
    first = serve_ini(procs, write_ini(tmp_path, options, "one.ini"), name="one")
    second = serve_ini(procs, write_ini(tmp_path, options, "two.ini"), name="two")
    assert first.address == second.address == f"http://127.0.0.1:{port}"
    assert first.get("/mounted/")[0] == 200


def test_workers_option_runs_a_master_with_workers(procs, tmp_path):
    server = serve_ini(procs, write_ini(tmp_path, """
        host = 127.0.0.1
        port = 0
        workers = 2
        max_requests = 1000
    """))
    workers = server.wait_workers(2)
    assert server.get("/mounted/x")[2] == b"from paste at /mounted|/x"
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    wait_until(lambda: not any(process_alive(pid) for pid in workers), STOP_TIMEOUT, "workers are gone")


def test_access_log_option(procs, tmp_path):
    log_path = tmp_path / "access.log"
    server = serve_ini(procs, write_ini(tmp_path, f"""
        host = 127.0.0.1
        port = 0
        access_log = {log_path}
        access_log_format = %%(s)s %%(U)s "%%(r)s"
    """))
    server.get("/mounted/logged")
    wait_until(lambda: log_path.exists() and log_path.read_text(), STOP_TIMEOUT, "the line is logged")
    # The prefix filter moved /mounted to SCRIPT_NAME in the environ the log
    # line is made from; the request line is what the client sent.
    assert log_path.read_text() == '200 /logged "GET /mounted/logged HTTP/1.1"\n'


def assert_refused_in_one_line(server, expected):
    assert server.wait_exit() == 2
    lines = server.stderr().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ursa: error: "), server.stderr()
    assert expected in lines[0]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("options, expected", [
    ("port = eighty", "[server] option port must be a whole number, got 'eighty'"),
    ("max_request_lines = 10", "[server] option 'max_request_lines' is unknown to ursa; known: "),
    ("reuse_port = maybe", "[server] option reuse_port must be true or false, got 'maybe'"),
    ("header_timeout = 0", "[server] option header_timeout must be between 0.001 and 1e+07 seconds, got 0"),
    ("max_headers = 0", "[server] option max_headers must be between 1 and 1048576, got 0"),
    ("timeout = -1", "[server] option timeout must be zero or more seconds, got '-1'"),
], ids=["port", "unknown", "bool", "seconds", "count", "timeout"])
def test_bad_values_are_one_line_naming_the_option(procs, tmp_path, options, expected, workers):
    # Checked by the core's rules before anything is bound: before, a bad
    # limit was a traceback from the core once the app had loaded.
    port = "" if options.startswith("port") else "port = 0"
    server = serve_ini(procs, write_ini(tmp_path, f"""
        {port}
        workers = {workers}
        {options}
    """), wait=False)
    assert_refused_in_one_line(server, expected)


def test_port_in_use_is_reported(procs, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        server = serve_ini(procs, write_ini(tmp_path, f"""
            host = 127.0.0.1
            port = {taken.getsockname()[1]}
        """), wait=False)
        assert_refused_in_one_line(server, "address already in use")
