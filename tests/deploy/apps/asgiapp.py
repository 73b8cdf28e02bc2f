"""An ASGI app for the deployment tests (the ursa command, nginx in front).

Routes:
  /            b"hello"
  /pid         the worker's pid
  /scope       scheme, client, server, root_path, path and http_version as JSON
  /echo        the request body (POST)
  /slow?S      sleeps S seconds (asyncio), then b"slow done"; first creates a
               file in $ASGIAPP_MARKER_DIR (if set)
  /raise       raises ValueError("asgiapp failure")
A WebSocket on any path is accepted, sent the worker's pid, and echoed.

Lifespan: startup and shutdown append "startup PID"/"shutdown PID" lines to
$ASGIAPP_LIFESPAN_LOG (if set); $ASGIAPP_FAIL_STARTUP=1 fails the startup.
`app_without_lifespan` raises on the lifespan scope, as many small apps do.
"""
import asyncio
import json
import os


async def respond(send, body, status=200, content_type=b"text/plain"):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


def log_event(event):
    path = os.environ.get("ASGIAPP_LIFESPAN_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"{event} {os.getpid()}\n")


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if os.environ.get("ASGIAPP_FAIL_STARTUP") == "1":
                await send({"type": "lifespan.startup.failed", "message": "the database is unreachable"})
                return
            log_event("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            log_event("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope, receive, send):
    path = scope["path"]
    if path == "/":
        await respond(send, b"hello")
    elif path == "/pid":
        await respond(send, str(os.getpid()).encode())
    elif path == "/scope":
        described = {key: scope[key] for key in ("scheme", "client", "server", "root_path", "path", "http_version")}
        described["host"] = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        await respond(send, json.dumps(described).encode(), content_type=b"application/json")
    elif path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await respond(send, body)
    elif path == "/slow":
        marker_dir = os.environ.get("ASGIAPP_MARKER_DIR")
        if marker_dir:
            open(os.path.join(marker_dir, f"slow-{os.getpid()}"), "w").close()
        await asyncio.sleep(float(scope["query_string"] or b"1"))
        await respond(send, b"slow done")
    elif path == "/raise":
        raise ValueError("asgiapp failure")
    else:
        await respond(send, b"not found", status=404)


async def websocket(receive, send):
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": str(os.getpid())})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        return await websocket(receive, send)
    await http(scope, receive, send)


async def app_without_lifespan(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope type {scope['type']}")
    await http(scope, receive, send)


def undetectable(scope, receive, send):
    """ASGI, though no coroutine function: only an explicit ASGI interface serves it."""
    return app(scope, receive, send)
