"""No reference, memory or descriptor leaks: 20,000 requests through each
path (300 for bodies that spill to a file) leave the server's Python object
count, allocated memory blocks, RSS and open file descriptors flat.

gc.get_objects() counts container objects (a leaked environ, generator or
iterable shows there); sys.getallocatedblocks() counts every live
allocation of Python's allocator (a leaked bytes or str shows there).
"""
from urllib.parse import quote

import pytest

from support.processes import RSS_IS_MEANINGFUL
from support.rawhttp import build_request

REQUESTS_PER_PATH = 20_000
WARM_UP_REQUESTS = 2_000
# Bodies over 1 MiB go to a temporary file; 300 of them (330 MiB) are enough
# to show a leaked file or buffer and keep the test short.
SPILLED_BODY_REQUESTS = 300
# Slack for caches that settle after warm-up: one leaked object per request
# would add 20,000.
MAX_OBJECT_GROWTH = 1_000
MAX_BLOCK_GROWTH = 2_000
MAX_RSS_GROWTH_MIB = 4  # a leak of 256 bytes per request would add 5 MiB


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("leaks") / "small.bin"
    path.write_bytes(b"f" * 4096)
    return path


def stats(server):
    return server.get_json("/stats")


def run_path(server, path, count, small_file):
    if path == "disconnect":
        server.reset_mid_response("/stream?token=leak-disconnect", count)
        return
    requests_by_path = {
        "normal": (build_request("GET", "/ping"), 200),
        "post-body": (build_request("POST", "/echo", body=b"b" * 3000), 200),
        "spilled-body": (build_request("POST", "/hash", body=b"s" * ((1 << 20) + 100_000)), 200),
        "chunked-post": (build_request("POST", "/echo", [("Transfer-Encoding", "chunked")])
                         + b"5\r\nhello\r\n0\r\n\r\n", 200),
        "connection-per-request": (build_request("GET", "/ping", [("Connection", "close")]), 200),
        "error": (build_request("GET", "/error?kind=before-start-response&token=leak"), 500),
        "file-wrapper": (build_request("GET", f"/file?kind=file&path={quote(str(small_file))}&token=leak-file"), 200),
        "generator": (build_request("GET", "/iter?kind=generator"), 200),
        "custom-iterable": (build_request("GET", "/iter?kind=custom&token=leak-custom"), 200),
    }
    request, status = requests_by_path[path]
    assert server.drive(request, count) == {status: count}


PATHS = ["normal", "connection-per-request", "post-body", "spilled-body", "chunked-post", "error", "file-wrapper", "generator",
         "custom-iterable", "disconnect"]


@pytest.mark.parametrize("path", PATHS)
def test_requests_leave_no_objects_and_no_memory_behind(server, small_file, path):
    count = SPILLED_BODY_REQUESTS if path == "spilled-body" else REQUESTS_PER_PATH
    run_path(server, path, min(WARM_UP_REQUESTS, count), small_file)
    stats(server)
    before = stats(server)
    run_path(server, path, count, small_file)
    after = stats(server)
    growth = {key: after[key] - before[key] for key in ("objects", "allocated_blocks", "rss_kib", "open_fds")}
    print(f"\n[figure] {path}: {count} requests: objects {before['objects']} -> {after['objects']} "
          f"({growth['objects']:+d}), allocated blocks {growth['allocated_blocks']:+d}, "
          f"RSS {before['rss_kib'] / 1024:.1f} -> {after['rss_kib'] / 1024:.1f} MiB, "
          f"open fds {before['open_fds']} -> {after['open_fds']}")
    assert growth["open_fds"] <= 0, growth
    assert growth["objects"] < MAX_OBJECT_GROWTH, growth
    assert growth["allocated_blocks"] < MAX_BLOCK_GROWTH, growth
    if RSS_IS_MEANINGFUL:
        assert growth["rss_kib"] < MAX_RSS_GROWTH_MIB * 1024, growth
