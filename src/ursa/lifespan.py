"""The ASGI lifespan protocol around a worker's serving.

``startup(loop)`` runs before the worker accepts its first connection: the
app gets ``lifespan.startup`` and the worker waits for its answer. A
``lifespan.startup.failed`` (or, with ``lifespan="on"``, an app that
raises) fails the worker's start: serve() raises LifespanFailed. With
``lifespan="auto"`` (the default) an app that raises before answering is
taken not to support the protocol, as uvicorn does, and is served without
it. ``shutdown(loop)`` runs once the connections are gone: the tasks still
running are cancelled (and given a few seconds to end), then the app gets
``lifespan.shutdown`` and up to ``timeout`` seconds to answer.

The ``state`` dict the app fills during startup is copied into every
request's scope (the ASGI lifespan state extension).
"""
import asyncio
import logging

from .interfaces import LIFESPAN_MODES as MODES
from .interfaces import LifespanFailed
CANCEL_SECONDS = 3.0

log = logging.getLogger("ursa.error")


class Lifespan:
    def __init__(self, app, mode="auto", timeout=30.0, on_ready=None):
        if mode not in MODES:
            raise ValueError(f"lifespan must be one of {', '.join(MODES)}, not {mode!r}")
        self.app = app
        self.mode = mode
        self.timeout = timeout
        self.on_ready = on_ready
        self.task = None
        self.supported = False
        self.started = False

    def startup(self, loop):
        """Run the app's startup; return the lifespan state for the scopes.
        on_ready() follows a startup that completed (or that did not run)."""
        state = self._run_startup(loop)
        if self.on_ready is not None:
            self.on_ready()
        return state

    def _run_startup(self, loop):
        if self.mode == "off":
            return None
        self.state = {}
        self.messages = asyncio.Queue()
        self.startup_answer = loop.create_future()
        self.shutdown_answer = loop.create_future()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self.task = loop.create_task(self._main(scope))
        self.messages.put_nowait({"type": "lifespan.startup"})
        outcome = loop.run_until_complete(self.startup_answer)
        if outcome == "unsupported":
            return None
        if outcome != "complete":
            raise LifespanFailed(f"the ASGI application's lifespan startup failed: {outcome}")
        self.supported = self.started = True
        return self.state

    async def _main(self, scope):
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as error:  # noqa: B902 - the app's any failure is reported, not raised here
            if not self.startup_answer.done():
                if self.mode == "auto":
                    log.info("ursa: the ASGI application does not support lifespan (%r); serving without it",
                             error)
                    self.startup_answer.set_result("unsupported")
                else:
                    log.error("ursa: the ASGI application's lifespan raised", exc_info=error)
                    self.startup_answer.set_result(f"it raised {error!r}")
            else:
                log.error("ursa: the ASGI application's lifespan raised", exc_info=error)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            # An app that returned without answering has nothing to run.
            if not self.startup_answer.done():
                self.startup_answer.set_result("unsupported" if self.mode == "auto" else
                                               "it returned without answering lifespan.startup")
            if not self.shutdown_answer.done():
                self.shutdown_answer.set_result("complete")

    async def _receive(self):
        return await self.messages.get()

    async def _send(self, message):
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "lifespan.startup.complete":
            self._answer(self.startup_answer, "complete")
        elif kind == "lifespan.startup.failed":
            self._answer(self.startup_answer, message.get("message") or "lifespan.startup.failed")
        elif kind == "lifespan.shutdown.complete":
            self._answer(self.shutdown_answer, "complete")
        elif kind == "lifespan.shutdown.failed":
            self._answer(self.shutdown_answer, message.get("message") or "lifespan.shutdown.failed")
        else:
            raise ValueError(f"unexpected ASGI lifespan message: {message!r}")

    @staticmethod
    def _answer(future, outcome):
        if future.done():
            raise RuntimeError(f"ASGI lifespan: answered twice ({outcome})")
        future.set_result(outcome)

    def shutdown(self, loop):
        """Cancel what still runs, then run the app's shutdown."""
        if loop.is_closed():
            return
        leftover = [task for task in asyncio.all_tasks(loop) if task is not self.task and not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=CANCEL_SECONDS))
        if self.started:
            self.messages.put_nowait({"type": "lifespan.shutdown"})
            try:
                outcome = loop.run_until_complete(asyncio.wait_for(asyncio.shield(self.shutdown_answer),
                                                                   self.timeout))
            except asyncio.TimeoutError:
                outcome = f"no answer within {self.timeout:g} s"
            if outcome != "complete":
                log.error("ursa: the ASGI application's lifespan shutdown failed: %s", outcome)
        if self.task is not None and not self.task.done():
            self.task.cancel()
            loop.run_until_complete(asyncio.wait([self.task], timeout=CANCEL_SECONDS))
        loop.run_until_complete(loop.shutdown_asyncgens())
