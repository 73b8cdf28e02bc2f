"""The WebSocket load generator of bench/compare.py: picows clients on uvloop, in a process of their own.

    python bench/websocket_load.py --port N --path /echo --pattern echo --clients 16 --size 64 --commands-fd FD

The harness starts it pinned to the client core (websocket_client.py does);
it opens --clients upgraded connections to 127.0.0.1:N--path, prints one
JSON line ({"connected": n}, or {"error": ...} and exits 1), then reads
commands, one a line, from descriptor FD and answers each with one JSON
line on stdout:

    for SECONDS   load for that long: no message is sent after it, the ones
                  in flight are waited for and counted
    count N       load until N messages, exactly, have been sent and answered
    quit          close every connection (a close frame, the server's answer
                  awaited), print {"closed": n} and exit; so does end of input

A command's answer: {"messages", "duration_us" (first send to last message
in), "p50_us" and "p99_us" (of the latencies below), "errors": {"closed":
connections that went away meanwhile, "wrong": messages that were not what
was sent}, "client_cpu_us" (this process's CPU time over the phase: near
the duration means the clients, not the server, set the pace)}. Between
commands nothing is sent, so the server is idle while the harness reads
its CPU time.

Patterns, and what one message is:
- echo: each client keeps exactly one --size byte binary message in flight,
  sending the next from the callback that received the echo of the last;
  a message is a round trip, its latency from send to echo.
- broadcast: client 0 sends a trigger of --size bytes; the server sends it
  to every client (client 0 too); when all --clients have it client 0 sends
  the next, so one broadcast is in flight. A message is one delivery: a
  broadcast counts --clients messages; its latency is from the trigger's
  send to the last delivery. "count N" sends ceil(N / --clients) triggers.
- idle: each client, once connected, echoes one message (so the server has
  read and written on it, as a connection that has been used), then nothing
  until quit; "for" and "count" are refused.

Why picows on uvloop: its framing is compiled, and a client that answers in
the receiving callback (no task, no future per message) keeps up with a
server on the other core; a slower client would measure itself.
"""
import argparse
import asyncio
import json
import os
import sys
import time

import uvloop
from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

HOST = "127.0.0.1"
# Connections opened at once: the server's listen backlog and the client's
# handshakes in flight stay small.
CONNECT_BATCH = 100
HANDSHAKE_TIMEOUT = 30.0
# How long a connection waits for the server's answer to its close frame at quit.
CLOSE_TIMEOUT = 5.0


class Phase:
    """One command's run: when it stops sending, and what it counted."""

    def __init__(self, loop, sends=None, seconds=None):
        self.sends_left = sends  # messages (echo) or triggers (broadcast) still to send; None: until the deadline
        self.deadline_ns = None if seconds is None else time.perf_counter_ns() + int(seconds * 1e9)
        self.messages = 0
        self.latencies_ns = []
        self.errors = {"closed": 0, "wrong": 0}
        self.first_send_ns = None
        self.last_message_ns = None
        self.in_flight = 0  # senders whose message is not yet answered
        self.done = loop.create_future()

    def may_send(self, now_ns):
        """Whether one more message (or trigger) is sent; counts it if so."""
        if self.sends_left is not None:
            if self.sends_left <= 0:
                return False
            self.sends_left -= 1
        elif now_ns >= self.deadline_ns:
            return False
        if self.first_send_ns is None:
            self.first_send_ns = now_ns
        return True

    def sender_stopped(self):
        self.in_flight -= 1
        if self.in_flight == 0 and not self.done.done():
            self.done.set_result(None)

    def answer(self):
        latencies = sorted(self.latencies_ns)

        def percentile(share):
            return latencies[min(len(latencies) - 1, int(len(latencies) * share))] / 1000 if latencies else 0.0

        start, end = self.first_send_ns, self.last_message_ns
        return {"messages": self.messages, "duration_us": (end - start) / 1000 if start and end else 0.0,
                "p50_us": percentile(0.5), "p99_us": percentile(0.99), "errors": self.errors}


class Client(WSListener):
    """One connection; the pattern tells it what to do with a message."""

    def __init__(self, generator, index):
        self.generator = generator
        self.index = index
        self.transport = None
        self.sent_ns = None  # when its message in flight (echo) was sent
        self.closed = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_frame(self, transport, frame):
        kind = frame.msg_type
        if kind == WSMsgType.BINARY or kind == WSMsgType.TEXT or kind == WSMsgType.CONTINUATION:
            self.generator.on_message(self, frame.get_payload_as_bytes() if frame.fin else None)
        elif kind == WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport):
        if not self.closed.done():
            self.closed.set_result(None)
        self.generator.on_closed(self)


class Generator:
    """The clients of one run and the phase they are in; subclasses are the patterns."""

    def __init__(self, size):
        self.payload = b"m" * size
        self.clients = []
        self.phase = None
        self.quitting = False

    def connected(self):
        """Called once every client is connected, before the first command."""

    def start(self, phase):
        raise NotImplementedError

    def on_message(self, client, payload):
        raise NotImplementedError

    def on_closed(self, client):
        if self.quitting or self.phase is None:
            return
        self.phase.errors["closed"] += 1
        self.client_lost(client)

    def client_lost(self, client):
        """A client went away during a phase: what it was waiting for will not come."""


