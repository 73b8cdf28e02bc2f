"""ASGI apps for the end-to-end tests, served by serve.py as asgi_apps:NAME.

`routing` dispatches on the path; each handler is raw ASGI (no framework),
so what the tests see is the server's doing. Markers are files the app
writes so a test can wait for it to reach a point (never for a time).
"""
import asyncio
import gc
import json
import os
import sys
from urllib.parse import parse_qs


def query_of(scope):
    return {name: values[-1] for name, values in parse_qs(scope["query_string"].decode()).items()}


async def respond(send, status=200, body=b"", headers=(), content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), *headers]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    chunks, parts = [], 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message["body"])
        parts += 1
        if not message.get("more_body"):
            return b"".join(chunks), parts


def mark(path, text=""):
    with open(path, "w") as marker:
        marker.write(text)


async def ping(scope, receive, send):
    await respond(send, body=b"pong")


async def echo(scope, receive, send):
    body, parts = await read_body(receive)
    await respond(send, body=body, headers=[(b"x-parts", str(parts).encode())])


async def body_size(scope, receive, send):
    body, parts = await read_body(receive)
    await respond(send, body=str(len(body)).encode(), headers=[(b"x-parts", str(parts).encode())])


def describe(scope):
    described = {key: value for key, value in scope.items() if key not in ("headers", "state", "raw_path",
                                                                             "query_string", "extensions")}
    described["headers"] = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]]
    described["raw_path"] = scope["raw_path"].decode("latin-1")
    described["query_string"] = scope["query_string"].decode("latin-1")
    described["extensions"] = sorted(scope.get("extensions", {}))
    described["state"] = {key: repr(value) for key, value in scope.get("state", {}).items()}
    return described


async def show_scope(scope, receive, send):
    await respond(send, body=json.dumps(describe(scope)).encode(), content_type=b"application/json")


async def slow(scope, receive, send):
    query = query_of(scope)
    if "marker" in query:
        mark(query["marker"])
    await asyncio.sleep(float(query.get("seconds", "1")))
    await respond(send, body=b"slow response finished")


async def block(scope, receive, send):
    """Holds the whole loop (a blocking call in async code, an app bug)."""
    import time

    time.sleep(float(query_of(scope).get("seconds", "1")))
    await respond(send, body=b"blocked")


async def stream(scope, receive, send):
    query = query_of(scope)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for index in range(int(query.get("parts", "3"))):
        await send({"type": "http.response.body", "body": f"part {index}\n".encode(), "more_body": True})
        await asyncio.sleep(float(query.get("delay", "0.05")))
    await send({"type": "http.response.body", "body": b"end\n"})


RELEASED = asyncio.Event()


async def release(scope, receive, send):
    """Lets the requests waiting in hold_body and continue_later go on."""
    RELEASED.set()
    await respond(send, body=b"released")


async def first_part(scope, receive, send):
    """Records the first body message as it arrives, then reads the rest."""
    query = query_of(scope)
    first = await receive()
    mark(query["marker"], f"{len(first['body'])} {first['more_body']}")
    body, parts = await read_body(receive) if first["more_body"] else (b"", 0)
    await respond(send, body=str(len(first["body"]) + len(body)).encode())


async def hold_body(scope, receive, send):
    """Reads nothing of the body until /release, then all of it."""
    RELEASED.clear()
    await RELEASED.wait()
    body, parts = await read_body(receive)
    await respond(send, body=str(len(body)).encode())


async def continue_later(scope, receive, send):
    """Marks that it runs, and asks for the body only after /release."""
    RELEASED.clear()
    mark(query_of(scope)["marker"])
    await RELEASED.wait()
    body, parts = await read_body(receive)
    await respond(send, body=body)


async def answer_early(scope, receive, send):
    """Refuses the upload without reading it."""
    await respond(send, status=403, body=b"no uploads here")


async def upload_until_gone(scope, receive, send):
    """Reads the body as it comes; records how the client's leaving shows."""
    marker = query_of(scope)["marker"]
    try:
        while True:
            message = await receive()
            mark(marker, "reading" if message["type"] == "http.request" else message["type"])
            if message["type"] == "http.disconnect":
                return
    except asyncio.CancelledError:
        mark(marker, "cancelled")
        raise


