"""Real ASGI frameworks for tests/test_asgi_frameworks.py, served by
serve.py as asgi_framework_apps:make_NAME_app (with --factory)."""
import asyncio
import contextlib
import json


def make_starlette_app():
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield {"greeting": "hello from the lifespan"}

    async def hello(request: Request):
        return PlainTextResponse(f"Hello, {request.query_params.get('name', 'world')}!")

    async def greeting(request: Request):
        return PlainTextResponse(request.state.greeting)

    async def item(request: Request):
        return JSONResponse({"id": request.path_params["item_id"], "scheme": request.url.scheme,
                             "client": request.client.host})

    async def upload(request: Request):
        form = await request.form()
        upload = form["file"]
        data = await upload.read()
        return JSONResponse({"name": upload.filename, "size": len(data), "field": form["field"]})

    async def sum_numbers(request: Request):
        payload = await request.json()
        return JSONResponse({"sum": sum(payload["numbers"]), "label": payload["label"]})

    async def stream(request: Request):
        async def parts():
            for index in range(5):
                yield f"part {index}\n"
                await asyncio.sleep(0.01)
        return StreamingResponse(parts(), media_type="text/plain")

    async def file(request: Request):
        return FileResponse(request.query_params["path"])

    def record(path, text):
        with open(path, "w") as marker:
            marker.write(text)

    async def background(request: Request):
        return PlainTextResponse("accepted", background=BackgroundTask(record, request.query_params["marker"],
                                                                      "background task ran"))

    async def wait_disconnect(request: Request):
        marker = request.query_params["marker"]
        record(marker, "waiting")
        while not await request.is_disconnected():
            await asyncio.sleep(0.05)
        record(marker, "disconnected")
        return PlainTextResponse("never seen")

    return Starlette(lifespan=lifespan, routes=[
        Route("/hello", hello),
        Route("/greeting", greeting),
        Route("/items/{item_id:int}", item),
        Route("/upload", upload, methods=["POST"]),
        Route("/sum", sum_numbers, methods=["POST"]),
        Route("/stream", stream),
        Route("/file", file),
        Route("/background", background),
        Route("/wait-disconnect", wait_disconnect),
    ])


def make_fastapi_app():
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel

    state = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["started"] = True
        yield

    app = FastAPI(lifespan=lifespan)

    class Numbers(BaseModel):
        numbers: list[float]
        label: str

    @app.get("/hello")
    async def hello(name: str = "world"):
        return f"Hello, {name}!"

    @app.get("/items/{item_id}")
    async def item(item_id: int, q: str | None = None):
        if item_id == 404:
            raise HTTPException(status_code=404, detail="no such item")
        return {"item_id": item_id, "q": q, "started": state.get("started", False)}

    @app.post("/sum")
    async def sum_numbers(payload: Numbers):
        return {"sum": sum(payload.numbers), "label": payload.label}

    @app.get("/sync")
    def sync_endpoint():
        # Runs in FastAPI's thread pool, off the event loop.
        return {"thread": "pool"}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("boom from FastAPI")

    return app


def make_django_asgi_app():
    from django.core.asgi import get_asgi_application
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
    from django.urls import path

    from apps import configure_django

    async def hello(request):
        return HttpResponse(f"Hello, {request.GET.get('name', 'world')}!", content_type="text/plain")

    def sum_numbers(request):  # a sync view: Django runs it in a thread
        if request.method != "POST":
            return HttpResponse(status=405)
        payload = json.loads(request.body)
        return JsonResponse({"sum": sum(payload["numbers"]), "label": payload["label"]})

    async def stream(request):
        async def parts():
            for index in range(3):
                yield f"part {index}\n"
        return StreamingHttpResponse(parts(), content_type="text/plain")

    configure_django([path("hello", hello), path("sum", sum_numbers), path("stream", stream)],
                     "ursa_test_django_asgi_urls")
    return get_asgi_application()
