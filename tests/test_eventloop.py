"""ursa.eventloop: asyncio's API on the C event loop over libev, standalone
(a libev loop of its own) and entered by C code that runs ev_run itself, as
the server will (ursa._core._LoopProbe stands for it). No timing asserts:
waits are bounded only so that a broken loop fails instead of hanging."""
import asyncio
import contextvars
import gc
import os
import signal
import socket
import sys
import threading
import weakref

import pytest

import ursa.eventloop
from ursa import _core

OLD_PYTHON = sys.version_info < (3, 11)


@pytest.fixture(autouse=True)
def needs_python_3_11(request):
    if OLD_PYTHON and request.node.name != "test_older_pythons_are_refused":
        pytest.skip(ursa.eventloop.NEEDS_PYTHON)

LIMIT = 60  # seconds: a loop that never wakes fails the test rather than hanging it


def run(coro_fn):
    async def bounded():
        return await asyncio.wait_for(coro_fn(), LIMIT)

    with asyncio.Runner(loop_factory=ursa.eventloop.new_event_loop) as runner:
        return runner.run(bounded())


@pytest.fixture
def loop():
    loop = ursa.eventloop.new_event_loop()
    yield loop
    if not loop.is_closed():
        loop.close()


@pytest.mark.skipif(not OLD_PYTHON, reason="Python 3.11 or newer runs the event loop")
def test_older_pythons_are_refused():
    with pytest.raises(RuntimeError, match="needs Python 3.11 or newer"):
        ursa.eventloop.new_event_loop()
    with pytest.raises(RuntimeError, match="needs Python 3.11 or newer"):
        _core.LibevLoop()


def test_the_running_loop_is_ursas():
    async def main():
        return type(asyncio.get_running_loop())

    assert run(main) is ursa.eventloop.EventLoop


def test_debug_mode_is_what_set_debug_and_the_environment_say(loop, monkeypatch):
    # get_debug() is the C core's (every Future asks it): it must follow
    # set_debug() and asyncio's own switches as asyncio's does.
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    with asyncio.Runner(loop_factory=ursa.eventloop.new_event_loop) as runner:
        assert runner.get_loop().get_debug() is True
    with asyncio.Runner(loop_factory=ursa.eventloop.new_event_loop, debug=False) as runner:
        assert runner.get_loop().get_debug() is False


# ---- callbacks and timers ----

def test_call_soon_fifo_timers_in_order_and_cancellations():
    async def main():
        loop = asyncio.get_running_loop()
        out = []
        for i in range(5):
            loop.call_soon(out.append, i)
        handle = loop.call_soon(out.append, "cancelled")
        handle.cancel()
        loop.call_later(0.03, out.append, "t30")
        loop.call_later(0.01, out.append, "t10")
        loop.call_at(loop.time() + 0.02, out.append, "t20")
        timer = loop.call_later(0.015, out.append, "cancelled timer")
        timer.cancel()
        await asyncio.sleep(0)
        out.append("after sleep(0)")
        await asyncio.sleep(0.05)
        return out, handle.cancelled(), timer.cancelled()

    out, handle_cancelled, timer_cancelled = run(main)
    assert out == [0, 1, 2, 3, 4, "after sleep(0)", "t10", "t20", "t30"]
    assert handle_cancelled and timer_cancelled


def test_timers_never_run_early():
    async def main():
        loop = asyncio.get_running_loop()
        late = []
        done = loop.create_future()
        for i in range(50):
            when = loop.time() + 0.001 * (i % 7)
            loop.call_at(when, lambda when=when: late.append(loop.time() - when))
        loop.call_later(0.02, done.set_result, None)
        await done
        return late

    late = run(main)
    assert len(late) == 50
    assert min(late) >= 0


