"""Fixtures of the deployment tests.

  procs       a ProcessPool for the test: every process it starts is killed
              (with its process group) at teardown
  shared_dir  a folder of root's (0755) that every local user can reach,
              for what a worker user, nginx's www-data or a stranger must
              find (pytest's own tmp_path is root's alone: 0700)
"""
import os
import pathlib
import shutil
import tempfile

import pytest

from .harness import ProcessPool


@pytest.fixture
def procs(tmp_path):
    with ProcessPool(tmp_path) as pool:
        yield pool


@pytest.fixture
def shared_dir():
    path = pathlib.Path(tempfile.mkdtemp(prefix="ursa-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
