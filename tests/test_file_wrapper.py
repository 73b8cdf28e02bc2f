"""wsgi.file_wrapper: regular files (sent with sendfile) and other file-likes."""
import hashlib
import os
import shutil
import subprocess
from urllib.parse import quote

import pytest

from support.rawhttp import build_request
from support.waiting import wait_until


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("file_wrapper") / "data.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 12345))
    return path


def wait_for_file_close(server, token):
    def record_once_closed():
        record = server.get_json(f"/record?token={token}")
        return record if record["close_calls"] else None
    return wait_until(record_once_closed, 30, f"the file of {token} is closed")


@pytest.mark.parametrize("block_size", [1, 8192, 1 << 20])
def test_regular_file_is_sent_intact(server, data_file, token, block_size):
    with server.connect() as conn:
        conn.send(build_request("GET", f"/file?kind=file&path={quote(str(data_file))}&token={token}"
                                       f"&blksize={block_size}"))
        response = conn.read_response()
    assert response.header("Content-Length") == str(data_file.stat().st_size)
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(data_file.read_bytes()).digest()


def test_regular_file_is_closed_once_after_sending(server, data_file, token):
    assert server.get(f"/file?kind=file&path={quote(str(data_file))}&token={token}").status == 200
    assert wait_for_file_close(server, token)["close_calls"] == 1


def test_regular_file_response_keeps_the_connection_alive(server, data_file, token):
    with server.connect() as conn:
        conn.send(build_request("GET", f"/file?kind=file&path={quote(str(data_file))}&token={token}")
                  + build_request("GET", "/ping"))
        assert len(conn.read_response().body) == data_file.stat().st_size
        assert conn.read_response().body == b"pong"


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_bytesio_file_like_is_sent_intact(server, apps_module, token, version):
    size = 2 * (1 << 20) + 7
    with server.connect() as conn:
        conn.send(build_request("GET", f"/file?kind=bytesio&size={size}&token={token}&blksize=65536",
                                version=version))
        response = conn.read_response()
    assert len(response.body) == size
    assert hashlib.sha256(response.body).hexdigest() == apps_module.pattern_sha256(size)


def test_bytesio_file_like_is_closed_once(server, token):
    assert server.get(f"/file?kind=bytesio&size=1000&token={token}").status == 200
    assert wait_for_file_close(server, token)["close_calls"] == 1


def test_file_is_closed_when_the_client_disconnects_mid_file(server, tmp_path, token):
    big_file = tmp_path / "big.bin"
    with open(big_file, "wb") as f:
        f.truncate(256 << 20)  # sparse: 256 MiB that cost no disk
    conn = server.connect()
    conn.send(build_request("GET", f"/file?kind=file&path={quote(str(big_file))}&token={token}"))
    conn.receive_until(b"\r\n\r\n")
    conn.abort()
    assert wait_for_file_close(server, token)["close_calls"] == 1
    server.assert_serving()


def strace_works():
    if shutil.which("strace") is None:
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not strace_works(), reason="strace is not installed or ptrace is not permitted here")
def test_regular_file_is_sent_with_sendfile(servers, data_file, tmp_path, token):
    trace = tmp_path / "strace.out"
    server = servers.start(command_prefix=["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(trace)])
    response = server.get(f"/file?kind=file&path={quote(str(data_file))}&token={token}")
    assert len(response.body) == data_file.stat().st_size
    assert server.stop() == 0
    calls = [line for line in trace.read_text().splitlines() if "sendfile(" in line]
    assert calls, "no sendfile(2) call while serving a regular file"
    sent = sum(int(line.rsplit("=", 1)[1].split()[0]) for line in calls if line.rsplit("=", 1)[1].strip()[0].isdigit())
    assert sent == data_file.stat().st_size
