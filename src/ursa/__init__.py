"""ursa: a fast, small WSGI and ASGI server with a C core (libev + llhttp).

The public API is bjoern's, so ``import ursa as bjoern`` works::

    ursa.run(app, "0.0.0.0", 8000)            # bind, listen, serve
    ursa.listen(app, "unix:/tmp/app.sock")    # bind now ...
    ursa.run()                                # ... serve later
    ursa.server_run(sock_or_fd, app)          # serve a socket you made

The app may be WSGI or ASGI 3: ``interface="auto"`` tells them apart (see
ursa.interfaces), "wsgi" or "asgi" says which; an ASGI app's lifespan runs
around the serving (``lifespan="auto"``, "on" or "off"; see ursa.lifespan).
Every keyword in ``OPTIONS`` (limits, timeouts, hooks) is accepted by run(),
listen(), server_run() and serve(); see README.md for their meaning.
"""
import errno
import os
import socket
import stat

# The C module behind `signal`: the same functions without the enum classes
# signal.py builds at import, which would be most of ursa's own footprint.
import _signal as signal

from . import _core

__all__ = ["run", "listen", "server_run", "serve", "stop", "bind_and_listen", "ClientDisconnected", "OPTIONS",
           "__version__"]
__version__ = "0.1.0"

DEFAULT_LISTEN_BACKLOG = 1024

# Server options with their defaults; the C core holds the same defaults and
# is the one that checks the values. Sizes are bytes, times are seconds.
OPTIONS = dict(_core.DEFAULT_OPTIONS)

# What send() of an ASGI app raises once its client is gone (an OSError).
ClientDisconnected = _core.ClientDisconnected

# Keywords serve() also takes that are not settings of a deployment:
# bjoern's keepalive and tcp_nodelay, and what the prefork master gives
# its workers. They have no command-line flags.
_API_ONLY_OPTIONS = frozenset(_core.API_ONLY_OPTIONS)

_default_instance = None  # (socket, app, options) set by listen(), used by run()
# The socket file run() is serving on. It is removed as soon as a stop
# begins, so that new clients are refused while the connections already
# queued are served, rather than queued behind a socket about to close.
_owned_unix_path = None


def bind_and_listen(host, port=None, reuse_port=False, listen_backlog=DEFAULT_LISTEN_BACKLOG):
    """Return a listening socket for ``host``/``port``.

    ``host`` is an IPv4 or IPv6 address or name (with ``port``), ``unix:/path``
    for a unix socket file, or ``unix:@name`` for a Linux abstract socket.
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    if host.startswith("unix:"):
        if port is not None:
            raise ValueError(f"a unix socket takes no port: host={host!r}, port={port!r}")
        return _bind_unix(host[len("unix:"):], listen_backlog)
    if port is None:
        raise ValueError(f"a TCP host needs a port: host={host!r}")
    return _bind_tcp(host, port, reuse_port, listen_backlog)


def _bind_unix(path, backlog):
    if not path or path == "@":
        raise ValueError("unix socket needs a path: 'unix:/path' or 'unix:@name'")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if path.startswith("@"):
            sock.bind("\0" + path[1:])
        else:
            _remove_stale_socket_file(path)
            sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale_socket_file(path):
    # A socket file left by a server that died is in the way of bind(); one
    # a server is listening on is that server's, and any other kind of file
    # is the user's: neither is ever removed.
    if _stale_socket_file(path):
        os.unlink(path)


def _stale_socket_file(path):
    """True if a socket file nobody listens on is at `path`; False if there
    is no socket file. Raises OSError (EADDRINUSE) if a server listens on
    it, and the connect's own error if it cannot be checked."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except FileNotFoundError:
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a full backlog answers EAGAIN at once: a live server
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        return True
    except FileNotFoundError:  # removed meanwhile
        return False
    except BlockingIOError:
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"another server is listening on the unix socket {path}; stop it or "
                                    f"choose another path")