async def echo_through_asyncio(scope, receive, send):
    """A stdlib asyncio server and client inside the app: the body goes
    through a local echo server and back."""
    body, parts = await read_body(receive)

    async def echo_back(reader, writer):
        writer.write(await reader.readexactly(len(body)))
        await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo_back, "127.0.0.1", 0)
    port = echo_server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(body)
    await writer.drain()
    echoed = await reader.readexactly(len(body))
    writer.close()
    await writer.wait_closed()
    echo_server.close()
    await echo_server.wait_closed()
    await respond(send, body=echoed)


async def interrupt_while_stopping(scope, receive, send):
    """A second Ctrl-C while the app runs: the stop is under way when the
    app raises KeyboardInterrupt (?where=later: after a real wait)."""
    import ursa

    if query_of(scope).get("where") == "later":
        await asyncio.sleep(0)
    ursa.stop()
    raise KeyboardInterrupt


async def wait_disconnect(scope, receive, send):
    """Reads the body, then waits for http.disconnect and records it."""
    query = query_of(scope)
    await read_body(receive)
    mark(query["marker"], "waiting")
    message = await receive()
    mark(query["marker"], message["type"])


async def stream_until_gone(scope, receive, send):
    """Streams until send() raises; records what it raised."""
    query = query_of(scope)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    sent = 0
    try:
        while True:
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            sent += 1
            if sent == 2:
                mark(query["marker"] + ".started")
            await asyncio.sleep(0.01)
    except (OSError, asyncio.CancelledError) as error:
        mark(query["marker"], type(error).__name__)
        raise


async def send_after_gone(scope, receive, send):
    """Waits in receive() for the disconnect (shielded from the task's
    cancellation), then sends; records what send() raised."""
    marker = query_of(scope)["marker"]
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    mark(marker, "waiting")
    waiting = asyncio.ensure_future(receive())
    try:
        await asyncio.shield(waiting)
    except asyncio.CancelledError:
        await waiting  # http.disconnect
    try:
        await send({"type": "http.response.body", "body": b"too late"})
    except OSError as error:
        mark(marker, type(error).__name__)


async def count_sends(scope, receive, send):
    """Sends `parts` parts of 64 KiB, recording how many send() returned."""
    query = query_of(scope)
    parts = int(query["parts"])
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(parts * 65536).encode())]})
    for index in range(parts):
        await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": index < parts - 1})
        mark(query["marker"], str(index + 1))


async def raise_before_start(scope, receive, send):
    raise RuntimeError("raised before the response started")


async def raise_after_start(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("raised in the middle of the body")


async def start_only(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def no_response(scope, receive, send):
    return None


async def bad_header(scope, receive, send):
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-bad", b"a\r\nInjected: 1")]})
    except ValueError as error:
        await respond(send, status=200, body=str(error).encode())


async def header_shapes(scope, receive, send):
    """Headers as a list, a tuple or any iterable of pairs (lists or
    tuples), names and values as bytes or other bytes-like objects."""
    shape = query_of(scope)["shape"]
    pairs = [(b"x-one", b"1"), [bytearray(b"x-two"), memoryview(b"2")], (b"x-three", bytearray(b"3"))]
    headers = {"list": pairs, "tuple": tuple(pairs), "generator": (pair for pair in pairs)}[shape]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": shape.encode()})


async def status(scope, receive, send):
    code = int(query_of(scope).get("code", "200"))
    await respond(send, status=code, body=b"" if code in (204, 304) else b"status body")


async def sized(scope, receive, send):
    """A body of `size` bytes in `parts` messages, with a Content-Length."""
    query = query_of(scope)
    size, parts = int(query.get("size", "100000")), int(query.get("parts", "1"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(size).encode())]})
    piece = size // parts
    for index in range(parts):
        last = index == parts - 1
        await send({"type": "http.response.body", "body": b"y" * (size - piece * index if last else piece),
                    "more_body": not last})


