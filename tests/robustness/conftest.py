"""Fixtures of the robustness tests (slow, hostile and broken clients).

  hostile         a hostile_server.py shared by a test module, default options
  hostile_pool    a pool for servers of a single test (custom options)

Markers: ``heavy`` for the load tests (500 slowloris clients, 10,000
connections); they run in CI but can be left out with ``-m "not heavy"``.
``slow`` for the runs with the default (long) timeouts.
"""
import pytest

from .harness import HostilePool


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: load test with hundreds or thousands of connections")
    config.addinivalue_line("markers", "slow: waits out the default timeouts (about 15 s)")


@pytest.fixture(scope="module")
def module_pool(tmp_path_factory, request):
    with HostilePool.for_module(tmp_path_factory, request) as pool:
        yield pool


@pytest.fixture(scope="module")
def hostile(module_pool):
    """A server with the default limits, shared by the tests of one module."""
    return module_pool.start(name="defaults")


@pytest.fixture
def hostile_pool(tmp_path):
    with HostilePool(tmp_path) as pool:
        yield pool
