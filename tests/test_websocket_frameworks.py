"""WebSocket routes of real frameworks served end to end (Starlette's
WebSocketEndpoint, a FastAPI route with a dependency, Django Channels'
consumers and channel layer), with the websockets library as the client."""
import asyncio
import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")
pytest.importorskip("starlette", reason="Starlette is not installed (requirements-dev.txt)")
pytest.importorskip("fastapi", reason="FastAPI is not installed (requirements-dev.txt)")
pytest.importorskip("websockets", reason="websockets is not installed (requirements-dev.txt)")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

APPS = "ws_framework_apps"


def start(pool, name):
    return pool.start(name=name, app=f"{APPS}:make_{name}_app", factory=True, ready_path="/hello")


@pytest.fixture(scope="module")
def starlette_server(module_servers):
    return start(module_servers, "starlette")


@pytest.fixture(scope="module")
def fastapi_server(module_servers):
    return start(module_servers, "fastapi")


def url(server, target):
    return f"ws://127.0.0.1:{server.port}{target}"


def test_starlette_websocket_endpoint(starlette_server):
    async def talk():
        async with connect(url(starlette_server, "/count"), subprotocols=["count"]) as ws:
            answers = []
            for text in ("a", "b", "c"):
                await ws.send(text)
                answers.append(await ws.recv())
            return ws.subprotocol, answers

    assert asyncio.run(talk()) == ("count", ["1: a", "2: b", "3: c"])


def test_starlette_closes_on_bytes_to_a_text_endpoint(starlette_server):
    async def talk():
        async with connect(url(starlette_server, "/count")) as ws:
            await ws.send(b"bytes")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert asyncio.run(talk()) == 1003


def test_fastapi_websocket_route_with_a_dependency(fastapi_server):
    async def talk():
        async with connect(url(fastapi_server, "/items/7?token=secret")) as ws:
            await ws.send(json.dumps({"n": 1}))
            first = json.loads(await ws.recv())
            await ws.send(json.dumps([2, 3]))
            return first, json.loads(await ws.recv())

    first, second = asyncio.run(talk())
    assert first == {"item": 7, "token": "secret", "got": {"n": 1}}
    assert second["got"] == [2, 3]


def test_fastapi_dependency_refuses_before_accepting(fastapi_server):
    async def talk():
        async with connect(url(fastapi_server, "/items/7?token=wrong")):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(talk())
    assert refused.value.response.status_code == 403


@pytest.fixture(scope="module")
def channels_server(module_servers):
    pytest.importorskip("channels", reason="Django Channels is not installed (requirements-dev.txt)")
    return start(module_servers, "channels")


def test_channels_sync_consumer_runs_in_its_thread(channels_server):
    async def talk():
        async with connect(url(channels_server, "/shout")) as ws:
            answers = []
            for text in ("hi", "there"):
                await ws.send(text)
                answers.append(await ws.recv())
            return answers

    assert asyncio.run(talk()) == ["HI", "THERE"]


def test_channels_async_json_consumer(channels_server):
    async def talk():
        async with connect(url(channels_server, "/double")) as ws:
            await ws.send(json.dumps({"numbers": [1, 2, 3]}))
            return json.loads(await ws.recv())

    assert asyncio.run(talk()) == {"doubled": [2, 4, 6]}


def test_channels_room_members_hear_each_other_through_the_channel_layer(channels_server):
    async def talk():
        async with connect(url(channels_server, "/room")) as alice, connect(url(channels_server, "/room")) as bob:
            assert await alice.recv() == "joined" and await bob.recv() == "joined"
            await alice.send("hello from alice")
            heard = [await alice.recv(), await bob.recv()]
            await bob.send("hello from bob")
            heard += [await alice.recv(), await bob.recv()]
            return heard

    assert asyncio.run(talk()) == ["hello from alice"] * 2 + ["hello from bob"] * 2


def test_channels_serves_django_http_beside_its_websockets(channels_server):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", channels_server.port, timeout=30)
    connection.request("GET", "/hello")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"hello")
    connection.close()
