"""nginx in front of ursa, as most deployments run it: proxy_pass over TCP
and over a unix socket, with keep-alive upstream connections.

Debian's nginx runs in the foreground from a generated config whose every
path (pid, logs, temp dirs) is in the test's directory.
"""
import http.client
import json
import os
import shutil
import socket
import pwd
import textwrap

import pytest

from support.processes import STOP_TIMEOUT, children_of, free_port
from support.rawhttp import RawConnection
from support.waiting import wait_until

from .harness import connect_as

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BIND_ATTEMPTS = 3

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (apt-get install nginx)")


# The Host ursa gets is the client's, port included, or this server_name
# when it sent none (an HTTP/1.0 client): nginx drops a header whose value is
# empty, and an HTTP/1.1 request to ursa without a Host is a 400.
SERVER_NAME = "app.example"


def nginx_config(directory, port, tcp_address, unix_path, user=None):
    """nginx in the foreground on 127.0.0.1:port, proxying /tcp/ to
    tcp_address and /unix/ to unix_path (either may be None). Its workers
    run as `user` ('www-data'), or as root when the tests run as root."""
    if user is None and os.geteuid() == 0:
        user = "root"
    upstreams, locations = [], []
    for route, server in (("tcp", tcp_address), ("unix", unix_path and f"unix:{unix_path}")):
        if server is None:
            continue
        upstreams.append(f"""
            upstream ursa_{route} {{
                server {server};
                keepalive 4;
            }}""")
        locations.append(f"""
                location /{route}/ {{
                    proxy_pass http://ursa_{route}/;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $ursa_host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Proto $scheme;
                }}""")
    return textwrap.dedent(f"""
        {f"user {user} {user};" if user else ""}
        worker_processes 1;
        pid {directory}/nginx.pid;
        error_log {directory}/error.log info;
        events {{ worker_connections 128; }}
        http {{
            access_log {directory}/access.log;
            client_body_temp_path {directory}/client_body;
            proxy_temp_path {directory}/proxy;
            fastcgi_temp_path {directory}/fastcgi;
            uwsgi_temp_path {directory}/uwsgi;
            scgi_temp_path {directory}/scgi;
            client_max_body_size 10m;
            map $http_host $ursa_host {{
                "" $host;
                default $http_host;
            }}
{"".join(upstreams)}
            server {{
                listen 127.0.0.1:{port};
                server_name {SERVER_NAME};{"".join(locations)}
            }}
        }}
    """)


def start_nginx(procs, parent, tcp_address=None, unix_path=None, user=None):
    """Start nginx (files in a new folder of `parent`) in front of ursa;
    returns (port, process) once it accepts connections."""
    for attempt in range(BIND_ATTEMPTS):
        directory = parent / f"nginx{attempt}"
        directory.mkdir()
        port = free_port()
        config = directory / "nginx.conf"
        config.write_text(nginx_config(directory, port, tcp_address, unix_path, user))
        nginx = procs.start([NGINX, "-p", directory, "-c", config, "-e", directory / "error.log",
                             "-g", "daemon off;"], name=f"nginx{attempt}")

        def started():
            if nginx.popen.poll() is not None:
                return "exited"
            try:
                with open(directory / "nginx.pid"):
                    pass
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                return "listening"
            except OSError:
                return None
        outcome = wait_until(started, STOP_TIMEOUT, f"nginx listens on {port}")
        if outcome == "listening":
            return port, nginx
        error_log = (directory / "error.log").read_text()
        if "Address already in use" not in error_log:
            pytest.fail(f"nginx did not start:\n{error_log}")
    pytest.fail(f"nginx found no free port in {BIND_ATTEMPTS} attempts")


def start_stack(procs, tmp_path, app):
    """ursa serving `app` (2 workers, TCP + unix socket) behind nginx:
    (nginx_port, ursa_process, unix_path)."""
    unix_path = tmp_path / "ursa.sock"
    ursa = procs.ursa("-b", "127.0.0.1:0", "-b", f"unix:{unix_path}", "-w", "2", app)
    port, _ = start_nginx(procs, tmp_path, ursa.address[len("http://"):], unix_path)
    return port, ursa, unix_path


@pytest.fixture
def stack(procs, tmp_path):
    return start_stack(procs, tmp_path, "deployapp:app")


def through_nginx(port, method, path, body=None, headers=None, connection=None):
    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=STOP_TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        if own:
            connection.close()


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_get(stack, route):
    port, _, _ = stack
    status, headers, body = through_nginx(port, "GET", f"/{route}/")
    assert (status, body) == (200, b"hello")
    assert headers["content-length"] == "5"


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_post_with_a_body(stack, route):
    port, _, _ = stack
    payload = bytes(range(256)) * 1024  # 256 KiB: nginx buffers it to a temp file first
    status, _, body = through_nginx(port, "POST", f"/{route}/echo", body=payload,
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    assert body == payload


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_streamed_chunked_response(stack, route):
    port, _, _ = stack
    status, headers, body = through_nginx(port, "GET", f"/{route}/stream?200")
    assert status == 200
    assert headers.get("transfer-encoding") == "chunked"
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(200))


