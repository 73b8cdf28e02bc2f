"""No reference, memory, task or descriptor leaks through the ASGI paths:
20,000 requests each (300 for bodies kept in a file) leave the server's
Python object count, allocated blocks, RSS, asyncio tasks and open file
descriptors flat. See test_leaks.py for the WSGI side and the method."""
import sys
from urllib.parse import quote

import pytest

from support.processes import RSS_IS_MEANINGFUL
from support.rawhttp import build_request

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")

REQUESTS_PER_PATH = 20_000
WARM_UP_REQUESTS = 2_000
SPILLED_BODY_REQUESTS = 300
DISCONNECTS = 2_000
MAX_OBJECT_GROWTH = 1_000
MAX_BLOCK_GROWTH = 2_000
MAX_RSS_GROWTH_MIB = 4


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="asgi-leaks", app="asgi_apps:routing")


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("asgi-leaks") / "small.bin"
    path.write_bytes(b"f" * 4096)
    return path


def run_path(server, path, count, small_file):
    if path == "disconnect":
        server.reset_mid_response("/endless", count)
        return
    requests_by_path = {
        "normal": (build_request("GET", "/ping"), 200),
        "connection-per-request": (build_request("GET", "/ping", [("Connection", "close")]), 200),
        "post-body": (build_request("POST", "/echo", body=b"b" * 3000), 200),
        # A small answer: an echo of each pipelined body would fill the
        # socket both ways while the client still sends.
        "spilled-body": (build_request("POST", "/size", body=b"s" * ((1 << 20) + 100_000)), 200),
        "chunked-post": (build_request("POST", "/echo", [("Transfer-Encoding", "chunked")])
                         + b"5\r\nhello\r\n0\r\n\r\n", 200),
        "streamed": (build_request("GET", "/stream?parts=3&delay=0"), 200),
        "error": (build_request("GET", "/raise-before-start"), 500),
        "pathsend": (build_request("GET", f"/pathsend?path={quote(str(small_file))}"), 200),
    }
    request, status = requests_by_path[path]
    assert server.drive(request, count) == {status: count}


PATHS = ["normal", "connection-per-request", "post-body", "spilled-body", "chunked-post", "streamed", "error",
         "pathsend", "disconnect"]


def stats(server):
    return server.get_json("/stats")


@pytest.mark.parametrize("path", PATHS)
def test_requests_leave_no_objects_and_no_memory_behind(server, small_file, path):
    count = {"spilled-body": SPILLED_BODY_REQUESTS, "disconnect": DISCONNECTS}.get(path, REQUESTS_PER_PATH)
    run_path(server, path, min(WARM_UP_REQUESTS, count), small_file)
    stats(server)
    before = stats(server)
    run_path(server, path, count, small_file)
    after = stats(server)
    growth = {key: after[key] - before[key] for key in ("objects", "allocated_blocks", "rss_kib", "open_fds", "tasks")}
    print(f"\n[figure] ASGI {path}: {count} requests: objects {before['objects']} -> {after['objects']} "
          f"({growth['objects']:+d}), allocated blocks {growth['allocated_blocks']:+d}, "
          f"RSS {before['rss_kib'] / 1024:.1f} -> {after['rss_kib'] / 1024:.1f} MiB, "
          f"open fds {before['open_fds']} -> {after['open_fds']}, tasks {before['tasks']} -> {after['tasks']}")
    assert growth["open_fds"] <= 0, growth
    assert growth["tasks"] <= 0, growth
    assert growth["objects"] < MAX_OBJECT_GROWTH, growth
    assert growth["allocated_blocks"] < MAX_BLOCK_GROWTH, growth
    if RSS_IS_MEANINGFUL:
        assert growth["rss_kib"] < MAX_RSS_GROWTH_MIB * 1024, growth
