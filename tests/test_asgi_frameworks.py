"""Real ASGI frameworks served end to end: Starlette, FastAPI and Django's
ASGI handler, with httpx as the client. The app's interface is found by
interface="auto" (no option given)."""
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette", reason="Starlette is not installed (requirements-dev.txt)")
pytest.importorskip("fastapi", reason="FastAPI is not installed (requirements-dev.txt)")

from support.rawhttp import build_request  # noqa: E402
from support.waiting import wait_until  # noqa: E402

APPS = "asgi_framework_apps"


def start(pool, name):
    return pool.start(name=name, app=f"{APPS}:make_{name}_app", factory=True, ready_path="/hello")


@pytest.fixture(scope="module", params=["starlette", "fastapi", "django_asgi"])
def framework_server(module_servers, request):
    return start(module_servers, request.param)


@pytest.fixture(scope="module")
def starlette_server(module_servers):
    return start(module_servers, "starlette")


@pytest.fixture(scope="module")
def fastapi_server(module_servers):
    return start(module_servers, "fastapi")


def client(server):
    return httpx.Client(base_url=server.url(""), timeout=30)


def test_get_with_a_query_parameter(framework_server):
    with client(framework_server) as c:
        response = c.get("/hello", params={"name": "ursa"})
    assert response.status_code == 200
    assert response.text.strip('"') == "Hello, ursa!"


def test_json_post(framework_server):
    with client(framework_server) as c:
        response = c.post("/sum", json={"numbers": [1, 2, 3.5], "label": "caf\u00e9"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"sum": 6.5, "label": "caf\u00e9"}


def test_unknown_route_is_the_frameworks_404(framework_server):
    with client(framework_server) as c:
        assert c.get("/no-such-page").status_code == 404


def test_keep_alive_session_serves_many_requests(framework_server):
    with client(framework_server) as c:
        for number in range(20):
            assert c.get("/hello", params={"name": f"n{number}"}).text.strip('"') == f"Hello, n{number}!"


def test_starlette_lifespan_state_reaches_requests(starlette_server):
    with client(starlette_server) as c:
        assert c.get("/greeting").text == "hello from the lifespan"


def test_starlette_path_parameters_and_client(starlette_server):
    with client(starlette_server) as c:
        assert c.get("/items/42").json() == {"id": 42, "scheme": "http", "client": "127.0.0.1"}


def test_starlette_multipart_upload(starlette_server):
    data = bytes(range(256)) * 4096  # 1 MiB
    with client(starlette_server) as c:
        response = c.post("/upload", data={"field": "value"}, files={"file": ("data.bin", data)})
    assert response.json() == {"name": "data.bin", "size": len(data), "field": "value"}


def test_starlette_streaming_response(starlette_server):
    with client(starlette_server) as c:
        with c.stream("GET", "/stream") as response:
            assert response.headers["transfer-encoding"] == "chunked"
            assert "".join(response.iter_text()) == "".join(f"part {i}\n" for i in range(5))


def test_starlette_file_response_uses_pathsend(starlette_server, tmp_path):
    path = tmp_path / "page.txt"
    path.write_bytes(b"file body\n" * 50000)
    with client(starlette_server) as c:
        response = c.get("/file", params={"path": str(path)})
    assert response.content == path.read_bytes()
    assert response.headers["content-length"] == str(len(response.content))


def test_starlette_background_task_runs_after_the_response(starlette_server, tmp_path):
    marker = tmp_path / "background"
    with client(starlette_server) as c:
        assert c.get("/background", params={"marker": str(marker)}).text == "accepted"
    wait_until(marker.exists, 30, "the background task ran")


def test_starlette_sees_the_client_disconnect(starlette_server, tmp_path):
    marker = tmp_path / "disconnect"
    conn = starlette_server.connect()
    conn.send(build_request("GET", f"/wait-disconnect?marker={marker}"))
    wait_until(lambda: marker.exists() and marker.read_text() == "waiting", 30, "the view waits")
    conn.close()
    wait_until(lambda: marker.read_text() == "disconnected", 30, "request.is_disconnected() is true")
    with client(starlette_server) as c:
        assert c.get("/hello").status_code == 200


def test_fastapi_validation_error_is_422(fastapi_server):
    with client(fastapi_server) as c:
        response = c.post("/sum", json={"numbers": "not a list"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_fastapi_path_and_query_parameters_and_lifespan(fastapi_server):
    with client(fastapi_server) as c:
        assert c.get("/items/7", params={"q": "x"}).json() == {"item_id": 7, "q": "x", "started": True}
        assert c.get("/items/404").status_code == 404


def test_fastapi_sync_endpoint_runs_in_the_thread_pool(fastapi_server):
    with client(fastapi_server) as c:
        for _ in range(5):
            assert c.get("/sync").json() == {"thread": "pool"}


def test_fastapi_unhandled_exception_is_a_500_and_the_server_goes_on(fastapi_server):
    with client(fastapi_server) as c:
        assert c.get("/boom").status_code == 500
    fastapi_server.wait_for_log("boom from FastAPI")
    with client(fastapi_server) as c:
        assert c.get("/hello").status_code == 200


def test_django_asgi_streaming_response(module_servers):
    server = start(module_servers, "django_asgi")
    with client(server) as c:
        response = c.get("/stream")
    assert response.text == "part 0\npart 1\npart 2\n"