def test_keep_alive_upstream_over_tcp_reuses_one_connection(stack):
    port, _, _ = stack
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=STOP_TIMEOUT)
    seen = [json.loads(through_nginx(port, "GET", "/tcp/environ", connection=client)[2]) for _ in range(10)]
    client.close()
    # nginx strips the client's Connection header and sends none upstream.
    assert all(environ["HTTP_CONNECTION"] is None for environ in seen)
    assert all(environ["SERVER_PROTOCOL"] == "HTTP/1.1" for environ in seen)
    # One nginx worker, sequential requests: the same upstream connection each time.
    assert len({environ["REMOTE_PORT"] for environ in seen}) == 1, seen


def connected_unix_sockets(path):
    """Server-side ends of connections on the unix socket `path` (/proc/net/unix)."""
    count = 0
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(path) and fields[5] == "03":  # SS_CONNECTED
                count += 1
    return count


def test_keep_alive_upstream_over_unix_socket_stays_open(stack):
    port, _, unix_path = stack
    for _ in range(10):
        assert through_nginx(port, "GET", "/unix/")[2] == b"hello"
    # Without keep-alive every connection would be closed after its response.
    assert connected_unix_sockets(unix_path) == 1


def test_many_requests_with_mixed_methods_all_succeed(stack):
    port, _, _ = stack
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=STOP_TIMEOUT)
    for index in range(100):
        route = "tcp" if index % 2 else "unix"
        if index % 3 == 0:
            status, _, body = through_nginx(port, "POST", f"/{route}/echo", body=b"n%d" % index, connection=client)
            assert (status, body) == (200, b"n%d" % index)
        else:
            assert through_nginx(port, "GET", f"/{route}/", connection=client)[:1] == (200,)
    client.close()


def uids_of(pid):
    """The real and effective uid of a process."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return [int(uid) for uid in next(line for line in status if line.startswith("Uid:")).split()[1:3]]
    except FileNotFoundError:
        return None


@pytest.mark.skipif(os.geteuid() != 0, reason="nginx workers as www-data need a root master")
def test_nginx_as_www_data_reaches_the_socket_and_other_users_cannot(procs, shared_dir):
    # The README's recipe: the socket belongs to ursa's group (www-data,
    # nginx's) and --umask 007 lets that group in and nobody else. Workers
    # run as nobody, standing in for the app's own user.
    unix_path = shared_dir / "app.sock"
    procs.ursa("-b", f"unix:{unix_path}", "-w", "2", "--user", "nobody", "--group", "www-data", "--umask", "007",
               "deployapp:app")
    info = os.stat(unix_path)
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (pwd.getpwnam("nobody").pw_uid,
                                                                pwd.getpwnam("www-data").pw_gid, 0o770)
    port, nginx = start_nginx(procs, shared_dir, unix_path=unix_path, user="www-data")
    wait_until(lambda: [uids_of(pid) for pid in children_of(nginx.pid)] == [[pwd.getpwnam("www-data").pw_uid] * 2],
               STOP_TIMEOUT, "nginx's worker runs as www-data")
    for _ in range(3):
        status, _, body = through_nginx(port, "GET", "/unix/")
        assert (status, body) == (200, b"hello")
    # Another local user is refused: only nginx goes through.
    assert connect_as("daemon", unix_path) == "Permission denied"


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_the_app_sees_the_clients_host_and_address_through_nginx(stack, route):
    port, _, _ = stack
    environ = json.loads(through_nginx(port, "GET", f"/{route}/environ", headers={"Host": "shop.example:8080"})[2])
    assert environ["HTTP_HOST"] == "shop.example:8080"
    assert environ["wsgi.url_scheme"] == "http"
    # nginx is a trusted proxy (loopback, or the unix socket): its
    # X-Forwarded-For names the client.
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["ursa.peer"] in ("127.0.0.1", "")


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_a_client_without_host_still_reaches_the_app(stack, route):
    """An HTTP/1.0 client may send no Host; nginx then sends the
    server_name, never an HTTP/1.1 request without Host (ursa's 400)."""
    port, _, _ = stack
    with socket.create_connection(("127.0.0.1", port), timeout=STOP_TIMEOUT) as sock:
        sock.sendall(f"GET /{route}/environ HTTP/1.0\r\n\r\n".encode())
        reply = RawConnection(sock, STOP_TIMEOUT).read_until_close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply
    assert json.loads(body)["HTTP_HOST"] == SERVER_NAME


@pytest.fixture
def asgi_stack(procs, tmp_path):
    return start_stack(procs, tmp_path, "asgiapp:app")


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_asgi_app_behind_nginx_sees_the_client_and_its_scheme(asgi_stack, route):
    port, _, _ = asgi_stack
    status, _, body = through_nginx(port, "GET", f"/{route}/scope", headers={"Host": "shop.example:8443"})
    scope = json.loads(body)
    assert status == 200
    # nginx sends X-Forwarded-Proto and X-Forwarded-For from 127.0.0.1 or the
    # unix socket, both trusted by default (forwarded_allow_ips).
    assert (scope["scheme"], scope["client"][0], scope["host"]) == ("http", "127.0.0.1", "shop.example:8443")
    payload = bytes(range(256)) * 1024
    status, _, echoed = through_nginx(port, "POST", f"/{route}/echo", body=payload)
    assert (status, echoed) == (200, payload)


def test_asgi_keep_alive_upstream_serves_many_requests(asgi_stack):
    port, _, unix_path = asgi_stack
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=STOP_TIMEOUT)
    for _ in range(50):
        assert through_nginx(port, "GET", "/unix/", connection=client)[2] == b"hello"
    client.close()
    assert connected_unix_sockets(unix_path) == 1
