"""Access logs in gunicorn's format language.

A format is a string with atoms like ``%(h)s`` (see ATOMS); the default is
the combined log format that Apache, nginx and log analysers know. The core
calls an AccessLog after each response with (environ, status_code,
body_bytes, duration_us); it formats one line and appends it to its file
with one write(), so workers sharing a file never interleave lines.

The format is compiled once into a single Python expression: a request then
pays for the atoms its format uses and nothing else.
"""
import base64
import os
import re
import time
from urllib.parse import quote

COMBINED_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

# atom -> (expression, escape?, meaning). Expressions see environ, status,
# body_bytes, duration_us and get (environ.get). Values marked escape? come
# from the client and may hold quotes or control characters.
ATOMS = {
    "h": ("get('REMOTE_ADDR') or '-'", True, "remote address"),
    "l": ("'-'", False, "'-' (identd, never known)"),
    "u": ("_remote_user(environ) if 'HTTP_AUTHORIZATION' in environ or 'REMOTE_USER' in environ else '-'",
          False, "user name from REMOTE_USER or Basic auth, or '-'"),
    "t": ("_clf_cache[1] if int(_time() - duration_us / 1000000) == _clf_cache[0] else "
          "_clf_time(duration_us)", False, "time the request was received, [10/Oct/2000:13:55:36 -0700]"),
    "r": ("get('REQUEST_METHOD', '-') + ' ' + (get('RAW_URI') or _raw_uri(environ)) + ' ' + "
          "get('SERVER_PROTOCOL', '-')", True, "request line, e.g. GET /path?q=1 HTTP/1.1"),
    "m": ("get('REQUEST_METHOD', '-')", False, "request method"),
    "U": ("get('PATH_INFO', '')", True, "URL path without query string"),
    "q": ("get('QUERY_STRING', '')", True, "query string"),
    "H": ("get('SERVER_PROTOCOL', '-')", False, "protocol"),
    "s": ("status", False, "status code"),
    "B": ("body_bytes", False, "response body bytes"),
    "b": ("(body_bytes or '-')", False, "response body bytes, or '-' for none (common log format)"),
    "f": ("get('HTTP_REFERER') or '-'", True, "referer"),
    "a": ("get('HTTP_USER_AGENT') or '-'", True, "user agent"),
    "T": ("duration_us // 1000000", False, "request time in whole seconds"),
    "M": ("duration_us // 1000", False, "request time in milliseconds"),
    "D": ("duration_us", False, "request time in microseconds"),
    "L": ("'%d.%06d' % divmod(duration_us, 1000000)", False, "request time in decimal seconds"),
    "p": ("_pid_atom()", False, "process id, as <1234>"),
}
# %({Name}i)s request header, %({Name}o)s response header, %({key}e)s environ value
BRACED_ATOM = re.compile(r"\{([^{}]+)\}([ioe])")
FORMAT_ITEM = re.compile(r"%%|%\(([^)]*)\)s|%")
RESPONSE_HEADERS_KEY = "ursa.response_headers"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class FormatError(ValueError):
    pass


def compile_format(log_format=None):
    """Return (format_line, needs_response_headers) for `log_format`.

    format_line(environ, status, body_bytes, duration_us) -> str, ending in
    a newline. needs_response_headers tells the caller to wrap the app with
    capture_response_headers(), which %({Name}o)s atoms read.
    """
    log_format = COMBINED_FORMAT if log_format is None else log_format
    template_parts = []
    values = []  # (expression, escape?) per atom, in order
    constants = {}
    needs_response_headers = False
    position = 0
    for match in FORMAT_ITEM.finditer(log_format):
        template_parts.append(log_format[position:match.start()])
        position = match.end()
        item = match.group(0)
        if item == "%%":
            template_parts.append("%%")
            continue
        if item == "%":
            raise FormatError(f"access log format {log_format!r}: a lone '%' at offset {match.start()}; "
                              f"write atoms as %(h)s and a literal percent as %%")
        atom = match.group(1)
        if atom in ATOMS:
            expression, escape, _ = ATOMS[atom]
            values.append((expression, escape))
        else:
            values.append(_braced_atom(atom, constants))
            needs_response_headers = needs_response_headers or atom.endswith("o")
        template_parts.append("%s")
    template_parts.append(log_format[position:])
    constants["_template"] = "".join(template_parts) + "\n"
    namespace = dict(_HELPERS, **constants)
    exec(compile(_format_function_source(values), "<access log format>", "exec"), namespace)
    return namespace["format_line"], needs_response_headers