def test_sleep_zero_interleaves_tasks():
    async def main():
        out = []

        async def task(name):
            for i in range(3):
                out.append((name, i))
                await asyncio.sleep(0)

        await asyncio.gather(task("a"), task("b"))
        return out

    assert run(main) == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_a_thousand_callback_chain_and_context():
    var = contextvars.ContextVar("var", default="unset")

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        seen = []
        context = contextvars.copy_context()
        context.run(var.set, "in context")
        handle = loop.call_soon(lambda: seen.append(var.get()), context=context)
        assert handle.get_context() is context
        count = [0]

        def step():
            count[0] += 1
            if count[0] == 1000:
                done.set_result(count[0])
            else:
                loop.call_soon(step)

        loop.call_soon(step)
        return await done, seen, var.get()

    assert run(main) == (1000, ["in context"], "unset")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are Python 3.12's")
def test_eager_tasks_finish_without_a_loop_iteration():
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)

        async def answer():
            return 42

        task = asyncio.create_task(answer())
        return task.done() and task.result()

    assert run(main) == 42


def test_callbacks_take_any_number_of_arguments():
    async def main():
        loop = asyncio.get_running_loop()
        got = []
        loop.call_soon(lambda: got.append(()))
        loop.call_soon(lambda a: got.append((a,)), 1)
        loop.call_soon(lambda a, b, c: got.append((a, b, c)), 1, 2, 3)
        loop.call_later(0, lambda a, b: got.append((a, b)), 4, 5)
        await asyncio.sleep(0.001)
        return got

    assert run(main) == [(), (1,), (1, 2, 3), (4, 5)]


def test_handles_api_and_refusals(loop):
    timer = loop.call_at(loop.time() + 100, print)
    assert isinstance(timer, _core.TimerHandle) and isinstance(timer, _core.Handle)
    assert timer.when() > loop.time() + 99
    assert "TimerHandle" in repr(timer) and "print" in repr(timer)
    timer.cancel()
    assert timer.cancelled() and "cancelled" in repr(timer)
    handle = loop.call_soon(print, "x")
    assert handle._source_traceback is None and not handle.cancelled()
    with pytest.raises(TypeError, match="callable"):
        loop.call_soon(42)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        loop.call_soon(print, bogus=1)
    with pytest.raises(TypeError):
        loop.call_later(None, print)
    with pytest.raises(TypeError, match="event loop makes them"):
        _core.Handle()


def test_exceptions_go_to_the_exception_handler():
    async def main():
        loop = asyncio.get_running_loop()
        caught = []
        loop.set_exception_handler(lambda loop, context: caught.append(context))

        def boom():
            raise ValueError("boom")

        loop.call_soon(boom)
        loop.call_later(0.001, boom)
        await asyncio.sleep(0.02)
        return caught

    caught = run(main)
    assert [type(c["exception"]) for c in caught] == [ValueError, ValueError]
    assert all("Exception in callback" in c["message"] and "handle" in c for c in caught)


def test_keyboard_interrupt_leaves_run_forever_and_the_loop_runs_again(loop):
    def interrupt():
        raise KeyboardInterrupt

    out = []
    loop.call_soon(interrupt)
    loop.call_soon(out.append, "after")  # not run: the interrupt ends the run first
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running() and out == []
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["after"]
    assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"


def test_system_exit_from_a_task_leaves_run_until_complete(loop):
    async def main():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        loop.run_until_complete(main())


def test_stop_before_run_runs_what_is_ready_once(loop):
    out = []
    loop.call_soon(out.append, 1)
    loop.stop()
    loop.run_forever()
    assert out == [1]
    assert not loop.is_running()


# ---- sockets, transports, processes, threads, signals ----

def test_start_server_and_open_connection_echo_four_mebibytes():
    async def main():
        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        payload = os.urandom(4 * 1024 * 1024)  # past the socket buffers: drain() waits

        async def send():
            writer.write(payload)
            await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        got = await reader.read(-1)
        await sender
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got == payload

    assert run(main)


