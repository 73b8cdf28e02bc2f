"""bjoern 4.x deployments name its gunicorn worker ursa.gworker.BjoernWorker
after the switch: only the package name changes."""
from .test_gunicorn_worker import start_gunicorn


def test_bjoern_worker_path_serves_with_ursa(procs, tmp_path):
    server, _ = start_gunicorn(procs, tmp_path, "-k", "ursa.gworker.BjoernWorker", "-w", "1", "-b", "127.0.0.1:0")
    assert "Using worker: ursa.gworker.BjoernWorker" in server.stderr()
    status, headers, body = server.get("/")
    assert (status, body, headers.get("Server")) == (200, b"hello", "ursa")
