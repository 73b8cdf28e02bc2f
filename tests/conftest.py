"""Fixtures of the end-to-end tests (the harness itself is e2e_harness.py).

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

from e2e_harness import TESTS_DIR, ServerPool


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory, request):
    pool = ServerPool(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="module")
def server(module_servers):
    """The routing_app server shared by the tests of one module."""
    return module_servers.start(name="routing")


@pytest.fixture
def servers(tmp_path):
    pool = ServerPool(tmp_path)
    yield pool
    pool.stop_all()


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
