"""The ASGI apps every benchmarked ASGI server runs (bench/asgi_servers.py).

The ASGI counterparts of apps.py, answering with the same bodies: raw ASGI
apps as cheap as their scenario allows, so that what is measured is the
server's work (parsing, the scope, receive and send); and a Starlette and a
FastAPI app, to show what is left of a server's advantage under a framework.

Lifespan is on everywhere: every server runs the lifespan protocol (ursa's
lifespan="auto", uvicorn lifespan="on", granian's "asgi" interface,
hypercorn always), and every app answers it: the raw apps through
_lifespan(), Starlette and FastAPI by themselves.
"""
import json

from apps import HELLO_BODY, JSON_MESSAGE, LARGE_BODY, STREAM_CHUNK, loader

# The streamed response: this many sends of 1 KiB, each with more_body but the last (the
# WSGI generator yields 100).
STREAM_CHUNK_COUNT = 10
# FastAPI (Starlette's JSONResponse) writes JSON without spaces.
COMPACT_JSON_BODY = json.dumps(JSON_MESSAGE, separators=(",", ":")).encode()


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send, body, content_type):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def _answering(make_body, content_type):
    """A raw ASGI app answering every request with the bytes make_body() returns."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await _lifespan(receive, send)
        await _respond(send, make_body(), content_type)
    return app


hello = _answering(lambda: HELLO_BODY, b"text/plain")
# Serialised on every request, as an API view would.
json_hello = _answering(lambda: json.dumps(JSON_MESSAGE).encode(), b"application/json")
large = _answering(lambda: LARGE_BODY, b"application/octet-stream")


async def stream(scope, receive, send):
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    # No content-length: an HTTP/1.1 server must send this chunked.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    for index in range(STREAM_CHUNK_COUNT):
        await send({"type": "http.response.body", "body": STREAM_CHUNK,
                    "more_body": index < STREAM_CHUNK_COUNT - 1})


async def echo(scope, receive, send):
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # http.disconnect: nobody to answer
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await _respond(send, b"".join(chunks), b"application/octet-stream")


def starlette_hello():
    """A Starlette app answering "/" with the hello body (PlainTextResponse)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def index(request):
        return PlainTextResponse(HELLO_BODY.decode())

    return Starlette(routes=[Route("/", index)])


def fastapi_json():
    """A FastAPI app whose "/" endpoint returns a dict (FastAPI's JSON response)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def index():
        return dict(JSON_MESSAGE)

    return app


# The same names as their WSGI counterparts in apps.APPS, whose scenarios they answer.
APPS = dict(hello=hello, json=json_hello, large=large, stream=stream, echo=echo)
# Built only by the server that serves them, as apps.APP_FACTORIES.
APP_FACTORIES = dict(starlette=starlette_hello, fastapi=fastapi_json)
APP_NAMES = (*APPS, *APP_FACTORIES)
load_app = loader(APPS, APP_FACTORIES)