class Echo(Generator):
    def start(self, phase):
        now = time.perf_counter_ns()
        for client in self.clients:
            if not client.closed.done() and phase.may_send(now):
                phase.in_flight += 1
                self._send(client, now)
        if phase.in_flight == 0:
            phase.done.set_result(None)

    def _send(self, client, now):
        client.sent_ns = now
        client.transport.send(WSMsgType.BINARY, self.payload)

    def on_message(self, client, payload):
        now = time.perf_counter_ns()
        phase = self.phase
        sent, client.sent_ns = client.sent_ns, None
        if phase is None or sent is None:
            return  # the idle pattern's one echo, or one that came after its client was written off
        phase.messages += 1
        phase.last_message_ns = now
        phase.latencies_ns.append(now - sent)
        if payload != self.payload:
            phase.errors["wrong"] += 1
        if phase.may_send(now):
            self._send(client, now)
        else:
            phase.sender_stopped()

    def client_lost(self, client):
        if client.sent_ns is not None:
            client.sent_ns = None
            self.phase.sender_stopped()


class Broadcast(Generator):
    def __init__(self, size):
        super().__init__(size)
        self.sequence = 0
        self.trigger = None
        self.trigger_ns = 0
        self.waiting = set()  # the clients the current broadcast has not reached

    def start(self, phase):
        phase.in_flight = 1  # the trigger sender
        self._trigger(phase, time.perf_counter_ns())

    def _trigger(self, phase, now):
        if self.clients[0].closed.done() or not phase.may_send(now):
            phase.sender_stopped()
            return
        self.sequence += 1
        # Numbered, so a late or repeated delivery reads as wrong.
        self.trigger = self.sequence.to_bytes(8, "big") + self.payload[8:]
        self.waiting = {client for client in self.clients if not client.closed.done()}
        self.trigger_ns = now
        self.clients[0].transport.send(WSMsgType.BINARY, self.trigger)

    def on_message(self, client, payload):
        now = time.perf_counter_ns()
        phase = self.phase
        if phase is None:
            return
        phase.messages += 1
        phase.last_message_ns = now
        if payload != self.trigger or client not in self.waiting:
            phase.errors["wrong"] += 1
            return
        self.waiting.discard(client)
        if not self.waiting:
            phase.latencies_ns.append(now - self.trigger_ns)
            self._trigger(phase, now)

    def client_lost(self, client):
        if client in self.waiting:
            self.waiting.discard(client)
            if not self.waiting:
                self._trigger(self.phase, time.perf_counter_ns())


class Idle(Echo):
    """Echo's clients, each sending one message once connected and nothing after."""

    async def echo_once(self):
        loop = asyncio.get_running_loop()
        for first in range(0, len(self.clients), CONNECT_BATCH):
            batch = self.clients[first:first + CONNECT_BATCH]
            phase = Phase(loop, sends=len(batch))
            self.phase = phase
            now = time.perf_counter_ns()
            for client in batch:
                phase.may_send(now)
                phase.in_flight += 1
                self._send(client, now)
            # The batch's sends used up the phase's: each client stops at its echo.
            await phase.done
            self.phase = None
            if phase.messages != len(batch) or phase.errors["wrong"] or phase.errors["closed"]:
                raise ConnectionError(f"idle connections' first echo: {phase.answer()}")


PATTERNS = {"echo": Echo, "broadcast": Broadcast, "idle": Idle}


def emit(answer):
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


async def connect_all(generator, url, count):
    async def connect(index):
        _, client = await ws_connect(lambda: Client(generator, index), url, use_aiofastnet=False,
                                     enable_auto_ping=False, websocket_handshake_timeout=HANDSHAKE_TIMEOUT,
                                     read_buffer_init_size=4096, max_redirects=0)
        return client

    for first in range(0, count, CONNECT_BATCH):
        generator.clients += await asyncio.gather(*(connect(index)
                                                    for index in range(first, min(count, first + CONNECT_BATCH))))


async def close_all(generator):
    generator.quitting = True
    for client in generator.clients:
        if not client.closed.done():
            client.transport.send_close(WSCloseCode.OK)
    waits = [client.closed for client in generator.clients]
    if waits:
        await asyncio.wait(waits, timeout=CLOSE_TIMEOUT)
    for client in generator.clients:
        client.transport.disconnect()
    return sum(1 for client in generator.clients if client.closed.done())


async def run(options):
    loop = asyncio.get_running_loop()
    generator = PATTERNS[options.pattern](options.size)
    try:
        await connect_all(generator, f"ws://{HOST}:{options.port}{options.path}", options.clients)
        if options.pattern == "idle":
            await generator.echo_once()
    except Exception as error:  # noqa: BLE001 - whatever it is, the harness reports it as the server's failure
        emit({"error": f"{type(error).__name__}: {error}", "connected": len(generator.clients)})
        return 1
    emit({"connected": len(generator.clients)})

    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), os.fdopen(options.commands_fd, "rb"))
    while True:
        words = (await commands.readline()).decode().split()
        if not words or words[0] == "quit":
            break
        if options.pattern == "idle" or words[0] not in ("for", "count") or len(words) != 2:
            emit({"error": f"unknown command {' '.join(words)!r} for the {options.pattern} pattern"})
            continue
        if words[0] == "for":
            phase = Phase(loop, seconds=float(words[1]))
        else:
            messages = int(words[1])
            per_send = len(generator.clients) if options.pattern == "broadcast" else 1
            phase = Phase(loop, sends=-(-messages // per_send))
        generator.phase = phase
        cpu_before = time.process_time()
        generator.start(phase)
        await phase.done
        client_cpu = time.process_time() - cpu_before
        generator.phase = None
        emit({**phase.answer(), "client_cpu_us": client_cpu * 1e6})
    emit({"closed": await close_all(generator)})
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--pattern", choices=PATTERNS, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--size", type=int, default=64, help="bytes per message (at least 8: a trigger's number)")
    parser.add_argument("--commands-fd", type=int, required=True)
    options = parser.parse_args(argv)
    if options.clients < 1 or options.size < 8:
        parser.error("--clients must be at least 1 and --size at least 8")
    return uvloop.run(run(options))


if __name__ == "__main__":
    sys.exit(main())
