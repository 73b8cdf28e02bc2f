"""gunicorn's per-request hooks in ursa's workers: pre_request(worker, req)
before the app is called, post_request(worker, req, environ, resp) once
the response is sent.

gunicorn gives them its own parser's Request and Response objects, which
ursa does not build (its requests are parsed in C). Hooks get the small
objects below instead, with the attributes gunicorn's hooks use:

  req   method, uri (path and query as sent), path, query, version (a
        tuple: (1, 1)), scheme, headers (a list of (NAME, value), names
        upper-case as gunicorn gives them), remote_addr
  resp  status ('200 OK'), status_code (200), headers (a list of
        (name, value)), sent (body bytes sent)

For a WSGI app, pre_request runs in a wrapper around the app, and
post_request from the core's after-response call (the access log's), so
neither changes how the body is sent. For an ASGI app both run in a
wrapper around the app, for "http" scopes only: post_request once the app
returns, and its `environ` is the scope. A hook that raises: in
pre_request the request gets a 500 (as in gunicorn), in post_request the
traceback is logged and nothing else changes.
"""
import logging
from http import HTTPStatus

log = logging.getLogger("ursa.error")

HOOK_REQUEST_KEY = "ursa.hook_request"


class HookRequest:
    """What pre_request and post_request get as `req`."""

    __slots__ = ("method", "uri", "path", "query", "version", "scheme", "headers", "remote_addr", "response")

    def __init__(self, method, path, query, version, scheme, headers, remote_addr):
        self.method = method
        self.path = path
        self.query = query
        self.uri = path + ("?" + query if query else "")
        self.version = version
        self.scheme = scheme
        self.headers = headers
        self.remote_addr = remote_addr
        self.response = HookResponse()

    @classmethod
    def from_environ(cls, environ):
        headers = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[len("HTTP_"):].replace("_", "-"), value))
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                headers.append((key.replace("_", "-"), value))
        uri = environ.get("RAW_URI")
        path, _, query = uri.partition("?") if uri else (environ.get("PATH_INFO", ""), "",
                                                         environ.get("QUERY_STRING", ""))
        return cls(environ.get("REQUEST_METHOD", ""), path, query,
                   _version_tuple(environ.get("SERVER_PROTOCOL", "")), environ.get("wsgi.url_scheme", "http"),
                   headers, environ.get("REMOTE_ADDR", ""))

    @classmethod
    def from_scope(cls, scope):
        headers = [(bytes(name).decode("latin-1").upper(), bytes(value).decode("latin-1"))
                   for name, value in scope.get("headers", ())]
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else scope.get("path", "")
        client = scope.get("client")
        return cls(scope.get("method", ""), path, scope.get("query_string", b"").decode("latin-1"),
                   _version_tuple("HTTP/" + scope.get("http_version", "")), scope.get("scheme", "http"), headers,
                   client[0] if client else "")

    def __repr__(self):
        return f"<request {self.method} {self.uri}>"


class HookResponse:
    """What post_request gets as `resp`."""

    __slots__ = ("status", "status_code", "headers", "sent")

    def __init__(self):
        self.status = None
        self.status_code = None
        self.headers = []
        self.sent = 0

    def set_status(self, status):
        """`status` is a WSGI status line ('200 OK') or an int."""
        if isinstance(status, int):
            self.status_code = status
            self.status = f"{status} {_reason_phrase(status)}".rstrip()
        else:
            self.status = status
            code = status.split(" ", 1)[0]
            self.status_code = int(code) if code.isdigit() else None

    def __repr__(self):
        return f"<response {self.status}>"


def _version_tuple(protocol):
    major, _, minor = protocol.partition("/")[2].partition(".")
    return (int(major), int(minor or 0)) if major.isdigit() and (minor or "0").isdigit() else (1, 1)


def _reason_phrase(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class RequestHooks:
    """The worker's pre_request and post_request: wrap_wsgi/wrap_asgi
    put them around the app, after_response is the core's call after each
    WSGI response (chained with the access log, if any)."""

    def __init__(self, settings, worker):
        self.settings = settings
        self.worker = worker
        self.pre_request = settings.hooks.get("pre_request")
        self.post_request = settings.hooks.get("post_request")

    @property
    def wanted(self):
        return self.pre_request is not None or self.post_request is not None

    def wrap_wsgi(self, app):
        pre_request, worker = self.pre_request, self.worker

        def app_with_request_hooks(environ, start_response):
            request = HookRequest.from_environ(environ)
            environ[HOOK_REQUEST_KEY] = request
            if pre_request is not None:
                pre_request(worker, request)

            def start_response_noting_status(status, headers, exc_info=None):
                request.response.set_status(status)
                request.response.headers = list(headers)
                if exc_info is None:
                    return start_response(status, headers)
                return start_response(status, headers, exc_info)
            return app(environ, start_response_noting_status)
        return app_with_request_hooks

    def after_response(self, access_log):
        """The core's after-response callable: the access log's line, then
        post_request for a request the app was called for."""
        post_request, worker = self.post_request, self.worker

        def after_each_response(environ, status, body_bytes, duration_us):
            try:
                if access_log is not None:
                    access_log(environ, status, body_bytes, duration_us)
            finally:
                request = environ.get(HOOK_REQUEST_KEY)
                if post_request is not None and request is not None:
                    response = request.response
                    if response.status_code != status:  # the app failed and the server answered
                        response.set_status(status)
                    response.sent = body_bytes
                    self.call_post_request(request, environ, response)
        return after_each_response

    def call_post_request(self, request, environ, response):
        try:
            self.post_request(self.worker, request, environ, response)
        except Exception:
            log.exception("the post_request hook failed for %s %s", request.method, request.uri)

    def wrap_asgi(self, app):
        pre_request, post_request, worker = self.pre_request, self.post_request, self.worker

        async def app_with_request_hooks(scope, receive, send):
            if scope.get("type") != "http":
                return await app(scope, receive, send)
            request = HookRequest.from_scope(scope)
            response = request.response
            if pre_request is not None:
                pre_request(worker, request)

            async def send_noting_response(message):
                kind = message.get("type")
                if kind == "http.response.start":
                    response.set_status(message.get("status", 200))
                    response.headers = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                                        for name, value in message.get("headers", ())]
                elif kind == "http.response.body":
                    response.sent += len(message.get("body", b""))
                return await send(message)
            try:
                return await app(scope, receive, send_noting_response)
            finally:
                if post_request is not None:
                    if response.status_code is None:  # the app failed before it answered: the server's 500
                        response.set_status(500)
                    self.call_post_request(request, scope, response)
        return app_with_request_hooks
