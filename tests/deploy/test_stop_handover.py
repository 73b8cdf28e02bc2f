"""A graceful stop must not drop connections the stopping server accepted.

When a worker retires (HUP, --max-requests, TERM of one worker), other
processes keep the listening socket open, so connections still waiting in
the backlog are served by the next worker. A connection the stopping
worker already accepted is its responsibility: its first request, already
sent by the client, must be answered, not closed unanswered.
"""
import signal
import socket
import threading

from support.processes import STOP_TIMEOUT
from support.waiting import wait_until

from .harness import APPS_DIR, PYTHON, request

SERVE_INHERITED_SOCKET = """
import socket, sys
import ursa
import deployapp
ursa.serve([socket.socket(fileno=int(sys.argv[1]))], deployapp.app, max_requests=int(sys.argv[2]))
"""


def start_server(procs, listener, marker_dir, name, max_requests=0):
    fd = listener.fileno()
    return procs.start([PYTHON, "-c", SERVE_INHERITED_SOCKET, fd, max_requests], cwd=APPS_DIR, name=name,
                       pass_fds=(fd,), env={"DEPLOYAPP_MARKER_DIR": str(marker_dir), "PYTHONPATH": str(APPS_DIR)})


def read_reply(sock):
    """Bytes the server sent on `sock` until it closed or a body arrived."""
    reply = b""
    try:
        while b"hello" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except ConnectionResetError:
        pass
    return reply


def test_connection_accepted_just_before_stop_gets_its_response(procs, tmp_path):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    address = "http://127.0.0.1:%d" % listener.getsockname()[1]
    first = start_server(procs, listener, marker_dir, "first")

    # Occupy the single-threaded loop, so the next connection and the stop
    # signal are both pending when it next looks at its events.
    slow = []
    thread = threading.Thread(target=lambda: slow.append(request(address, path="/slow?1")), daemon=True)
    thread.start()
    wait_until(lambda: list(marker_dir.iterdir()), STOP_TIMEOUT, "the slow request is in the app")
    waiting = socket.create_connection(listener.getsockname(), timeout=STOP_TIMEOUT)
    waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first.popen.send_signal(signal.SIGTERM)
    thread.join(STOP_TIMEOUT)
    assert slow and slow[0][0] == 200
    assert first.popen.wait(STOP_TIMEOUT) == 0

    # Whatever the first server did not accept, the next one serves.
    start_server(procs, listener, marker_dir, "second")
    reply = read_reply(waiting)
    assert reply.startswith(b"HTTP/1.1 200 "), f"the accepted request got {reply!r}"
    waiting.close()
    listener.close()


def test_max_requests_answers_every_connection_it_accepted(procs, tmp_path):
    """Two connections wait while the loop is busy; the server accepts both
    in one go, and the first answer reaches max_requests. The other one was
    accepted too: it must be answered, not closed with its request unread."""
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    address = "http://127.0.0.1:%d" % listener.getsockname()[1]
    first = start_server(procs, listener, marker_dir, "first", max_requests=2)
    slow = []
    thread = threading.Thread(target=lambda: slow.append(request(address, path="/slow?1")), daemon=True)
    thread.start()
    wait_until(lambda: list(marker_dir.iterdir()), STOP_TIMEOUT, "the slow request is in the app")
    waiting = [socket.create_connection(listener.getsockname(), timeout=STOP_TIMEOUT) for _ in range(2)]
    for sock in waiting:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    thread.join(STOP_TIMEOUT)
    assert slow and slow[0][0] == 200
    assert first.popen.wait(STOP_TIMEOUT) == 0

    start_server(procs, listener, marker_dir, "second")
    replies = [read_reply(sock) for sock in waiting]
    for sock in waiting:
        sock.close()
    listener.close()
    assert [reply[:13] for reply in replies] == [b"HTTP/1.1 200 "] * 2, replies
