"""The raw ASGI WebSocket apps every benchmarked server runs (bench/websocket_servers.py).

As cheap as a WebSocket app can be, so that what is measured is the
server's work: the upgrade, framing, receive() and send().

- echo: accepts, then sends every message back as it came (bytes as bytes,
  text as text) until the client goes.
- broadcast: every connection joins one module-wide set of subscribers
  before it is accepted (so a client that has its 101 is already counted);
  each message any subscriber sends is sent to every subscriber, itself
  included, one send() after the other from the task that received it: the
  way an app without a message bus fans out, and what it costs a server to
  write one message to many connections.

Both answer the lifespan protocol, as every app of asgi_apps.py does, and
an HTTP request with 404 (nothing of the benchmark sends one).
"""
from asgi_apps import _lifespan

# The send() of every connected broadcast client, by a token of its own: a
# server's send callable need not be hashable.
BROADCAST_SUBSCRIBERS = {}


async def _not_found(send):
    await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def echo(scope, receive, send):
    if scope["type"] != "websocket":
        return await (_lifespan(receive, send) if scope["type"] == "lifespan" else _not_found(send))
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def broadcast(scope, receive, send):
    if scope["type"] != "websocket":
        return await (_lifespan(receive, send) if scope["type"] == "lifespan" else _not_found(send))
    await receive()  # websocket.connect
    token = object()
    BROADCAST_SUBSCRIBERS[token] = send
    try:
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            if message.get("bytes") is not None:
                out = {"type": "websocket.send", "bytes": message["bytes"]}
            else:
                out = {"type": "websocket.send", "text": message["text"]}
            # A copy: a subscriber may leave while a send() below waits.
            for subscriber in tuple(BROADCAST_SUBSCRIBERS.values()):
                await subscriber(out)
    finally:
        del BROADCAST_SUBSCRIBERS[token]


APPS = dict(echo=echo, broadcast=broadcast)
APP_NAMES = tuple(APPS)


def load_app(name):
    return APPS[name]
