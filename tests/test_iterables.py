"""Response iterables: the kinds an app may return, empty items, close()
called exactly once whatever happens, and flow control when the client
reads slowly."""
import socket
import time

import pytest

from support.processes import RSS_IS_MEANINGFUL
from support.rawhttp import IncompleteBody, build_request
from support.waiting import wait_until


@pytest.mark.parametrize("kind", ["list", "tuple", "generator", "custom", "bytearray", "memoryview"])
def test_iterable_kind_is_sent_in_full(server, kind):
    response = server.get(f"/iter?kind={kind}&token=unused")
    assert (response.status, response.body) == (200, b"abc")


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "subclass"])
def test_bytes_returned_instead_of_an_iterable_is_the_body(server, kind):
    """bjoern serves `return b"..."` as the body, and apps written for it
    do that; iterated, it would be a sequence of ints."""
    with server.connect() as conn:
        conn.send(build_request("GET", f"/bytes?kind={kind}") + build_request("GET", "/ping"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"returned as bytes")
        assert response.header("Content-Length") == str(len(b"returned as bytes"))
        assert conn.read_response().body == b"pong"


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_empty_items_are_skipped_and_do_not_end_a_chunked_body(server, version):
    with server.connect() as conn:
        conn.send(build_request("GET", "/iter?kind=empty-items", version=version))
        response = conn.read_response()
        assert response.body == b"abc"
        if version == "HTTP/1.1":
            # An empty item sent as a chunk would be "0\r\n\r\n": the end of the body.
            conn.send(build_request("GET", "/ping"))
            assert conn.read_response().body == b"pong"


def test_iterable_of_only_empty_items_gives_an_empty_body(server):
    with server.connect() as conn:
        conn.send(build_request("GET", "/iter?kind=all-empty") + build_request("GET", "/ping"))
        assert conn.read_response().body == b""
        assert conn.read_response().body == b"pong"


def wait_for_close_calls(server, token):
    """The record of ``token`` once close() was called (at least once)."""
    def record_once_closed():
        record = server.get_json(f"/record?token={token}")
        return record if record["close_calls"] else None
    return wait_until(record_once_closed, 30, f"close() of {token} is called")


def test_close_is_called_once_after_a_normal_end(server, token):
    assert server.get(f"/iter?kind=custom&token={token}").body == b"abc"
    record = wait_for_close_calls(server, token)
    assert record["close_calls"] == 1
    assert record["exhausted"] is True
    server.assert_serving()
    assert server.get_json(f"/record?token={token}")["close_calls"] == 1


def test_close_is_called_once_when_the_iterable_fails_midway(server, token):
    with server.connect() as conn:
        conn.send(build_request("GET", f"/iter-error?token={token}"))
        with pytest.raises(IncompleteBody):
            conn.read_response()
    record = wait_for_close_calls(server, token)
    assert record["close_calls"] == 1
    server.assert_serving()
    assert server.get_json(f"/record?token={token}")["close_calls"] == 1


def test_close_is_called_once_for_a_head_request(server, token):
    assert server.request("HEAD", f"/iter?kind=custom&token={token}").status == 200
    record = wait_for_close_calls(server, token)
    assert record["close_calls"] == 1
    server.assert_serving()
    assert server.get_json(f"/record?token={token}")["close_calls"] == 1


def test_generator_is_closed_once_after_a_normal_end(server, token):
    response = server.get(f"/generator-stream?token={token}&size=200000")
    assert len(response.body) == 200000
    record = wait_for_close_calls(server, token)
    assert (record["close_calls"], record["exhausted"]) == (1, True)


@pytest.mark.parametrize("endpoint", ["/stream", "/generator-stream"])
def test_close_is_called_once_when_the_client_disconnects_mid_stream(server, token, endpoint):
    conn = server.connect()
    conn.send(build_request("GET", f"{endpoint}?token={token}"))
    conn.receive_until(b"\r\n\r\n")
    while len(conn.buffer) < 200_000:
        assert conn.receive_more(), "the stream ended early"
    conn.abort()
    record = wait_for_close_calls(server, token)
    assert record["close_calls"] == 1
    assert record["exhausted"] is False
    server.assert_serving()
    assert server.get_json(f"/record?token={token}")["close_calls"] == 1


def rss_mib(server):
    return server.get_json("/stats")["rss_kib"] / 1024


def test_streaming_a_gigabyte_to_a_slow_reader_keeps_memory_flat(server, token):
    """The server pulls the generator only as fast as the client reads."""
    before = rss_mib(server)
    conn = server.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.send(build_request("GET", f"/generator-stream?token={token}"))
    received = 0
    samples = []
    started = last_sample = time.monotonic()
    # A slow reader: 64 KiB every 10 ms for 2 s (about 13 MiB of the 1 GiB).
    while time.monotonic() - started < 2.0:
        chunk = conn.sock.recv(65536)
        assert chunk, "the stream ended early"
        received += len(chunk)
        time.sleep(0.01)
        if time.monotonic() - last_sample > 0.25:
            samples.append(rss_mib(server))
            last_sample = time.monotonic()
    samples.append(rss_mib(server))
    conn.close()
    record = wait_for_close_calls(server, token)
    after = rss_mib(server)
    peak = max(samples)
    print(f"\n[figure] RSS streaming 1 GiB to a slow reader: before {before:.1f} MiB, peak during "
          f"{peak:.1f} MiB, after {after:.1f} MiB; client read {received / 2**20:.1f} MiB, "
          f"app produced {record['items_pulled'] / 16:.1f} MiB")
    if RSS_IS_MEANINGFUL:
        assert peak - before < 48, f"RSS grew by {peak - before:.1f} MiB while streaming"
    # Flow control: the app is at most a few socket buffers ahead of the reader.
    assert record["items_pulled"] * 65536 < received + (32 << 20)
