"""A gunicorn worker class that serves with ursa's C loop:

    gunicorn -k ursa.gunicorn.Worker -w 4 -b 127.0.0.1:8000 app:app

The app may be WSGI or ASGI (told apart as ursa.serve() does, see
ursa.interfaces); an ASGI app's lifespan runs in each worker.

gunicorn keeps doing what it does (binding, forking, restarting workers,
signals, hooks, logging config); each worker runs ursa.serve() on the
sockets gunicorn bound. gunicorn settings map to ursa's options:

    limit_request_line        -> max_request_line   (0: unlimited)
    limit_request_fields      -> max_headers
    limit_request_field_size  -> max_header_line    (0: unlimited)
    keepalive                 -> keepalive_timeout
    worker_connections        -> max_connections
    graceful_timeout          -> graceful_timeout
    max_requests (+ jitter)   -> max_requests
    accesslog, access_log_format: lines go to gunicorn's access logger

The worker tells the arbiter it is alive (self.notify()) from a SIGALRM
timer, but only while the loop itself is in control: a request stuck in
the app for longer than --timeout gets the worker killed, as with
gunicorn's own workers. pre_request/post_request hooks are not called
(they take gunicorn's request objects, which ursa does not build).
"""
import os
import signal
import sys

from gunicorn.workers import base

import ursa
from .accesslog import capture_asgi_response_headers, capture_response_headers, compile_format
from .interfaces import looks_asgi

# ursa has no "unlimited" for sizes; this stands in for gunicorn's 0.
UNLIMITED_BYTES = 1 << 40
HEARTBEAT_MAX_SECONDS = 1.0


class Worker(base.Worker):

    def init_signals(self):
        super().init_signals()
        signal.signal(signal.SIGALRM, self.on_heartbeat)
        # The heartbeat must not make the app's blocking calls fail with EINTR.
        signal.siginterrupt(signal.SIGALRM, False)

    def handle_exit(self, sig, frame):
        self.alive = False
        ursa.stop()

    def handle_quit(self, sig, frame):
        """SIGQUIT/SIGINT: gunicorn's quick shutdown."""
        self.alive = False
        self.cfg.worker_int(self)
        # An exception raised in a handler stops the loop gracefully, unless
        # a stop is already under way: then it closes every connection at
        # once. So: begin the stop, then raise.
        ursa.stop()
        sys.exit(0)

    def run(self):
        options = self.ursa_options()
        app = self.wsgi
        access_log = self.access_logger()
        if access_log is not None:
            options["access_log"] = access_log
            if access_log.needs_response_headers:
                app = capture_asgi_response_headers(app) if looks_asgi(app) else capture_response_headers(app)
        # self.timeout is half of gunicorn's --timeout (0: no timeout).
        interval = HEARTBEAT_MAX_SECONDS
        if self.timeout:
            interval = max(0.05, min(HEARTBEAT_MAX_SECONDS, self.timeout / 2))
        self.notify()
        signal.setitimer(signal.ITIMER_REAL, interval, interval)
        try:
            if self.alive:
                ursa.serve(self.sockets, app, **options)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def ursa_options(self):
        cfg = self.cfg
        if cfg.is_ssl:
            raise RuntimeError("ursa.gunicorn.Worker does not do TLS; terminate TLS in a proxy in front")
        options = {
            "max_request_line": cfg.limit_request_line or UNLIMITED_BYTES,
            "max_headers": max(1, cfg.limit_request_fields),
            "max_header_line": cfg.limit_request_field_size or UNLIMITED_BYTES,
            "keepalive_timeout": float(cfg.keepalive),
            "max_connections": max(1, cfg.worker_connections),
            "graceful_timeout": float(cfg.graceful_timeout),
            "multiprocess": cfg.workers > 1,
            # gunicorn's arbiter and the other workers share the sockets.
            "shared_listeners": True,
        }
        if self.max_requests < sys.maxsize:  # gunicorn's "no limit" is sys.maxsize
            options["max_requests"] = self.max_requests
        return options

    def access_logger(self):
        """An access_log callable feeding gunicorn's access logger, or None
        when gunicorn's configuration has access logging off."""
        enabled = getattr(self.log, "access_log_enabled", None)
        if enabled is None:
            enabled = bool(self.cfg.accesslog or self.cfg.logconfig)
        if not enabled:
            return None
        return GunicornAccessLog(self.log.access_log, self.cfg.access_log_format)

    def on_heartbeat(self, number, frame):
        if not self.alive:
            # Again: a SIGTERM handled just before the loop started found
            # no server to stop.
            ursa.stop()
            return
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            self.handle_exit(number, frame)
            return
        # `frame` is where Python was when the signal was handled. In the
        # loop's own frame, no request is running: the worker is healthy.
        # Anywhere else, the app has the loop; gunicorn's timeout decides.
        if frame is not None and frame.f_code is SERVE_CODE:
            self.notify()


SERVE_CODE = ursa.serve.__code__


class GunicornAccessLog:
    def __init__(self, logger, log_format):
        self.logger = logger
        self.format_line, self.needs_response_headers = compile_format(log_format)

    def __call__(self, environ, status, body_bytes, duration_us):
        self.logger.info(self.format_line(environ, status, body_bytes, duration_us)[:-1])
