"""WebSockets and worker recycling under the ursa command: --max-requests
counts a WebSocket as one request, and a worker that reaches it does not
cut its WebSockets short. They go on until --graceful-timeout (then 1001
and the close handshake) while a successor already serves new
connections; a stop asked for meanwhile closes them with 1001 at once."""
import sys

import pytest

from support import processes
from support.waiting import wait_until

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")


def websocket_to(server):
    from websockets.sync.client import connect
    host, port = server.address.removeprefix("http://").rsplit(":", 1)
    return connect(f"ws://{host}:{port}/ws", compression=None, open_timeout=30, close_timeout=30)


def retire_with_a_websocket_open(server, ws):
    """The WebSocket is the worker's first request; the GET is its second
    and last (it says Connection: close). Returns the worker's pid."""
    pid = int(ws.recv(timeout=30))
    status, headers, body = server.get("/pid")
    assert (status, int(body)) == (200, pid)
    assert headers.get("Connection") == "close"
    return pid


def close_code_heard(ws):
    from websockets.exceptions import ConnectionClosed
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=60)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_a_retiring_worker_keeps_its_websocket_while_a_successor_serves(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "2", "--graceful-timeout", "60",
                        "asgiapp:app")
    with websocket_to(server) as ws:
        retiring = retire_with_a_websocket_open(server, ws)
        ws.send("still here")
        assert ws.recv(timeout=30) == "still here"
        # New connections wait in the backlog for the successor the master
        # starts as soon as it sees the worker retire.
        successor = int(server.get("/pid")[2])
        assert successor != retiring
        assert processes.process_alive(retiring)
        ws.send("and now")
        assert ws.recv(timeout=30) == "and now"
        # Stopping the command: the WebSocket hears 1001 now, not after 60 s.
        server.signal(15)
        assert close_code_heard(ws) == 1001
    assert server.wait_exit() == 0


def test_a_retiring_workers_websocket_hears_1001_at_the_graceful_timeout(procs):
    server = procs.ursa("-b", "127.0.0.1:0", "-w", "1", "--max-requests", "2", "--graceful-timeout", "5",
                        "asgiapp:app")
    with websocket_to(server) as ws:
        retiring = retire_with_a_websocket_open(server, ws)
        ws.send("still here")
        assert ws.recv(timeout=30) == "still here"
        assert close_code_heard(ws) == 1001
    wait_until(lambda: not processes.process_alive(retiring), 30, "the retired worker exited")
    assert int(server.get("/pid")[2]) != retiring
    assert "did not stop in time" not in server.stderr()
    assert server.stop() == 0