def _bind_tcp(host, port, reuse_port, backlog):
    # An ASCII host goes as bytes: a str would be IDNA-encoded, and loading
    # that codec (with unicodedata) costs the process a few hundred KiB.
    name = host.encode("ascii") if host.isascii() else host
    infos = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def serve(sockets, app, *, interface="auto", lifespan="auto", on_ready=None, **options):
    """Serve ``app`` (WSGI or ASGI, see ``interface``) on every listening
    socket (or fd) in ``sockets``. ``on_ready()``, if given, is called once
    the app is ready to be served: at once for WSGI, after the lifespan
    startup for ASGI.

    Returns when stop() is called, on SIGTERM (when no Python handler is set
    for it) and after ``max_requests``; raises KeyboardInterrupt on SIGINT.
    Either way, requests in flight are finished first (up to
    ``graceful_timeout`` seconds).
    """
    fds = [s if isinstance(s, int) else s.fileno() for s in sockets]
    if not fds:
        raise ValueError("serve() needs at least one listening socket")
    _check_options(options)
    from .interfaces import choose
    if choose(app, interface) == "asgi":
        from .lifespan import Lifespan
        timeout = options.get("graceful_timeout", OPTIONS["graceful_timeout"])
        options = dict(options, interface="asgi", lifespan=Lifespan(app, lifespan, timeout, on_ready))
        if options.get("access_log") is not None:
            from .accesslog import for_scopes
            options["access_log"] = for_scopes(options["access_log"])
    elif on_ready is not None:
        on_ready()
    with _SignalWakeup() as wakeup:
        _core.serve(fds, app, wakeup.read_fd, **options)
    if wakeup.interrupted:
        raise KeyboardInterrupt


def server_run(sock, app, **options):
    """bjoern's server_run: serve ``app`` on one socket object or fd."""
    serve([sock], app, **options)


def listen(app, host, port=None, reuse_port=False, listen_backlog=DEFAULT_LISTEN_BACKLOG, **options):
    """Bind ``host``/``port`` now; a later run() serves ``app`` there."""
    global _default_instance
    if _default_instance is not None:
        raise RuntimeError("listen() was already called; call run() to serve it first")
    _check_options(options)
    sock = bind_and_listen(host, port, reuse_port, listen_backlog)
    _default_instance = (sock, app, options)
    return sock


def run(*args, **kwargs):
    """run(app, host, port=None, reuse_port=False, listen_backlog=1024, **options), or
    run() after listen(). Removes a unix socket file it served on when it returns."""
    global _default_instance, _owned_unix_path
    if args or kwargs:
        listen(*args, **kwargs)
    if _default_instance is None:
        raise RuntimeError("run() needs an app and a host, or a listen() call before it")
    sock, app, options = _default_instance
    _owned_unix_path = _socket_file_of(sock)
    try:
        server_run(sock, app, **options)
    finally:
        _default_instance = None
        sock.close()
        _remove_owned_socket_file()


def stop():
    """Ask the running server to stop gracefully (safe from a signal handler).
    Returns whether a server was running."""
    _remove_owned_socket_file()
    return _core.stop()


def _check_options(options):
    unknown = sorted(set(options) - set(OPTIONS) - _API_ONLY_OPTIONS - {"interface", "lifespan", "on_ready"})
    if unknown:
        raise TypeError(f"unknown server option(s): {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")


def _socket_file_of(sock):
    """The path of a unix socket bound to a file, else None."""
    if sock.family != socket.AF_UNIX:
        return None
    name = sock.getsockname()
    return name if isinstance(name, str) and name and not name.startswith("\0") else None


def _remove_owned_socket_file():
    global _owned_unix_path
    path, _owned_unix_path = _owned_unix_path, None
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class _SignalWakeup:
    """Lets the C loop notice signals while it sleeps in epoll.

    Python's C-level signal handler writes to the wakeup fd; the core watches
    the read end and then runs the Python handlers (PyErr_CheckSignals).
    Where the program left them at their defaults, SIGTERM becomes a graceful
    stop, and so does a first SIGINT, after which serve() raises
    KeyboardInterrupt as any Python program would; a second SIGINT stops at
    once.
    Outside the main thread signals cannot be handled, and nothing is set up.
    """

    def __enter__(self):
        self.previous_fd = None
        self.previous_term = None
        self.pipe = None
        self.read_fd = -1
        self.interrupted = False
        self.previous_int = None
        try:
            read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except AttributeError:  # pragma: no cover - pipe2 is Linux-only
            read_fd, write_fd = os.pipe()
            for fd in (read_fd, write_fd):
                os.set_blocking(fd, False)
        try:
            self.previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            os.close(read_fd)
            os.close(write_fd)
            return self
        self.pipe = (read_fd, write_fd)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self.previous_term = signal.signal(signal.SIGTERM, _stop_on_signal)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous_int = signal.signal(signal.SIGINT, self._interrupt)
        self.read_fd = read_fd
        return self

    def _interrupt(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        stop()

    def __exit__(self, *exc):
        if self.pipe is None:
            return False
        if self.previous_term is not None:
            signal.signal(signal.SIGTERM, self.previous_term)
        if self.previous_int is not None:
            signal.signal(signal.SIGINT, self.previous_int)
        signal.set_wakeup_fd(self.previous_fd)
        for fd in self.pipe:
            os.close(fd)
        return False


def _stop_on_signal(signum, frame):
    stop()
