"""The WSGI app the robustness tests serve (inside the server process).

``app`` dispatches on PATH_INFO. Endpoints that stream take a ``token`` and
record what happened to their iterable under it (items pulled, close()
calls); ``/record?token=...`` returns that record as JSON, so a test can ask
the server what the app saw after its client vanished. ``/hits?token=...``
counts how often the app was called for a token: a smuggled request that
reaches the app shows up there.
"""
import hashlib
import json
from urllib.parse import parse_qs

BLOCK = bytes(range(256)) * 256  # 64 KiB
LARGEST_STREAM = 1 << 31  # every stream ends, even one a test forgets

RECORDS = {}
ACCESS_LOG = []  # (method, status) of each response, when the server logs access


def access_log(environ, status_code, body_bytes, duration_us):
    """The server's access_log hook (hostile_server.py --access-log)."""
    ACCESS_LOG.append((environ.get("REQUEST_METHOD"), status_code))


def record(token):
    return RECORDS.setdefault(token, {"calls": 0, "items_pulled": 0, "close_calls": 0, "exhausted": False})


def query_of(environ):
    return {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", "")).items()}


def respond(start_response, body, status="200 OK", content_type="text/plain"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def respond_json(start_response, value):
    return respond(start_response, json.dumps(value).encode(), content_type="application/json")


def fresh_block(length):
    """A new bytes object each time: a server that kept the items it was
    given would show it in its memory use (one shared object would not)."""
    return bytes(bytearray(BLOCK[:length]))


class RecordingStream:
    """``size`` bytes in 64 KiB items; records pulls, exhaustion and close()."""

    def __init__(self, token, size):
        self.record = record(token)
        self.remaining = min(size, LARGEST_STREAM)

    def __iter__(self):
        return self

    def __next__(self):
        if self.remaining <= 0:
            self.record["exhausted"] = True
            raise StopIteration
        block = fresh_block(min(self.remaining, len(BLOCK)))
        self.remaining -= len(block)
        self.record["items_pulled"] += 1
        return block

    def close(self):
        self.record["close_calls"] += 1


def recording_generator(token, size):
    """The same stream as a generator: close() raises GeneratorExit inside it."""
    entry = record(token)
    remaining = min(size, LARGEST_STREAM)
    try:
        while remaining > 0:
            block = fresh_block(min(remaining, len(BLOCK)))
            remaining -= len(block)
            entry["items_pulled"] += 1
            yield block
        entry["exhausted"] = True
    finally:
        entry["close_calls"] += 1


def ping(environ, start_response):
    return respond(start_response, b"pong")


def hit(environ, start_response):
    record(query_of(environ)["token"])["calls"] += 1
    body = environ["wsgi.input"].read()
    return respond(start_response, b"hit %d" % len(body))


def body_digest(environ, start_response):
    digest = hashlib.sha256()
    length = 0
    stream = environ["wsgi.input"]
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return respond_json(start_response, {"length": length, "sha256": digest.hexdigest()})


def stream(environ, start_response):
    query = query_of(environ)
    record(query["token"])["calls"] += 1
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return RecordingStream(query["token"], int(query["size"]))


def generator(environ, start_response):
    query = query_of(environ)
    record(query["token"])["calls"] += 1
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return recording_generator(query["token"], int(query["size"]))


# Header names, values and status lines an app might build from user input:
# none of them may put a CR, LF or NUL on the wire.
BAD_RESPONSE_HEADS = {
    "value-crlf": ("200 OK", [("X-Note", "a\r\nInjected: yes")]),
    "value-lf": ("200 OK", [("X-Note", "a\nInjected: yes")]),
    "value-cr": ("200 OK", [("X-Note", "a\rInjected: yes")]),
    "value-nul": ("200 OK", [("X-Note", "a\0Injected: yes")]),
    "name-crlf": ("200 OK", [("X-Note\r\nInjected", "yes")]),
    "name-lf": ("200 OK", [("Injected\n", "yes")]),
    "name-nul": ("200 OK", [("X-Note\0Injected", "yes")]),
    "name-colon": ("200 OK", [("Injected: yes\r\nX", "1")]),
    "name-space": ("200 OK", [("X Injected", "yes")]),
    "status-crlf": ("200 OK\r\nInjected: yes", []),
    "status-lf": ("200 OK\nInjected: yes", []),
    "status-nul": ("200 OK\0Injected: yes", []),
    "value-control-01": ("200 OK", [("X-Note", "a\x01Injected: yes")]),
    "value-control-1f": ("200 OK", [("X-Note", "a\x1fInjected: yes")]),
    "value-control-vt": ("200 OK", [("X-Note", "a\x0bInjected: yes")]),
    "value-del": ("200 OK", [("X-Note", "a\x7fInjected: yes")]),
    "two-content-lengths": ("200 OK", [("Content-Length", "2"), ("Content-Length", "5"), ("X-Injected", "1")]),
    "transfer-coding": ("200 OK", [("Transfer-Encoding", "gzip"), ("X-Injected", "1")]),
    "interim-100": ("100 Continue", [("X-Injected", "1")]),
    "interim-101": ("101 Switching Protocols", [("Upgrade", "websocket"), ("X-Injected", "1")]),
    "interim-103": ("103 Early Hints", [("Link", "</style.css>; rel=preload"), ("X-Injected", "1")]),
}


def bad_header(environ, start_response):
    """start_response with a forbidden character; reports whether it raised."""
    status, headers = BAD_RESPONSE_HEADS[query_of(environ)["case"]]
    try:
        start_response(status, headers + [("Content-Type", "text/plain")])
    except (ValueError, TypeError) as error:
        return respond(start_response, f"refused: {type(error).__name__}: {error}".encode("latin-1", "replace"))
    return [b"accepted"]


def bad_header_uncaught(environ, start_response):
    """The same, but the app lets the error propagate: the server answers 500."""
    status, headers = BAD_RESPONSE_HEADS[query_of(environ)["case"]]
    start_response(status, headers + [("Content-Type", "text/plain")])
    return [b"accepted"]


def environ_strings(environ, start_response):
    """The str entries of the environ and the body: what the app was told."""
    report = {key: value for key, value in environ.items() if isinstance(value, str)}
    report["body"] = environ["wsgi.input"].read().decode("latin-1")
    return respond_json(start_response, report)


def read_access_log(environ, start_response):
    """The access log so far (this request excluded), then it is emptied."""
    entries = list(ACCESS_LOG)
    ACCESS_LOG.clear()
    return respond_json(start_response, entries)


def write_all(environ, start_response):
    """?size= bytes through write(), in 64 KiB pieces; what write() raised
    goes to the record."""
    query = query_of(environ)
    size = int(query["size"])
    write = start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    piece = b"w" * 65536
    try:
        for _ in range(size // len(piece)):
            write(piece)
    except OSError as error:
        record(query["token"])["error"] = str(error)
        raise
    return []


def read_record(environ, start_response):
    return respond_json(start_response, record(query_of(environ)["token"]))


ROUTES = {
    "/ping": ping,
    "/hit": hit,
    "/digest": body_digest,
    "/write": write_all,
    "/stream": stream,
    "/generator": generator,
    "/bad-header": bad_header,
    "/bad-header-uncaught": bad_header_uncaught,
    "/environ": environ_strings,
    "/record": read_record,
    "/access-log": read_access_log,
}


def app(environ, start_response):
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        return respond(start_response, b"no such route", "404 Not Found")
    return handler(environ, start_response)
