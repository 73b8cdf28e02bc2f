"""Fixtures of the end-to-end tests (the harness itself is support/servers.py).

  server          one routing_app server shared by a test module
  module_servers  a pool for other servers shared by a test module
  servers         a pool for servers of a single test
  apps_module     tests/apps.py imported in the test process (shared helpers)
  token           a name unique to the test, for records and log messages
"""
import importlib.util
import re
import time

import pytest

from support.servers import TESTS_DIR, ServerPool


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory, request):
    with ServerPool.for_module(tmp_path_factory, request) as pool:
        yield pool


@pytest.fixture(scope="module")
def server(module_servers):
    """The routing_app server shared by the tests of one module."""
    return module_servers.start(name="routing")


@pytest.fixture
def servers(tmp_path):
    with ServerPool(tmp_path) as pool:
        yield pool


@pytest.fixture(scope="session")
def apps_module():
    spec = importlib.util.spec_from_file_location("ursa_test_apps", TESTS_DIR / "apps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def token(request):
    """A name unique to the test, for the app's records and log messages."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{request.node.name}-{time.monotonic_ns()}")
