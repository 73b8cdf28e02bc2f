"""The task an ASGI request runs as (asgi/task.c): asyncio.Task's protocol
as asyncio, anyio and contextvars use it, seen from apps over real sockets
(asgi_task_apps.py)."""
import concurrent.futures
import json
import sys

import pytest

from support.waiting import wait_until

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="asgi-task", app="asgi_task_apps:routing")


def under_asyncio_task(path):
    """What the same app answers when an asyncio.Task runs it, on this Python
    (the server's): the request task must answer the same."""
    import asyncio

    import asgi_task_apps

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.disconnect"}

    async def main():
        scope = {"type": "http", "path": path, "query_string": b""}
        await asyncio.get_running_loop().create_task(asgi_task_apps.routing(scope, receive, send))

    asyncio.run(main())
    return json.loads(sent[-1]["body"])


def test_the_task_is_what_asyncio_says_is_current_and_running(server):
    seen = server.get("/protocol").json()
    assert seen["is_future"] is True
    assert seen["listed_before_waiting"] is True and seen["listed_while_waiting"] is True
    assert seen["same_task_after_waiting"] is True
    assert seen["loop_is_running_loop"] is True
    assert seen["name"] == "ursa: ASGI request"
    assert seen["coro"] == "routing"
    assert seen["context_is_a_context"] is True
    assert (seen["done_while_running"], seen["cancelling"], seen["must_cancel"]) == (False, 0, False)
    assert seen["waiter_while_running"] == "None"
    assert seen["repr_pending"] is True
    assert seen["stack_frames"] >= 1
    assert seen["set_result_refused"] is True


def test_tasks_let_go_of_their_type(server):
    # Each task holds its heap type while it lives; dealloc must give it back once.
    first = server.get("/protocol").json()["type_references"]
    for _ in range(200):
        server.get("/protocol")
    last = server.get("/protocol").json()["type_references"]
    assert last - first < 20


def test_each_request_has_its_own_context(server):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(server.get, f"/context?value=slow{i}&sleep=0.3") for i in range(2)]
        fast = [pool.submit(server.get, f"/context?value=fast{i}") for i in range(6)]
        answers = [future.result().json() for future in slow + fast]
    for answer in answers:
        assert answer["before"] == "unset"
        assert answer["after"] == answer["mine"]


def test_asyncio_timeout_cancels_and_uncancels_the_task(server):
    answer = server.get("/timeout").json()
    assert answer == {"outcome": "timed out", "cancelling": 0}
    assert answer == under_asyncio_task("/timeout")


def test_a_task_group_cancels_its_children_and_reports_the_failure(server):
    answer = server.get("/task-group").json()
    assert answer["outcome"] == ["child failed"]
    # TaskGroup before 3.12.x/3.13 leaves its parent's cancel request counted: the same count as asyncio.Task's.
    assert answer == under_asyncio_task("/task-group")


def test_cancel_with_a_message_reaches_the_coroutine_through_its_waiter(server):
    answer = server.get("/cancelled-with-message").json()
    assert answer == {"outcome": ["stop waiting"], "waiter_cancelled": True, "cancelling": 0}
    assert answer == under_asyncio_task("/cancelled-with-message")


def test_cancel_asked_while_running_lands_at_the_next_wait(server):
    answer = server.get("/cancelled-before-waiting").json()
    assert answer == {"requested": True, "outcome": ["asked early"], "must_cancel": False}
    assert answer == under_asyncio_task("/cancelled-before-waiting")


def test_a_yield_that_is_not_a_future_is_thrown_back_as_runtime_error(server):
    assert "bad yield" in server.get("/bad-yield").json()["outcome"]


def test_anyio_cancel_scope_moves_on(server):
    pytest.importorskip("anyio")
    answer = server.get("/anyio-scope").json()
    assert answer == {"cancelled_caught": True, "cancelling": 0}
    assert answer == under_asyncio_task("/anyio-scope")


def test_done_callbacks_see_the_finished_task(server, tmp_path):
    marker = tmp_path / "watched"
    assert server.get(f"/watched?marker={marker}").json() == {"watching": True}
    wait_until(marker.exists, 10, "the done callback ran")
    assert json.loads(marker.read_text()) == {"done": True, "result": "ignored"}


def test_another_task_can_wait_for_the_request(server, tmp_path):
    marker = tmp_path / "gathered"
    assert server.get(f"/gathered?marker={marker}").json() == {"waited_on": True}
    wait_until(marker.exists, 10, "asyncio.wait returned")
    assert json.loads(marker.read_text()) == {"done": 1, "pending": 0}
    assert server.get("/protocol").status == 200


def test_a_task_settled_from_outside_still_ends_its_request(server):
    with server.connect() as conn:
        conn.send(b"GET /settled-from-outside HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().json() == {"answered": True}
        conn.send(b"GET /protocol HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().json()["is_future"] is True
    server.wait_for_log("ended with an error of its own")
