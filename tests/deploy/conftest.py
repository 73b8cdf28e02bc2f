"""Fixtures of the deployment tests.

  procs    a ProcessPool for the test: every process it starts is killed
           (with its process group) at teardown
"""
import pytest

from .harness import ProcessPool


@pytest.fixture
def procs(tmp_path):
    pool = ProcessPool(tmp_path)
    yield pool
    pool.kill_all()