def test_udp_datagrams_and_sock_methods():
    async def main():
        loop = asyncio.get_running_loop()
        received = loop.create_future()

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                received.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                        remote_addr=transport.get_extra_info("sockname"))
        sender.sendto(b"ping")
        datagram = await received
        sender.close()
        transport.close()
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            # past the socket buffers: sock_sendall() waits for the reader
            sending = asyncio.create_task(loop.sock_sendall(a, b"hello" * 100000))
            got = b""
            while len(got) < 500000:
                got += await loop.sock_recv(b, 65536)
            await sending
        return datagram, got == b"hello" * 100000

    assert run(main) == (b"ping", True)


def test_create_subprocess_exec():
    async def main():
        cat = await asyncio.create_subprocess_exec("cat", stdin=asyncio.subprocess.PIPE,
                                                   stdout=asyncio.subprocess.PIPE)
        out, _ = await cat.communicate(b"x" * 100000)
        exits = await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.exit(3)")
        return len(out), cat.returncode, await exits.wait()

    assert run(main) == (100000, 0, 3)


def test_executor_to_thread_and_call_soon_threadsafe_while_the_loop_waits():
    async def main():
        loop = asyncio.get_running_loop()
        total = await loop.run_in_executor(None, sum, range(1000))
        woken = loop.create_future()
        waiting = threading.Event()

        def worker():
            waiting.wait()
            loop.call_soon_threadsafe(woken.set_result, threading.get_ident())

        thread = threading.Thread(target=worker)
        thread.start()
        # The worker goes once the loop is about to block in its poll with
        # nothing else pending: only the self-pipe can wake it.
        loop.call_soon(waiting.set)
        worker_id = await woken
        thread.join()
        return total, worker_id != threading.get_ident(), await asyncio.to_thread(lambda: 42)

    assert run(main) == (499500, True, 42)


def test_add_signal_handler():
    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "usr1")
        # sent from another thread while the loop sleeps in its poll
        thread = threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGUSR1))
        loop.call_soon(thread.start)
        result = await got
        thread.join()
        loop.remove_signal_handler(signal.SIGUSR1)
        return result

    assert run(main) == "usr1"