def _braced_atom(atom, constants):
    braced = BRACED_ATOM.fullmatch(atom)
    if braced is None:
        known = " ".join(f"%({name})s" for name in ATOMS)
        raise FormatError(f"access log format: unknown atom %({atom})s; known: {known} "
                          f"%({{Header}}i)s %({{Header}}o)s %({{key}}e)s")
    name, source = braced.groups()
    constant = f"_key{len(constants)}"
    if source == "i":
        key = "HTTP_" + name.upper().replace("-", "_")
        constants[constant] = key[len("HTTP_"):] if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH") else key
        return f"get({constant}) or '-'", True
    if source == "e":
        constants[constant] = name
        return f"str(get({constant}, '-'))", True
    constants[constant] = name.lower()
    return f"_response_header(environ, {constant})", True


def _format_function_source(values):
    """The source of format_line for these atoms.

    Client-supplied values are checked together, once: almost every line
    needs no escaping, and one check is much cheaper than one per field.
    """
    lines = ["def format_line(environ, status, body_bytes, duration_us):", "    get = environ.get"]
    names = []
    for index, (expression, _) in enumerate(values):
        lines.append(f"    v{index} = {expression}")
        names.append(f"v{index}")
    risky = [name for name, (_, escape) in zip(names, values) if escape]
    plain = "".join(name + ", " for name in names)
    if risky:
        lines.append(f"    checked = {' + '.join(risky)}")
        lines.append("    if checked.isprintable() and '\"' not in checked and '\\\\' not in checked:")
        lines.append(f"        return _template % ({plain})")
        escaped = "".join((f"_escape({name}), " if name in risky else name + ", ") for name in names)
        lines.append(f"    return _template % ({escaped})")
    else:
        lines.append(f"    return _template % ({plain})")
    return "\n".join(lines) + "\n"


