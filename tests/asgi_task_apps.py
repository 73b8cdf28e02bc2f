"""ASGI apps that look at the task their request runs as (test_asgi_task.py):
what asyncio, anyio and contextvars see of it. Each answers JSON."""
import asyncio
import contextvars
import json
import os
import sys

from asgi_apps import lifespan

REQUEST_VALUE = contextvars.ContextVar("request_value", default="unset")


async def respond_json(send, value):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(value).encode()})


def write_marker(path, value):
    with open(path + ".partial", "w") as marker:
        marker.write(json.dumps(value))
    os.replace(path + ".partial", path)


def query_of(scope):
    return dict(pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair)


async def protocol(scope, receive, send):
    task = asyncio.current_task()
    seen = {
        "is_future": isinstance(task, asyncio.Future),
        "listed_before_waiting": task in asyncio.all_tasks(),
        "name": task.get_name(),
        "coro": task.get_coro().cr_code.co_name,
        "context_is_a_context": isinstance(task.get_context(), contextvars.Context),
        "done_while_running": task.done(),
        "cancelling": task.cancelling(),
        "must_cancel": task._must_cancel,
        "waiter_while_running": repr(task._fut_waiter),
        "repr_pending": "pending" in repr(task).lower(),
        "stack_frames": len(task.get_stack()),
        "type_references": sys.getrefcount(type(task)),
    }
    await asyncio.sleep(0)  # a bare yield: one turn of the loop
    await asyncio.sleep(0.001)  # a timer's future
    seen["same_task_after_waiting"] = asyncio.current_task() is task
    seen["listed_while_waiting"] = task in asyncio.all_tasks()
    seen["loop_is_running_loop"] = task.get_loop() is asyncio.get_running_loop()
    try:
        task.set_result(1)
    except RuntimeError:
        seen["set_result_refused"] = True
    await respond_json(send, seen)


async def context(scope, receive, send):
    """The value a request sets stays its own across its waits, whatever
    the requests beside it set; each starts from the server's context."""
    before = REQUEST_VALUE.get()
    mine = query_of(scope)["value"]
    REQUEST_VALUE.set(mine)
    await asyncio.sleep(float(query_of(scope).get("sleep", "0")))
    await respond_json(send, {"before": before, "after": REQUEST_VALUE.get(), "mine": mine})


async def timeout(scope, receive, send):
    task = asyncio.current_task()
    try:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(30)
        outcome = "slept"
    except TimeoutError:
        outcome = "timed out"
    await respond_json(send, {"outcome": outcome, "cancelling": task.cancelling()})


async def task_group(scope, receive, send):
    async def fails():
        await asyncio.sleep(0.01)
        raise ValueError("child failed")

    async def waits():
        await asyncio.sleep(30)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(waits())
            group.create_task(fails())
        outcome = "no error"
    except ExceptionGroup as errors:  # noqa: F821 (3.11+, as the server is)
        outcome = [str(error) for error in errors.exceptions]
    await respond_json(send, {"outcome": outcome, "cancelling": asyncio.current_task().cancelling()})


async def cancelled_with_message(scope, receive, send):
    """Another task cancels this one while it waits: the message reaches it,
    and once it has taken the cancel back (uncancel) it answers."""
    task = asyncio.current_task()
    asyncio.get_running_loop().call_later(0.01, task.cancel, "stop waiting")
    waiting = asyncio.get_running_loop().create_future()
    try:
        await waiting
        outcome = "not cancelled"
    except asyncio.CancelledError as error:
        outcome = list(error.args)
        task.uncancel()
    await respond_json(send, {"outcome": outcome, "waiter_cancelled": waiting.cancelled(),
                              "cancelling": task.cancelling()})


async def cancelled_before_waiting(scope, receive, send):
    """A cancel asked while the task runs lands at its next wait."""
    task = asyncio.current_task()
    requested = task.cancel("asked early")
    try:
        await asyncio.sleep(0)
        outcome = "not cancelled"
    except asyncio.CancelledError as error:
        outcome = list(error.args)
        task.uncancel()
    await respond_json(send, {"requested": requested, "outcome": outcome, "must_cancel": task._must_cancel})


class _BadYield:
    def __await__(self):
        yield 42


async def bad_yield(scope, receive, send):
    try:
        await _BadYield()
        outcome = "accepted"
    except RuntimeError as error:
        outcome = str(error)
    await respond_json(send, {"outcome": outcome})


async def anyio_scope(scope, receive, send):
    import anyio

    with anyio.move_on_after(0.05) as cancel_scope:
        await anyio.sleep(30)
    await respond_json(send, {"cancelled_caught": cancel_scope.cancelled_caught,
                              "cancelling": asyncio.current_task().cancelling()})


async def watched(scope, receive, send):
    """A done callback on the request's task sees how it ended."""
    task = asyncio.current_task()
    path = query_of(scope)["marker"]

    def record(finished):
        write_marker(path, {"done": finished.done(), "result": finished.result()})

    task.add_done_callback(record)
    await respond_json(send, {"watching": True})
    return "ignored"  # an ASGI app's return value is not its task's business


async def gathered(scope, receive, send):
    """Another task waits for this one with asyncio.wait, as a shutdown does."""
    task = asyncio.current_task()
    path = query_of(scope)["marker"]

    async def wait_for_request():
        done, pending = await asyncio.wait([task])
        write_marker(path, {"done": len(done), "pending": len(pending)})

    asyncio.get_running_loop().create_task(wait_for_request())
    await asyncio.sleep(0.01)
    await respond_json(send, {"waited_on": True})


async def settled_from_outside(scope, receive, send):
    """asyncio.Future's own cancel() on the task, going round its cancel():
    the task cannot settle its future when the coroutine returns."""
    await respond_json(send, {"answered": True})
    asyncio.Future.cancel(asyncio.current_task())


ROUTES = {
    "/settled-from-outside": settled_from_outside,
    "/protocol": protocol,
    "/context": context,
    "/timeout": timeout,
    "/task-group": task_group,
    "/cancelled-with-message": cancelled_with_message,
    "/cancelled-before-waiting": cancelled_before_waiting,
    "/bad-yield": bad_yield,
    "/anyio-scope": anyio_scope,
    "/watched": watched,
    "/gathered": gathered,
}


async def routing(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    return await ROUTES[scope["path"]](scope, receive, send)