def test_httpx_async_client_against_a_server_on_the_same_loop():
    httpx = pytest.importorskip("httpx")

    async def main():
        async def serve(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    body = b'{"ok": true, "n": %d}' % len(head)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            responses = await asyncio.gather(*(client.get(f"/x/{i}") for i in range(20)))
            again = await client.get("/again")  # a kept-alive connection
        server.close()
        await server.wait_closed()
        return [r.status_code for r in responses], again.json()["ok"]

    assert run(main) == ([200] * 20, True)


# ---- waiting: no polling, the GIL let go ----

def test_no_wake_ups_while_idle():
    async def main():
        loop = asyncio.get_running_loop()
        accepted = []
        server = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        await asyncio.sleep(0.01)
        before = loop._libev.polls
        await asyncio.sleep(0.3)
        polls = loop._libev.polls - before
        for each in [writer, *accepted]:
            each.close()
            await each.wait_closed()
        server.close()
        await server.wait_closed()
        return polls

    # the wait itself, and the wake-up for the timer that ends it
    assert run(main) <= 3


def test_another_thread_gets_the_gil_while_the_loop_waits():
    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        start = threading.Event()

        def spin():
            start.wait()
            count = 0
            for _ in range(200000):  # Python code: it needs the GIL all along
                count += 1
            loop.call_soon_threadsafe(done.set_result, count)

        thread = threading.Thread(target=spin)
        thread.start()
        loop.call_soon(start.set)
        before = loop._libev.polls
        count = await done  # a loop that held the GIL in its poll would wait forever
        polls = loop._libev.polls - before
        thread.join()
        return count, polls

    count, polls = run(main)
    assert count == 200000
    assert polls <= 4  # it slept through the spinning, not woke to share the GIL


# ---- one ev_loop shared with C watchers, and run by C code ----

def test_a_c_watcher_on_the_same_ev_loop_queues_callbacks(loop):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        got = []
        done = loop.create_future()

        def received(data):
            got.append(data)
            if data == b"":
                done.set_result(None)

        probe = _core._LoopProbe(loop, a.fileno(), received)
        loop.call_soon(b.sendall, b"one")
        loop.call_later(0.01, b.shutdown, socket.SHUT_WR)
        loop.run_until_complete(done)
        del probe
    assert b"".join(got) == b"one" and got[-1] == b""


def test_c_code_runs_the_loop_entered(loop):
    """event_loop_enter(); ev_run by someone else; event_loop_exit(): tasks,
    timers and io run; stop() is refused; the loop runs itself afterwards."""
    a, b = socket.socketpair()
    seen = {}

    async def app():
        running = asyncio.get_running_loop()
        seen["running"] = running is loop and running.is_running()
        await asyncio.sleep(0.001)
        try:
            running.stop()
        except RuntimeError as error:
            seen["stop"] = str(error)
        nested = asyncio.sleep(0)
        try:
            running.run_until_complete(nested)
        except RuntimeError as error:
            seen["nested"] = str(error)
        nested.close()
        reader, writer = await asyncio.open_connection(sock=b)
        writer.write(b"ping")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    def received(data):
        if data:
            seen["c watcher"] = data
            loop.call_soon(probe.end_serving)

    with a:
        a.setblocking(False)
        probe = _core._LoopProbe(loop, a.fileno(), received)
        task = loop.create_task(app())
        assert probe.serve() is None
        del probe
    assert task.done() and task.result() is None
    assert seen["running"] and seen["c watcher"] == b"ping"
    assert "ursa's server runs this event loop" in seen["stop"]
    assert "already running" in seen["nested"]
    assert not loop.is_running() and asyncio._get_running_loop() is None
    assert loop.run_until_complete(asyncio.sleep(0, "after")) == "after"


def test_a_stop_from_before_does_not_end_the_callers_run(loop):
    a, b = socket.socketpair()
    with a, b:
        probe = _core._LoopProbe(loop, a.fileno(), lambda data: probe.end_serving())
        loop.stop()
        polls = loop._libev.polls
        loop.call_later(0.05, b.send, b"x")
        assert probe.serve() is None
        del probe
    # it slept in the poll until the timer and the byte came: it did not spin
    assert loop._libev.polls - polls <= 4


def test_keyboard_interrupt_while_entered_goes_to_the_on_fatal_handler(loop):
    a, b = socket.socketpair()
    with a, b:
        probe = _core._LoopProbe(loop, a.fileno(), lambda data: None)

        def interrupt():
            raise KeyboardInterrupt

        loop.call_soon(interrupt)
        fatal = probe.serve()
        del probe
    assert isinstance(fatal, KeyboardInterrupt)
    assert not loop.is_running()


# ---- closing ----

def test_close_stops_every_watcher_and_drops_every_reference():
    loop = ursa.eventloop.new_event_loop()
    libev = loop._libev

    class Token:
        pass

    token = Token()
    gone = weakref.ref(token)
    a, b = socket.socketpair()

    async def main():
        server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
        loop.add_reader(a.fileno(), print)
        loop.call_later(100, print, token)
        loop.call_at(loop.time() + 200, print)
        return server

    server = loop.run_until_complete(main())
    loop.call_soon(print, token)
    assert libev._active_watchers() > 0
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)
    assert libev._active_watchers() == 0
    # the ev_loop is its owner's again: another event loop runs on it
    again = ursa.eventloop.EventLoop(libev)
    assert again.run_until_complete(asyncio.sleep(0.001, "again")) == "again"
    again.close()
    assert libev._active_watchers() == 0
    del token
    gc.collect()
    assert gone() is None
    server.close()
    a.close()
    b.close()


def test_a_loop_dropped_unclosed_is_closed(recwarn):
    loop = ursa.eventloop.new_event_loop()
    loop.call_later(100, print)
    libev = loop._libev
    del loop
    gc.collect()
    assert libev._active_watchers() == 0


def test_policy_makes_ursas_loops():
    policy = ursa.eventloop.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, ursa.eventloop.EventLoop)
    finally:
        loop.close()