def _escape(text):
    """`text` made safe for one log line: quotes, backslashes and control
    characters become escapes, so a header cannot forge or split lines."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for char in text:
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")
    return "".join(out)


def _raw_uri(environ):
    """The request target, rebuilt when the server gives no RAW_URI."""
    uri = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/;=,@:+$!*'()~")
    query = environ.get("QUERY_STRING")
    return uri + "?" + query if query else uri


def _remote_user(environ):
    user = environ.get("REMOTE_USER")
    if user:
        return _escape(user)
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("latin-1")
        except ValueError:
            return "-"
        return _escape(decoded.partition(":")[0]) or "-"
    return "-"


def _response_header(environ, lower_name):
    for name, value in environ.get(RESPONSE_HEADERS_KEY, ()):
        if name.lower() == lower_name:
            return _escape(value)
    return "-"


def _pid_atom():
    return f"<{os.getpid()}>"


# [second, "[10/Oct/2000:13:55:36 -0700]"]: the %(t)s text of the last
# second seen; formatting happens once per second, not once per request.
_clf_cache = [None, ""]


def _clf_time(duration_us):
    received = int(time.time() - duration_us / 1000000)
    local = time.localtime(received)
    _clf_cache[1] = "[%02d/%s/%d:%02d:%02d:%02d %s]" % (
        local.tm_mday, _MONTHS[local.tm_mon - 1], local.tm_year,
        local.tm_hour, local.tm_min, local.tm_sec, time.strftime("%z", local))
    _clf_cache[0] = received
    return _clf_cache[1]


_HELPERS = {
    "_escape": _escape,
    "_raw_uri": _raw_uri,
    "_remote_user": _remote_user,
    "_response_header": _response_header,
    "_pid_atom": _pid_atom,
    "_clf_time": _clf_time,
    "_clf_cache": _clf_cache,
    "_time": time.time,
}


def environ_of_scope(scope):
    """The environ keys the atoms read, from an ASGI scope (a refused
    request's has only what was read of it)."""
    client = scope.get("client")
    environ = {"REMOTE_ADDR": client[0] if client else ""}
    if "method" in scope:
        environ["REQUEST_METHOD"] = scope["method"]
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        query = scope.get("query_string", b"")
        environ["RAW_URI"] = raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        environ["PATH_INFO"] = scope.get("path", "")
        environ["QUERY_STRING"] = query.decode("latin-1")
    if "http_version" in scope:
        environ["SERVER_PROTOCOL"] = "HTTP/" + scope["http_version"]
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        value = value.decode("latin-1")
        environ[key] = environ[key] + "," + value if key in environ else value
    if RESPONSE_HEADERS_KEY in scope:
        environ[RESPONSE_HEADERS_KEY] = scope[RESPONSE_HEADERS_KEY]
    return environ


def for_scopes(access_log):
    """The access_log callable for an ASGI app, which the core gives scopes."""
    def log_scope(scope, status, body_bytes, duration_us):
        return access_log(environ_of_scope(scope), status, body_bytes, duration_us)
    return log_scope


def capture_asgi_response_headers(app):
    """Wrap an ASGI `app` so the response headers land in its scope."""
    async def app_with_header_capture(scope, receive, send):
        if scope.get("type") != "http":
            return await app(scope, receive, send)

        async def capturing_send(message):
            if message.get("type") == "http.response.start":
                scope[RESPONSE_HEADERS_KEY] = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                                               for name, value in message.get("headers", ())]
            return await send(message)
        return await app(scope, receive, capturing_send)
    return app_with_header_capture


def capture_response_headers(app):
    """Wrap `app` so the response headers land in environ for %({Name}o)s."""
    def app_with_header_capture(environ, start_response):
        def capturing_start_response(status, headers, exc_info=None):
            environ[RESPONSE_HEADERS_KEY] = headers
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)
        return app(environ, capturing_start_response)
    return app_with_header_capture


class AccessLog:
    """The access_log callable for ursa.serve(): formats and appends lines.

    `target` is a file name or '-' for stdout. reopen() (the master's, on
    SIGUSR1) lets logrotate move the file away and have a new one started.
    """

    def __init__(self, target, log_format=None):
        self.target = target
        self.format_line, self.needs_response_headers = compile_format(log_format)
        self.fd = -1
        self.owns_fd = False
        self.open()

    def open(self):
        if self.target == "-":
            self.fd, self.owns_fd = 1, False
        else:
            self.fd = os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self.owns_fd = True

    def reopen(self):
        old_fd, old_owned = self.fd, self.owns_fd
        self.open()
        if old_owned:
            os.close(old_fd)

    def close(self):
        if self.owns_fd:
            os.close(self.fd)
        self.fd, self.owns_fd = -1, False

    def wrap_app(self, app, interface="auto"):
        if not self.needs_response_headers:
            return app
        from .interfaces import choose
        if choose(app, interface) == "asgi":
            return capture_asgi_response_headers(app)
        return capture_response_headers(app)

    def __call__(self, environ, status, body_bytes, duration_us):
        line = self.format_line(environ, status, body_bytes, duration_us)
        try:
            data = line.encode("latin-1")  # WSGI strings hold the request's bytes as latin-1
        except UnicodeEncodeError:
            data = line.encode("utf-8", "backslashreplace")
        os.write(self.fd, data)
