"""The ASGI apps every benchmarked ASGI server runs (bench/asgi_servers.py).

The ASGI counterparts of apps.py, answering with the same bodies: raw ASGI
apps as cheap as their scenario allows, so that what is measured is the
server's work (parsing, the scope, receive and send): hello, a body echoed,
a streamed request body counted; and a Starlette and a FastAPI app (JSON
out, and a pydantic model in and out), to show what is left of a server's
advantage under a framework.

Lifespan is on everywhere: every server runs the lifespan protocol (ursa's
lifespan="auto", uvicorn lifespan="on", granian's "asgi" interface,
hypercorn always), and every app answers it: the raw apps through
_lifespan(), Starlette and FastAPI by themselves.
"""
import json

from apps import HELLO_BODY, JSON_MESSAGE, loader

# Starlette's JSONResponse (FastAPI's too) writes JSON without spaces.
COMPACT_JSON_BODY = json.dumps(JSON_MESSAGE, separators=(",", ":")).encode()
# What the FastAPI POST scenario sends, and gets back: its pydantic model, validated and dumped.
ITEM = {"name": "widget", "price": 9.5, "tags": ["bench", "asgi"]}
ITEM_BODY = json.dumps(ITEM, separators=(",", ":")).encode()
# The streamed request body: this many chunks of 1 KiB, sent with Transfer-Encoding: chunked.
UPLOAD_CHUNK = b"u" * 1024
UPLOAD_CHUNK_COUNT = 100


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


async def length(scope, receive, send):
    """Reads the request body with receive(), as it arrives, and answers its length."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await _respond(send, b"%d" % total, b"text/plain")


def starlette_json():
    """A Starlette app answering "/" with JSON_MESSAGE (JSONResponse)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def index(request):
        return JSONResponse(JSON_MESSAGE)

    return Starlette(routes=[Route("/", index)])


def fastapi_app():
    """A FastAPI app: GET "/" returns a dict, POST "/items" takes and returns a pydantic model."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str
        price: float
        tags: list[str] = []

    app = FastAPI()

    @app.get("/")
    async def index():
        return dict(JSON_MESSAGE)

    @app.post("/items")
    async def create_item(item: Item):
        return item

    return app


# The same names as their WSGI counterparts in apps.APPS, whose scenarios they answer.
APPS = dict(hello=hello, echo=echo, length=length)
# Built only by the server that serves them, as apps.APP_FACTORIES.
APP_FACTORIES = dict(starlette=starlette_json, fastapi=fastapi_app)
APP_NAMES = (*APPS, *APP_FACTORIES)
load_app = loader(APPS, APP_FACTORIES)
