"""WebSocket routes of real frameworks for tests/test_websocket_frameworks.py,
served by serve.py as ws_framework_apps:make_NAME_app (with --factory)."""


def make_starlette_app():
    from starlette.applications import Starlette
    from starlette.endpoints import WebSocketEndpoint
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute

    class Counter(WebSocketEndpoint):
        """Echoes each text message with how many came before it."""
        encoding = "text"

        async def on_connect(self, websocket):
            self.count = 0
            await websocket.accept(subprotocol="count" if "count" in websocket.scope["subprotocols"] else None)

        async def on_receive(self, websocket, data):
            self.count += 1
            await websocket.send_text(f"{self.count}: {data}")

        async def on_disconnect(self, websocket, close_code):
            pass

    async def hello(request):
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/hello", hello), WebSocketRoute("/count", Counter)])


def make_fastapi_app():
    from fastapi import Depends, FastAPI, WebSocket, WebSocketDisconnect, WebSocketException, status
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    async def token_of(websocket: WebSocket):
        token = websocket.query_params.get("token")
        if token != "secret":
            raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION)
        return token

    @app.get("/hello", response_class=PlainTextResponse)
    async def hello():
        return "hello"

    @app.websocket("/items/{item_id}")
    async def items(websocket: WebSocket, item_id: int, token: str = Depends(token_of)):
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_json()
                await websocket.send_json({"item": item_id, "token": token, "got": data})
        except WebSocketDisconnect:
            pass

    return app


def make_channels_app():
    """Django Channels: a sync consumer (Channels runs it in a thread), an
    async JSON consumer, and a chat room whose members hear each other
    through the in-memory channel layer; Django answers plain HTTP."""
    from apps import configure_django
    from django.http import HttpResponse
    from django.urls import path

    def hello(request):
        return HttpResponse("hello", content_type="text/plain")

    configure_django([path("hello", hello)], "ursa_test_channels_urls",
                     CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})

    from asgiref.sync import async_to_sync
    from channels.generic.websocket import AsyncJsonWebsocketConsumer, WebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.asgi import get_asgi_application

    class Shout(WebsocketConsumer):
        """Sync: each text comes back in capitals, from the consumer's thread."""

        def connect(self):
            self.accept()

        def receive(self, text_data=None, bytes_data=None):
            self.send(text_data=text_data.upper())

    class Doubler(AsyncJsonWebsocketConsumer):
        async def connect(self):
            await self.accept()

        async def receive_json(self, content, **kwargs):
            await self.send_json({"doubled": [2 * number for number in content["numbers"]]})

    class Room(WebsocketConsumer):
        """Everyone in the room hears every message, the sender included."""

        def connect(self):
            async_to_sync(self.channel_layer.group_add)("room", self.channel_name)
            self.accept()
            self.send(text_data="joined")

        def disconnect(self, code):
            async_to_sync(self.channel_layer.group_discard)("room", self.channel_name)

        def receive(self, text_data=None, bytes_data=None):
            async_to_sync(self.channel_layer.group_send)("room", {"type": "room.message", "text": text_data})

        def room_message(self, event):
            self.send(text_data=event["text"])

    websockets = URLRouter([path("shout", Shout.as_asgi()), path("double", Doubler.as_asgi()),
                            path("room", Room.as_asgi())])
    return ProtocolTypeRouter({"http": get_asgi_application(), "websocket": websockets})