async def pathsend(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.pathsend", "path": query_of(scope)["path"]})


async def after_response(scope, receive, send):
    """Work after the response: the next receive() says the exchange is over."""
    query = query_of(scope)
    await respond(send, body=b"done")
    message = await receive()
    mark(query["marker"], message["type"])


async def eager(scope, receive, send):
    # Python 3.12+ keeps a task in asyncio.tasks._eager_tasks while its first
    # step runs inside its creation; older versions have no such set.
    running_eagerly = asyncio.current_task() in getattr(asyncio.tasks, "_eager_tasks", ())
    await respond(send, body=json.dumps(running_eagerly).encode(), content_type=b"application/json")


async def state(scope, receive, send):
    await respond(send, body=json.dumps(sorted(scope.get("state", {}))).encode())


async def process_stats(scope, receive, send):
    gc.collect()
    with open("/proc/self/status") as status_file:
        rss_kib = next(int(line.split()[1]) for line in status_file if line.startswith("VmRSS:"))
    tasks = len(asyncio.all_tasks())
    await respond(send, content_type=b"application/json", body=json.dumps({
        "objects": len(gc.get_objects()), "allocated_blocks": sys.getallocatedblocks(), "rss_kib": rss_kib,
        "open_fds": len(os.listdir("/proc/self/fd")), "tasks": tasks}).encode())


async def endless(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        await send({"type": "http.response.body", "body": b"z" * 16384, "more_body": True})


def outcome_of_next(iterator):
    """What next() on an awaitable's iterator gives: the value it ended with."""
    try:
        next(iterator)
    except StopIteration as stop:
        return ["stopped", stop.value]
    return ["yielded", None]


async def awaitables_by_hand(scope, receive, send):
    """receive() and send() give awaitables that iterate as the iterator
    protocol says, whoever drives them: next(), .send(None), yield from."""
    import types

    @types.coroutine
    def through_yield_from(awaitable):
        return (yield from awaitable.__await__())

    how, message = outcome_of_next(receive().__await__())
    seen = {"receive-next": [how, {**message, "body": message["body"].decode()}]}
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    seen["send-next"] = outcome_of_next(send(start).__await__())
    part = {"type": "http.response.body", "body": b"", "more_body": True}
    try:
        send(part).__await__().send(None)
    except StopIteration as stop:
        seen["send-method"] = ["stopped", stop.value]
    seen["send-yield-from"] = await through_yield_from(send(part))
    seen["send-await"] = await send(part)
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


ROUTES = {
    "/awaitables-by-hand": awaitables_by_hand,
    "/stats": process_stats,
    "/endless": endless,
    "/ping": ping,
    "/echo": echo,
    "/size": body_size,
    "/scope": show_scope,
    "/slow": slow,
    "/block": block,
    "/stream": stream,
    "/wait-disconnect": wait_disconnect,
    "/stream-until-gone": stream_until_gone,
    "/count-sends": count_sends,
    "/raise-before-start": raise_before_start,
    "/raise-after-start": raise_after_start,
    "/start-only": start_only,
    "/no-response": no_response,
    "/bad-header": bad_header,
    "/header-shapes": header_shapes,
    "/status": status,
    "/sized": sized,
    "/pathsend": pathsend,
    "/after-response": after_response,
    "/state": state,
    "/eager": eager,
    "/release": release,
    "/interrupt-while-stopping": interrupt_while_stopping,
    "/send-after-gone": send_after_gone,
    "/first-part": first_part,
    "/hold-body": hold_body,
    "/continue-later": continue_later,
    "/answer-early": answer_early,
    "/upload-until-gone": upload_until_gone,
    "/echo-through-asyncio": echo_through_asyncio,
}


async def routing(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    handler = ROUTES.get(scope["path"])
    if handler is None and scope["path"].startswith("/scope/"):
        handler = show_scope
    if handler is None:
        await respond(send, status=404, body=b"no such route")
        return
    await handler(scope, receive, send)


async def lifespan(scope, receive, send):
    """Startup fills the state; URSA_TEST_LIFESPAN_LOG, if set, records the
    events; URSA_TEST_LIFESPAN_FAIL=startup fails the startup;
    URSA_TEST_LIFESPAN_SHUTDOWN_SECONDS makes the shutdown take that long."""
    log = os.environ.get("URSA_TEST_LIFESPAN_LOG")
    while True:
        message = await receive()
        if log:
            with open(log, "a") as record:
                record.write(message["type"] + "\n")
        if message["type"] == "lifespan.startup":
            if os.environ.get("URSA_TEST_LIFESPAN_FAIL") == "startup":
                await send({"type": "lifespan.startup.failed", "message": "the test asked for it"})
                return
            scope["state"]["database"] = "connected"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.sleep(float(os.environ.get("URSA_TEST_LIFESPAN_SHUTDOWN_SECONDS", "0")))
            if log:
                with open(log, "a") as record:
                    record.write("lifespan.shutdown.complete\n")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def no_lifespan(scope, receive, send):
    """An app that does not know the lifespan protocol (it raises on it)."""
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']!r}")
    await routing(scope, receive, send)
