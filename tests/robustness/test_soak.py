"""scripts/soak.py as a test: 200,000 keep-alive requests for each of its
apps (a GET app, and a POST app with bodies of several sizes, some chunked)
leave the server's RSS within 5 MiB of where it was after the warm-up.
It takes a few seconds; under ASan the memory bound is not checked."""
import pathlib
import subprocess
import sys

from support.processes import SANITIZED

SOAK = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def test_soak_of_200k_requests_per_app_keeps_the_server_rss_flat():
    command = [sys.executable, str(SOAK)]
    if SANITIZED:
        command += ["--max-growth-kib", str(1 << 30), "--requests", "50000"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    print("\n" + result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
