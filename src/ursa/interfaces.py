"""Which interface an app speaks: WSGI (PEP 3333) or ASGI 3.

``interface="auto"`` (the default everywhere) looks at the app without
calling it: an ``async def`` function, or an object whose ``__call__`` is
one (Starlette, FastAPI, Django's ASGIHandler, Quart), is ASGI; so is a
plain callable taking exactly three positional parameters (scope, receive,
send), as ASGI middleware written as a class often is. Everything else is
WSGI, as it always was for bjoern. "wsgi" or "asgi" says it outright.

No ``inspect`` here: it would cost every WSGI worker the memory of the
modules it imports.
"""
import functools

INTERFACES = ("auto", "wsgi", "asgi")
# An ASGI app's lifespan (ursa.lifespan, which imports asyncio: not here).
LIFESPAN_MODES = ("auto", "on", "off")


class LifespanFailed(RuntimeError):
    """The ASGI app's lifespan startup failed: the server does not serve."""
_CO_COROUTINE = 0x80
_CO_VARARGS = 0x04


def choose(app, interface="auto"):
    """Return "wsgi" or "asgi" for `app`; ValueError for an unknown choice."""
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    if interface != "auto":
        return interface
    return "asgi" if looks_asgi(app) else "wsgi"


def _function_of(app):
    """The function that runs when `app` is called, and how many leading
    parameters are bound already (self, partial arguments)."""
    bound = 0
    for _ in range(8):  # wrappers of wrappers, but never forever
        if isinstance(app, functools.partial):
            bound += len(app.args)
            app = app.func
        elif hasattr(app, "__func__") and hasattr(app, "__self__"):  # a bound method
            bound += 1
            app = app.__func__
        elif hasattr(app, "__code__"):
            return app, bound
        elif not isinstance(app, type) and hasattr(type(app), "__call__"):
            app = type(app).__call__
            bound += 1
        else:
            return None, bound
    return None, bound


def looks_asgi(app):
    function, bound = _function_of(app)
    if function is None:
        return False
    code = function.__code__
    # asyncio.iscoroutinefunction's marks: a decorated sync function that
    # returns an awaitable (inspect.markcoroutinefunction, asgiref's).
    if code.co_flags & _CO_COROUTINE or getattr(function, "_is_coroutine_marker", None) is not None:
        return True
    if getattr(function, "_is_coroutine", None) is not None:
        return True
    if code.co_flags & _CO_VARARGS:
        return False
    return code.co_argcount - bound == 3
