"""nginx with upstream keep-alive in front of one ursa worker that is busy in
the app for longer than keepalive_timeout: a request nginx sends meanwhile
on an idle upstream connection is answered, not reset (which nginx turns
into a 502 for a POST and a retry for a GET)."""
import http.client
import threading

import pytest

from support.processes import STOP_TIMEOUT, free_port
from support.waiting import wait_until

from .test_nginx import NGINX, nginx_config, pytestmark  # noqa: F401  (skipped without nginx)

KEEPALIVE = 2
SLOW = 3.5


def start_nginx(procs, directory, ursa_address, unix_path):
    directory.mkdir()
    port = free_port()
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, port, ursa_address, unix_path))
    nginx = procs.start([NGINX, "-p", directory, "-c", config, "-e", directory / "error.log", "-g", "daemon off;"],
                        name="nginx")

    def listening():
        if nginx.popen.poll() is not None:
            pytest.fail(f"nginx exited:\n{(directory / 'error.log').read_text()}")
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return True
        except OSError:
            return False
    wait_until(listening, STOP_TIMEOUT, f"nginx listens on {port}")
    return port


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STOP_TIMEOUT * 2)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_post_on_an_idle_upstream_connection_while_the_worker_is_busy_is_answered(procs, tmp_path, route):
    markers = tmp_path / "markers"
    markers.mkdir()
    unix_path = tmp_path / "ursa.sock"
    ursa = procs.ursa("-b", "127.0.0.1:0", "-b", f"unix:{unix_path}", "-w", "1", "--keepalive-timeout",
                      str(KEEPALIVE), "deployapp:app", env={"DEPLOYAPP_MARKER_DIR": str(markers)})
    port = start_nginx(procs, tmp_path / "nginx", ursa.address[len("http://"):], unix_path)

    # Two requests at once: nginx opens two upstream connections and keeps
    # both idle afterwards.
    warm = [threading.Thread(target=request, args=(port, "GET", f"/{route}/slow?0.3")) for _ in range(2)]
    for thread in warm:
        thread.start()
    for thread in warm:
        thread.join()
    wait_until(lambda: len(list(markers.iterdir())) == 2, STOP_TIMEOUT, "both warm-up requests ran")

    slow = []
    busy = threading.Thread(target=lambda: slow.append(request(port, "GET", f"/{route}/slow?{SLOW}")))
    busy.start()
    wait_until(lambda: len(list(markers.iterdir())) == 3, STOP_TIMEOUT, "the slow request is in the app")
    # nginx sends this on the other idle upstream connection, which then
    # waits in the kernel for longer than keepalive_timeout.
    status, body = request(port, "POST", f"/{route}/echo", body=b"posted while the worker was busy")
    busy.join()
    assert (status, body) == (200, b"posted while the worker was busy")
    assert slow == [(200, b"slow done")]
