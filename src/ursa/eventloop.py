"""asyncio on ursa's libev loop.

``EventLoop`` is an ``asyncio.SelectorEventLoop`` whose hot path is C
(``ursa._core.EventLoopCore``, src/ursa/_core/asgi/): the ready queue,
``call_soon``/``call_later``/``call_at``/``time``, handles, one ``ev_timer`` per
timer, and a selector with one ``ev_io`` per fd whose callbacks queue the
readers and writers directly. libev runs the loop and asyncio is its guest, so
the same ``ev_loop`` can carry ursa's own C watchers: the ASGI interface makes
its event loop on the server's ``ev_loop`` (``event_loop_new()`` in
asgi/loop.h) and runs it with the server. Everything else (transports,
servers, subprocesses, signals, executors) is the stock Python code.

Used on its own, it makes a libev loop of its own::

    loop = ursa.eventloop.new_event_loop()
    loop.run_until_complete(main())

    with asyncio.Runner(loop_factory=ursa.eventloop.new_event_loop) as runner:
        runner.run(main())

It needs Python 3.11 or newer. Not done in C: asyncio's debug-mode checks of
``call_soon``/``call_later``/``call_at`` (thread, callback), and slow-callback
warnings; its handles are ``ursa._core.Handle``/``TimerHandle``, with
asyncio's public API, not subclasses of asyncio's.
"""
import asyncio
import selectors
import sys
import threading
from asyncio import events

from . import _core

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop"]

NEEDS_PYTHON = "ursa's asyncio loop needs Python 3.11 or newer"


class _Selector(_core.EventLoopSelector, selectors.BaseSelector):
    """The event loop's selector: one ev_io per registered fd."""


class EventLoop(_core.EventLoopCore, asyncio.SelectorEventLoop):
    """An asyncio event loop on a libev loop: ``libev`` (a ``_core.LibevLoop``,
    the server's when the C core makes it), or one of its own."""

    def __init__(self, libev=None):
        if sys.version_info < (3, 11):
            raise RuntimeError(NEEDS_PYTHON)
        if libev is None:
            libev = _core.LibevLoop()
        self._libev = libev
        super().__init__(self._core_init(libev, _Selector))

    def run_forever(self):
        self._run_forever_setup()
        try:
            self._run()
        finally:
            self._run_forever_cleanup()

    def close(self):
        super().close()
        self._core_close()

    if not hasattr(asyncio.BaseEventLoop, "_run_forever_setup"):
        # Before 3.13, run_forever() did these itself, around _run_once();
        # the C core's event_loop_enter()/_exit() call them too.
        def _run_forever_setup(self):
            self._check_closed()
            self._check_running()
            self._set_coroutine_origin_tracking(self._debug)
            self._old_agen_hooks = sys.get_asyncgen_hooks()
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            events._set_running_loop(self)

        def _run_forever_cleanup(self):
            self._stopping = False
            self._thread_id = None
            events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            if self._old_agen_hooks is not None:
                sys.set_asyncgen_hooks(*self._old_agen_hooks)
                self._old_agen_hooks = None


def new_event_loop():
    """A new EventLoop on a libev loop of its own."""
    if sys.version_info < (3, 11):
        raise RuntimeError(NEEDS_PYTHON)
    return EventLoop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """``asyncio.set_event_loop_policy(EventLoopPolicy())``: the loops asyncio
    makes are ursa's."""

    def new_event_loop(self):
        return new_event_loop()
