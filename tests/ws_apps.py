"""WebSocket apps for the end-to-end tests, served by serve.py as
ws_apps:routing (raw ASGI, no framework: what the tests see is the
server's doing). Markers are files an app writes so that a test can wait
for it to reach a point, never for a time."""
import asyncio
import json
import os
import time

from asgi_apps import describe, query_of


def mark(path, text=""):
    with open(path + ".tmp", "w") as marker:
        marker.write(text)
    os.replace(path + ".tmp", path)


async def echo(scope, receive, send):
    """Echoes every message as it came (text as text, bytes as bytes);
    `marker` gets the disconnect's code, and its reason after a space if
    there is one."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            marker = query_of(scope).get("marker")
            if marker:
                reason = message["reason"]
                mark(marker, f"{message['code']} {reason}" if reason else str(message["code"]))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def scope_of(scope, receive, send):
    """Accepts (choosing the first subprotocol offered) and sends the scope as JSON."""
    await receive()
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-accepted", b"yes")]})
    await send({"type": "websocket.send", "text": json.dumps(describe(scope))})
    await send({"type": "websocket.close", "code": 1000})


async def deny(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})


async def no_answer(scope, receive, send):
    """Returns without accepting: the handshake is denied (403)."""
    await receive()


async def fail_before_accept(scope, receive, send):
    await receive()
    raise RuntimeError("the app fails before it accepts")


async def fail_after_accept(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("the app fails after a message")


async def http_response(scope, receive, send):
    """Denies with a response of its own (the websocket.http.response extension)."""
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Basic")]})
    await send({"type": "websocket.http.response.body", "body": b"who are you?"})


async def close_with(scope, receive, send):
    """Accepts, sends a message, then closes with ?code= and ?reason=."""
    query = query_of(scope)
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "bye"})
    await send({"type": "websocket.close", "code": int(query.get("code", "1000")), "reason": query.get("reason", "")})
    message = await receive()
    if "marker" in query:
        mark(query["marker"], json.dumps(message))


async def returns_after_accept(scope, receive, send):
    """Returns after accepting: the server closes with 1000."""
    await receive()
    await send({"type": "websocket.accept"})


async def stream(scope, receive, send):
    """Sends ?count= messages of ?size= bytes as fast as send() lets it,
    writing the marker when the last send() returned."""
    query = query_of(scope)
    count, size = int(query.get("count", "100")), int(query.get("size", "65536"))
    await receive()
    await send({"type": "websocket.accept"})
    payload = b"x" * size
    for _ in range(count):
        await send({"type": "websocket.send", "bytes": payload})
    if "marker" in query:
        mark(query["marker"], "sent")
    await receive()


async def hold(scope, receive, send):
    """Accepts and writes the marker, then takes no message until ?release=
    exists; then counts what arrives until the disconnect."""
    query = query_of(scope)
    await receive()
    await send({"type": "websocket.accept"})
    mark(query["marker"], "accepted")
    while not os.path.exists(query["release"]):
        await asyncio.sleep(0.01)
    received = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        received += len(message.get("bytes") or b"")
    mark(query["marker"] + ".done", str(received))


async def send_after_disconnect(scope, receive, send):
    """Waits for the disconnect, then sends: what send() raises is recorded."""
    query = query_of(scope)
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass
    try:
        await send({"type": "websocket.send", "text": "too late"})
        outcome = "sent"
    except OSError as error:
        outcome = type(error).__name__
    mark(query["marker"], outcome)


async def bad_messages(scope, receive, send):
    """Tries invalid messages after accepting, sending what each raised."""
    await receive()
    await send({"type": "websocket.accept"})
    errors = []
    for message in ({"type": "websocket.send"},
                    {"type": "websocket.send", "text": "a", "bytes": b"b"},
                    {"type": "websocket.send", "text": b"not str"},
                    {"type": "websocket.close", "code": 1005},
                    {"type": "websocket.close", "reason": "r" * 124},
                    {"type": "websocket.accept"},
                    {"type": "websocket.http.response.start", "status": 200},
                    {"type": "http.response.start", "status": 200}):
        try:
            await send(message)
            errors.append("accepted")
        except (TypeError, ValueError, RuntimeError) as error:
            errors.append(type(error).__name__)
    await send({"type": "websocket.send", "text": json.dumps(errors)})
    await send({"type": "websocket.close"})


async def handshake_field(scope, receive, send):
    """Accepts first with a handshake field of its own (refused: the server
    writes those), then as it should, and sends what the refusal said."""
    await receive()
    name = query_of(scope)["name"].encode()
    try:
        await send({"type": "websocket.accept", "headers": [(name, b"x-mine")]})
        refusal = "accepted"
    except ValueError as error:
        refusal = str(error)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": refusal})
    await send({"type": "websocket.close", "code": 1000})


ROUTES = {
    "/echo": echo,
    "/handshake-field": handshake_field,
    "/scope": scope_of,
    "/deny": deny,
    "/no-answer": no_answer,
    "/fail-before-accept": fail_before_accept,
    "/fail-after-accept": fail_after_accept,
    "/http-response": http_response,
    "/close-with": close_with,
    "/returns": returns_after_accept,
    "/stream": stream,
    "/hold": hold,
    "/send-after-disconnect": send_after_disconnect,
    "/bad-messages": bad_messages,
}


async def routing(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http" and scope["path"] == "/block-loop":
        # An app that holds the loop (a blocking call): its time is the app's,
        # not its WebSockets' peers'. The marker says when it starts.
        mark(query_of(scope)["marker"], "blocking")
        time.sleep(float(query_of(scope)["seconds"]))
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        body = b"pong" if scope["path"] == "/ping" else b"plain http " + scope["path"].encode()
        await send({"type": "http.response.body", "body": body})
        return
    handler = ROUTES.get(scope["path"])
    if handler is None:
        await receive()
        await send({"type": "websocket.close"})
        return
    await handler(scope, receive, send)
