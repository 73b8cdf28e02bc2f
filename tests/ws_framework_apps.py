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
