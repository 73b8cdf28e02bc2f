"""Nothing an app does may freeze the worker: an iterable longer than its
Content-Length, one that never ends or yields nothing, and write() to a
client that does not read all leave the loop, its signals and its other
clients their turn."""
import hashlib
import os
import signal

import pytest

from support.processes import RSS_IS_MEANINGFUL
from support.rawhttp import build_request
from support.waiting import wait_until

MIB = 1 << 20


def test_iterable_longer_than_its_content_length_is_not_asked_for_more(server, token):
    """PEP 3333: once Content-Length bytes are sent the server stops
    iterating, calls close() and goes on serving the connection."""
    with server.connect(timeout=10) as conn:
        conn.send(build_request("GET", f"/endless?length=1000&token={token}"))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ab" * 500)
        conn.send(build_request("GET", f"/record?token={token}"))
        record = conn.read_response().json()
    assert record["items_pulled"] == 500
    assert record["close_calls"] == 1


def test_c_iterator_longer_than_its_content_length_leaves_the_worker_serving(server):
    """itertools.repeat never runs Python code: once, the worker spun on it
    for good, answering nobody and deaf to SIGTERM."""
    with server.connect(timeout=10) as conn:
        conn.send(build_request("GET", "/endless?kind=itertools&length=1000") + build_request("GET", "/ping"))
        assert conn.read_response().body == b"ab" * 500
        assert conn.read_response().body == b"pong"


def test_head_request_stops_iterating_at_the_content_length_too(server, token):
    with server.connect(timeout=10) as conn:
        conn.send(build_request("HEAD", f"/endless?length=1000&token={token}"))
        response = conn.read_response("HEAD")
        assert (response.status, response.header("Content-Length")) == (200, "1000")
        conn.send(build_request("GET", f"/record?token={token}"))
        record = conn.read_response().json()
    assert (record["items_pulled"], record["close_calls"]) == (500, 1)


@pytest.mark.parametrize("kind", ["itertools", "recording"])
def test_endless_iterable_of_empty_items_leaves_others_served_and_sigterm_works(servers, kind, token):
    server = servers.start(name="endless", options={"graceful_timeout": 1.0})
    with server.connect(timeout=30) as stuck:
        stuck.send(build_request("GET", f"/endless?kind={kind}&item=&token={token}"))
        for _ in range(3):
            server.assert_serving()
        assert server.stop(signal.SIGTERM) == 0  # the endless response is cut at graceful_timeout
        assert stuck.is_closed_by_server()


@pytest.fixture
def writer(servers):
    """A server whose write() backlog goes to disk past 256 KiB."""
    return servers.start(name="writer", options={"body_buffer_size": 256 * 1024})


def written(server, token):
    """What /write-big reports it wrote; asked on a connection of its own,
    which a worker stuck in write() would never answer."""
    with server.connect(timeout=10) as conn:
        conn.send(build_request("GET", f"/record?token={token}"))
        return conn.read_response().json().get("written")


def deleted_files_open_in(pid):
    found = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue
        if target.endswith("(deleted)"):
            found.append(target)
    return found


def test_write_to_a_client_that_does_not_read_never_stalls_the_other_clients(writer, apps_module, token):
    """Zope sends through write(). 20 MB to a client that reads nothing yet:
    the app returns at once, the rest waits on disk, another client is
    answered meanwhile, and the slow client gets every byte in order."""
    size = 20 * MIB
    rss_before = writer.get_json("/stats")["rss_kib"]
    with writer.connect(timeout=30) as slow:
        slow.send(build_request("GET", f"/write-big?size={size}&token={token}"))
        # Answered while the slow client has read nothing: write() did not
        # wait for it (the app finished writing all of it).
        wait_until(lambda: written(writer, token) == size, 20, "the app has written everything")
        assert writer.get("/ping").body == b"pong"
        assert deleted_files_open_in(writer.pid), "the backlog is not in a temporary file"
        rss_during = writer.get_json("/stats")["rss_kib"]
        response = slow.read_response()
    assert response.status == 200
    assert hashlib.sha256(response.body).hexdigest() == apps_module.pattern_sha256(size)
    if RSS_IS_MEANINGFUL:
        assert rss_during - rss_before < 8 * 1024, f"RSS grew from {rss_before} to {rss_during} KiB"
    wait_until(lambda: not deleted_files_open_in(writer.pid), 10, "the backlog's file is closed")


def test_write_to_a_client_that_vanishes_leaves_nothing_behind(writer, token):
    fds_before = writer.get_json("/stats")["open_fds"]
    with writer.connect(timeout=10) as gone:
        gone.send(build_request("GET", f"/write-big?size={8 * MIB}&token={token}"))
        wait_until(lambda: written(writer, token) == 8 * MIB, 20, "the app has written everything")
        gone.abort()
    wait_until(lambda: writer.get_json("/stats")["open_fds"] == fds_before, 10,
               "the connection and its backlog file are closed")
    writer.assert_serving()


def test_write_after_the_client_is_gone_raises_and_the_worker_goes_on(writer, token):
    with writer.connect(timeout=10) as gone:
        gone.send(build_request("GET", f"/write-big?size={64 * MIB}&piece={MIB}&token={token}"))
        gone.abort()
    record = wait_until(lambda: writer.get_json(f"/record?token={token}").get("error"), 30,
                        "write() raises once the client is gone")
    assert "gone away" in record
    writer.assert_serving()
