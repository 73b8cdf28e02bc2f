"""WebSockets through nginx, configured as nginx's own documentation says
(HTTP/1.1 upstream, Upgrade and Connection passed on), over TCP and a
unix socket: the handshake, permessage-deflate agreed end to end, a
graceful stop that reaches the client as a 1001, and a reload (HUP) whose
1001 the client answers by reconnecting at once, to a new worker."""
import os
import sys
import textwrap

import pytest

from .test_nginx import NGINX, nginx_main_config, start_nginx

pytestmark = [
    pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+"),
    pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (apt-get install nginx)"),
]


def websocket_config(tcp_address, unix_path):
    def config_of(directory, port):
        routes = (("tcp", tcp_address), ("unix", f"unix:{unix_path}"))
        upstreams = "".join(f"""
            upstream ursa_{route} {{
                server {server};
            }}""" for route, server in routes)
        locations = "".join(textwrap.dedent(f"""
            location /{route}/ {{
                proxy_pass http://ursa_{route}/;
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
                proxy_set_header Host $host;
                proxy_read_timeout 300s;
            }}""") for route, _ in routes)
        return nginx_main_config(directory, None, f"""{upstreams}
            server {{
                listen 127.0.0.1:{port};
                {locations}
            }}""")
    return config_of


@pytest.fixture
def websocket_stack(procs, tmp_path):
    unix_path = tmp_path / "ursa.sock"
    ursa = procs.ursa("-b", "127.0.0.1:0", "-b", f"unix:{unix_path}", "-w", "2", "asgiapp:app")
    port, _ = start_nginx(procs, tmp_path, config_of=websocket_config(ursa.address[len("http://"):], unix_path))
    return port, ursa


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_echo_through_nginx_with_permessage_deflate(websocket_stack, route):
    from websockets.sync.client import connect
    port, ursa = websocket_stack
    text = "through nginx, compressed " * 100
    with connect(f"ws://127.0.0.1:{port}/{route}/ws", open_timeout=30, close_timeout=30) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert int(ws.recv(timeout=30)) in ursa.workers()
        for _ in range(3):
            ws.send(text)
            assert ws.recv(timeout=30) == text
        ws.send(b"\x00\xff" * 5000)
        assert ws.recv(timeout=30) == b"\x00\xff" * 5000


def test_a_graceful_stop_reaches_the_client_through_nginx_as_1001(websocket_stack):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    port, ursa = websocket_stack
    with connect(f"ws://127.0.0.1:{port}/tcp/ws", open_timeout=30, close_timeout=30) as ws:
        ws.recv(timeout=30)
        ws.send("before")
        assert ws.recv(timeout=30) == "before"
        ursa.signal(15)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert ursa.wait_exit() == 0


@pytest.mark.parametrize("route", ["tcp", "unix"])
def test_a_reload_closes_websockets_with_1001_and_the_client_reconnects_to_a_new_worker_at_once(
        websocket_stack, route):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    port, ursa = websocket_stack
    url = f"ws://127.0.0.1:{port}/{route}/ws"
    old_workers = ursa.wait_workers(2)
    with connect(url, open_timeout=30, close_timeout=30) as old:
        assert int(old.recv(timeout=30)) in old_workers
        ursa.signal(1)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                old.send("before the 1001")
                assert old.recv(timeout=60) == "before the 1001"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    # As a client reconnects on 1001: through nginx, at once, never a 502.
    with connect(url, open_timeout=30, close_timeout=30) as new:
        assert int(new.recv(timeout=30)) not in old_workers
        new.send("on the new code")
        assert new.recv(timeout=30) == "on the new code"
