"""WSGI applications served by the end-to-end tests.

tests/serve.py imports this module inside the server process; the tests
load it too (under another name) for the helpers both sides share, such as
the byte pattern of generated bodies and the wsgi.input operations.

``routing_app`` dispatches on PATH_INFO. Endpoints that test iterable
close() or file close() take a ``token`` query parameter and record what
happened under it; ``/record?token=...`` returns that record as JSON, so a
test can ask the server process what its app saw.
"""
import gc
import hashlib
import io
import itertools
import json
import os
import sys
import time
from urllib.parse import parse_qs

# 64 KiB whose bytes are not all alike, so a dropped, repeated or reordered
# block changes the hash of a generated body.
PATTERN_BLOCK = bytes(range(256)) * 256
LARGEST_STREAM = 1 << 30  # streams are bounded: a test that forgets to stop one still ends

JSON_HEADERS = [("Content-Type", "application/json")]
TEXT_HEADERS = [("Content-Type", "text/plain")]


# ---------------------------------------------------------------- shared helpers

def pattern_chunks(size, block=PATTERN_BLOCK):
    """Yield ``size`` bytes of the repeating pattern, one block at a time."""
    full_blocks, tail = divmod(size, len(block))
    for _ in range(full_blocks):
        yield block
    if tail:
        yield block[:tail]


def pattern_sha256(size):
    digest = hashlib.sha256()
    for chunk in pattern_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def summarize(value):
    """A short JSON-friendly digest of a bytes result or a list of lines."""
    if isinstance(value, (bytes, bytearray)):
        return {"type": "bytes", "length": len(value), "sha256": hashlib.sha256(value).hexdigest(),
                "head": bytes(value[:40]).decode("latin-1")}
    if isinstance(value, list):
        joined = b"".join(value)
        return {"type": "lines", "count": len(value), "lengths_sha256":
                hashlib.sha256(",".join(str(len(line)) for line in value).encode()).hexdigest(),
                "sha256": hashlib.sha256(joined).hexdigest(),
                "all_bytes": all(isinstance(line, bytes) for line in value)}
    return {"type": type(value).__name__, "repr": repr(value)[:200]}


def run_input_ops(stream, ops):
    """Apply a comma-separated list of file operations to ``stream``.

    Operations: ``read``, ``read:N``, ``readline``, ``readline:N``,
    ``readlines``, ``iter`` (list(stream)), ``seek:N`` (from the start),
    ``seekend:N`` (N from the end; N <= 0), ``tell``, ``seekable``. Returns
    one summary per operation; the tests compare it with the same
    operations on io.BytesIO(body).
    """
    results = []
    for op in ops.split(","):
        name, _, argument = op.partition(":")
        args = (int(argument),) if argument else ()
        if name == "read":
            value = stream.read(*args)
        elif name == "readline":
            value = stream.readline(*args)
        elif name == "readlines":
            value = stream.readlines(*args)
        elif name == "iter":
            value = list(stream)
        elif name == "seek":
            value = stream.seek(*args)
        elif name == "seekend":
            value = stream.seek(args[0], 2)
        elif name == "tell":
            value = stream.tell()
        elif name == "seekable":
            value = stream.seekable()
        else:
            raise ValueError(f"unknown input operation {op!r}")
        results.append({"op": op, "result": summarize(value)})
    return results


# ---------------------------------------------------------------- records

RECORDS = {}


def record(token):
    return RECORDS.setdefault(token, {"close_calls": 0, "items_pulled": 0, "exhausted": False, "events": []})


class RecordingIterable:
    """A response iterable (not a list or generator) that records its use."""

    def __init__(self, token, items, fail_after=None):
        self.record = record(token)
        self.items = list(items)
        self.fail_after = fail_after
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.fail_after is not None and self.position == self.fail_after:
            raise RuntimeError(f"iterable failed on purpose after {self.fail_after} items")
        if self.position >= len(self.items):
            self.record["exhausted"] = True
            raise StopIteration
        item = self.items[self.position]
        self.position += 1
        self.record["items_pulled"] += 1
        return item

    def close(self):
        self.record["close_calls"] += 1


class RecordingStream:
    """An iterable streaming pattern blocks up to ``size`` bytes, recording its use."""

    def __init__(self, token, size):
        self.record = record(token)
        self.remaining = size

    def __iter__(self):
        return self

    def __next__(self):
        if self.remaining <= 0:
            self.record["exhausted"] = True
            raise StopIteration
        block = PATTERN_BLOCK if self.remaining >= len(PATTERN_BLOCK) else PATTERN_BLOCK[:self.remaining]
        self.remaining -= len(block)
        self.record["items_pulled"] += 1
        return block

    def close(self):
        self.record["close_calls"] += 1


class RecordingFile(io.FileIO):
    def __init__(self, path, token):
        super().__init__(path, "rb")
        self.record = record(token)

    def close(self):
        if not self.closed:
            self.record["close_calls"] += 1
        super().close()


class RecordingBytesIO(io.BytesIO):
    def __init__(self, data, token):
        super().__init__(data)
        self.record = record(token)

    def close(self):
        if not self.closed:
            self.record["close_calls"] += 1
        super().close()


# ---------------------------------------------------------------- endpoints

def query_of(environ):
    return {name: values[-1] for name, values in parse_qs(environ.get("QUERY_STRING", ""),
                                                          keep_blank_values=True).items()}


def respond(start_response, body, status="200 OK", headers=TEXT_HEADERS):
    start_response(status, list(headers) + [("Content-Length", str(len(body)))])
    return [body]


def respond_json(start_response, value, status="200 OK"):
    return respond(start_response, json.dumps(value).encode(), status, JSON_HEADERS)


def ping(environ, start_response):
    return respond(start_response, b"pong")


def say(environ, start_response):
    return respond(start_response, query_of(environ).get("text", "").encode())


def environ_report(environ, start_response):
    report = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int)) or value is None:
            report[key] = value
        elif isinstance(value, tuple):
            report[key] = list(value)
        else:
            report[key] = {"type": type(value).__name__}
    body = environ["wsgi.input"].read()
    checks = {
        "errors_is_stderr": environ.get("wsgi.errors") is sys.stderr,
        "file_wrapper_callable": callable(environ.get("wsgi.file_wrapper")),
        "version_is_tuple": type(environ.get("wsgi.version")) is tuple,
        "input_has_file_methods": all(hasattr(environ.get("wsgi.input"), name)
                                      for name in ("read", "readline", "readlines", "__iter__")),
        "types": {key: type(value).__name__ for key, value in environ.items()},
    }
    return respond_json(start_response, {"environ": report, "body": body.decode("latin-1"), "checks": checks})


def echo(environ, start_response):
    return respond(start_response, environ["wsgi.input"].read(), headers=[("Content-Type", "application/octet-stream")])


def hash_body(environ, start_response):
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return respond_json(start_response, {"length": length, "sha256": digest.hexdigest()})


def input_ops(environ, start_response):
    results = run_input_ops(environ["wsgi.input"], query_of(environ)["ops"])
    return respond_json(start_response, results)


def input_lines(environ, start_response):
    """readlines(hint) then read(): raw values, for the small bodies of the hint test."""
    stream = environ["wsgi.input"]
    hint = int(query_of(environ)["hint"])
    lines = stream.readlines(hint)
    rest = stream.read()
    return respond_json(start_response, {"lines": [line.decode("latin-1") for line in lines],
                                         "rest": rest.decode("latin-1")})


def slow(environ, start_response):
    query = query_of(environ)
    marker = query.get("marker")
    if marker:
        with open(marker, "w") as f:
            f.write("in the app\n")
    time.sleep(float(query.get("seconds", "1")))
    return respond(start_response, b"slow response finished")


def slow_stream(environ, start_response):
    seconds = float(query_of(environ).get("seconds", "1"))
    start_response("200 OK", TEXT_HEADERS)

    def body():
        yield b"started\n"
        time.sleep(seconds)
        yield b"finished\n"
    return body()


def sized(environ, start_response):
    size = int(query_of(environ).get("size", "10"))
    return respond(start_response, b"x" * size)


def unsized(environ, start_response):
    """A body of unknown length: a generator (a server may sum a list's lengths)."""
    parts = query_of(environ).get("parts", "alpha,beta,gamma").split(",")
    start_response("200 OK", TEXT_HEADERS)
    return (part.encode() for part in parts)


def status(environ, start_response):
    query = query_of(environ)
    line = query.get("line") or {"204": "204 No Content", "304": "304 Not Modified"}[query["code"]]
    # ?length=N: a Content-Length as Django's CommonMiddleware (204) and Zope (304) add one.
    length = [("Content-Length", query["length"])] if "length" in query else []
    start_response(line, TEXT_HEADERS + length)
    # A body the server must not send for 204/304 (the app is wrong to give one).
    return [b"a body that must not be sent"]


def set_headers(environ, start_response):
    """Responds with the headers given as ``h=Name:value`` (repeatable)."""
    pairs = parse_qs(environ.get("QUERY_STRING", "")).get("h", [])
    headers = [tuple(pair.split(":", 1)) for pair in pairs]
    start_response("200 OK", TEXT_HEADERS + headers)
    return [b"headers set by the app"]


def wrong_length(environ, start_response):
    """Announces one Content-Length and sends another number of bytes."""
    query = query_of(environ)
    start_response("200 OK", TEXT_HEADERS + [("Content-Length", query["declared"])])
    return (b"w" for _ in range(int(query["actual"])))


def big(environ, start_response):
    query = query_of(environ)
    size = int(query["size"])
    headers = list(TEXT_HEADERS)
    if query.get("length") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return pattern_chunks(size)


def iterable_kinds(environ, start_response):
    """The body b"abc" as the response iterable kind named by ``kind``."""
    query = query_of(environ)
    kind = query["kind"]
    start_response("200 OK", TEXT_HEADERS)
    if kind == "list":
        return [b"a", b"b", b"c"]
    if kind == "tuple":
        return (b"a", b"b", b"c")
    if kind == "generator":
        return (part for part in [b"a", b"b", b"c"])
    if kind == "custom":
        return RecordingIterable(query.get("token", "unused"), [b"a", b"b", b"c"])
    if kind == "bytearray":
        return [bytearray(b"a"), bytearray(b"bc")]
    if kind == "memoryview":
        return [memoryview(b"ab"), memoryview(b"xcx")[1:2]]
    if kind == "empty-items":
        return [b"", b"a", b"", b"", b"b", b"c", b""]
    if kind == "all-empty":
        return [b"", b""]
    raise ValueError(f"unknown kind {kind!r}")


def iterable_error(environ, start_response):
    """A recording iterable that fails after its first item (headers already sent)."""
    query = query_of(environ)
    headers = list(TEXT_HEADERS)
    if query.get("length"):
        headers.append(("Content-Length", query["length"]))
    start_response("200 OK", headers)
    return RecordingIterable(query["token"], [b"first item;", b"never sent"], fail_after=1)


def stream(environ, start_response):
    query = query_of(environ)
    size = min(int(query.get("size", str(LARGEST_STREAM))), LARGEST_STREAM)
    start_response("200 OK", TEXT_HEADERS)
    return RecordingStream(query["token"], size)


def generator_stream(environ, start_response):
    """Like stream, but a generator: its close() is GeneratorExit at the yield."""
    query = query_of(environ)
    size = min(int(query.get("size", str(LARGEST_STREAM))), LARGEST_STREAM)
    entry = record(query["token"])
    start_response("200 OK", TEXT_HEADERS)

    def body():
        try:
            for block in pattern_chunks(size):
                entry["items_pulled"] += 1
                yield block
            entry["exhausted"] = True
        finally:
            entry["close_calls"] += 1
    return body()


def body_residence(environ, start_response):
    """Where the request body is kept while the app runs: the RSS at entry and
    the deleted (anonymous) files the process has open."""
    rss_kib = None
    with open("/proc/self/status") as status_file:
        for line in status_file:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    anonymous_files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if "(deleted)" in target or target.startswith("/memfd:"):
            anonymous_files.append(target)
    return respond_json(start_response, {"rss_kib": rss_kib, "anonymous_files": anonymous_files,
                                         "content_length": environ.get("CONTENT_LENGTH")})


def write_callable(environ, start_response):
    mode = query_of(environ)["mode"]
    if mode == "alone":
        write = start_response("200 OK", TEXT_HEADERS)
        write(b"hello ")
        write(b"world")
        return []
    if mode == "mixed":
        write = start_response("200 OK", TEXT_HEADERS)
        write(b"written;")
        return [b"iterated;", b"too"]
    if mode == "with-length":
        write = start_response("200 OK", TEXT_HEADERS + [("Content-Length", "9")])
        write(b"abc")
        write(b"def")
        return [b"ghi"]
    raise ValueError(f"unknown mode {mode!r}")


# The callables a previous request of /keep-callables kept past its end.
KEPT_CALLABLES = {}


def keep_callables(environ, start_response):
    """?keep=start_response|write|both keeps this request's callables;
    ?call=... first calls the ones an earlier request kept and reports
    what they raised. A server that reuses the objects must not let a
    kept one act on a later request."""
    query = query_of(environ)
    outcome = {}
    for name, args in (("start_response", ("200 OK", [])), ("write", (b"stale",))):
        if query.get("call") in (name, "both") and name in KEPT_CALLABLES:
            try:
                KEPT_CALLABLES[name](*args)
                outcome[name] = "no error"
            except Exception as exc:  # noqa: BLE001 - reported to the test
                outcome[name] = f"{type(exc).__name__}: {exc}"
    write = start_response("200 OK", [("Content-Type", "application/json")])
    if query.get("keep") in ("start_response", "both"):
        KEPT_CALLABLES["start_response"] = start_response
    if query.get("keep") in ("write", "both"):
        KEPT_CALLABLES["write"] = write
    return [json.dumps(outcome).encode()]


# Each case: the bad arguments given to start_response, keyed by a name the tests use.
BAD_START_RESPONSE_CALLS = {
    "status-bytes": (b"200 OK", []),
    "status-int": (200, []),
    "status-none": (None, []),
    "status-no-reason": ("200", []),
    "status-two-digits": ("20 OK", []),
    "status-four-digits": ("2000 OK", []),
    "status-letters": ("abc OK", []),
    "status-no-space": ("200OK", []),
    "status-newline": ("200 OK\r\nX-Injected: 1", []),
    "headers-dict": ("200 OK", {"X-A": "b"}),
    "headers-tuple": ("200 OK", (("X-A", "b"),)),
    "headers-str": ("200 OK", "X-A: b"),
    "headers-none": ("200 OK", None),
    "header-item-list": ("200 OK", [["X-A", "b"]]),
    "header-item-3-tuple": ("200 OK", [("X-A", "b", "c")]),
    "header-item-1-tuple": ("200 OK", [("X-A",)]),
    "header-item-str": ("200 OK", ["X-A: b"]),
    "header-name-bytes": ("200 OK", [(b"X-A", "b")]),
    "header-value-bytes": ("200 OK", [("X-A", b"b")]),
    "header-value-int": ("200 OK", [("X-A", 1)]),
    "header-value-not-latin-1": ("200 OK", [("X-A", "caf\u20ac")]),
    "header-name-not-latin-1": ("200 OK", [("X-\u20ac", "b")]),
    "header-value-cr": ("200 OK", [("X-A", "b\rc")]),
    "header-value-lf": ("200 OK", [("X-A", "b\nc")]),
    "header-value-nul": ("200 OK", [("X-A", "b\0c")]),
    "header-value-crlf-injection": ("200 OK", [("X-A", "b\r\nSet-Cookie: injected=1")]),
    "header-name-cr": ("200 OK", [("X-A\r", "b")]),
    "header-name-lf": ("200 OK", [("X-A\nX-B", "b")]),
    "header-name-nul": ("200 OK", [("X-A\0", "b")]),
    "header-name-space": ("200 OK", [("X A", "b")]),
    "header-name-colon": ("200 OK", [("X-A:", "b")]),
    "header-name-empty": ("200 OK", [("", "b")]),
    "header-name-parenthesis": ("200 OK", [("X(A)", "b")]),
}


def describe_exception(error):
    return {"raised": True, "type": type(error).__name__, "message": str(error),
            "is_type_error": isinstance(error, TypeError), "is_value_error": isinstance(error, ValueError)}


def start_response_validation(environ, start_response):
    """Calls start_response with bad arguments; reports what it raised."""
    status_line, headers = BAD_START_RESPONSE_CALLS[query_of(environ)["case"]]
    try:
        start_response(status_line, headers)
    except Exception as error:  # the exception is the result under test
        outcome = describe_exception(error)
        return respond_json(start_response, outcome)
    # Accepted: replace the bad status/headers (not sent yet) to report it.
    try:
        raise AssertionError("start_response accepted bad arguments")
    except AssertionError:
        start_response("200 OK", JSON_HEADERS, sys.exc_info())
    return [json.dumps({"raised": False}).encode()]


def exc_info_replaces(environ, start_response):
    start_response("200 OK", TEXT_HEADERS + [("X-First", "1")])
    try:
        raise ZeroDivisionError("failed after start_response")
    except ZeroDivisionError:
        start_response("500 Internal Server Error", TEXT_HEADERS + [("X-Replaced", "1")], sys.exc_info())
    return [b"replaced"]


def call_with_exc_info(start_response):
    """start_response with exc_info once the head is out; names what happened."""
    try:
        raise ZeroDivisionError("failed after the head was sent")
    except ZeroDivisionError:
        try:
            start_response("500 Internal Server Error", TEXT_HEADERS, sys.exc_info())
        except ZeroDivisionError:
            return b"re-raised ZeroDivisionError"
        except Exception as error:
            return f"raised {type(error).__name__}: {error}".encode()
        return b"returned without raising"


def exc_info_after_write(environ, start_response):
    write = start_response("200 OK", TEXT_HEADERS)
    write(b"part one;")
    return [call_with_exc_info(start_response)]


def exc_info_after_yield(environ, start_response):
    start_response("200 OK", TEXT_HEADERS)

    def body():
        yield b"part one;"
        yield call_with_exc_info(start_response)
    return body()


def start_response_twice(environ, start_response):
    start_response("200 OK", TEXT_HEADERS + [("X-First", "1")])
    try:
        start_response("201 Created", TEXT_HEADERS)
    except Exception as error:
        outcome = describe_exception(error)
    else:
        outcome = {"raised": False}
    return [json.dumps(outcome).encode()]


def app_error(environ, start_response):
    query = query_of(environ)
    kind = query["kind"]
    message = f"app failed on purpose: {query.get('token', '')}"
    if kind == "before-start-response":
        raise RuntimeError(message)
    if kind == "after-start-response":
        start_response("200 OK", TEXT_HEADERS)
        raise RuntimeError(message)
    if kind == "first-item":
        start_response("200 OK", TEXT_HEADERS)

        def failing():
            raise RuntimeError(message)
            yield b"never"
        return failing()
    if kind == "after-body":
        headers = list(TEXT_HEADERS)
        if query.get("length"):
            headers.append(("Content-Length", query["length"]))
        start_response("200 OK", headers)

        def partial():
            yield b"partial body;"
            raise RuntimeError(message)
        return partial()
    if kind == "str-item":
        start_response("200 OK", TEXT_HEADERS)
        return ["a str, not bytes"]
    if kind == "return-none":
        start_response("200 OK", TEXT_HEADERS)
        return None
    if kind == "return-int":
        start_response("200 OK", TEXT_HEADERS)
        return 42
    if kind == "no-start-response":
        return [b"body without a status"]
    raise ValueError(f"unknown kind {kind!r}")


def file_wrapper(environ, start_response):
    query = query_of(environ)
    token = query["token"]
    block_size = int(query.get("blksize", "8192"))
    if query["kind"] == "file":
        filelike = RecordingFile(query["path"], token)
        headers = TEXT_HEADERS + [("Content-Length", str(os.fstat(filelike.fileno()).st_size))]
    elif query["kind"] == "bytesio":
        filelike = RecordingBytesIO(b"".join(pattern_chunks(int(query["size"]))), token)
        headers = TEXT_HEADERS
    else:
        raise ValueError(f"unknown kind {query['kind']!r}")
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](filelike, block_size)


class EndlessRecording:
    """``item`` forever, counting what was pulled and whether close() came."""

    def __init__(self, token, item):
        self.record = record(token)
        self.item = item

    def __iter__(self):
        return self

    def __next__(self):
        self.record["items_pulled"] += 1
        return self.item

    def close(self):
        self.record["close_calls"] += 1


def endless(environ, start_response):
    """An iterable without end. ?length=N: with that Content-Length (PEP
    3333: the server stops asking once it has N bytes). ?item=...: the
    bytes of each item (default "ab"; "" gives empty items). ?kind=itertools
    is itertools.repeat, a C iterator that never runs Python code."""
    query = query_of(environ)
    item = query.get("item", "ab").encode()
    headers = TEXT_HEADERS + ([("Content-Length", query["length"])] if "length" in query else [])
    start_response("200 OK", headers)
    if query.get("kind") == "itertools":
        return itertools.repeat(item)
    return EndlessRecording(query["token"], item)


def interrupt_while_stopping(environ, start_response):
    """A second Ctrl-C while the app runs, as gunicorn's quick shutdown
    raises SystemExit after stop(): the stop is under way when the app (or,
    ?where=body, its iterable) raises KeyboardInterrupt."""
    import ursa

    def interrupt():
        ursa.stop()
        raise KeyboardInterrupt

    if query_of(environ).get("where") != "body":
        interrupt()
    start_response("200 OK", TEXT_HEADERS)

    def body():
        yield b"first part\n"
        interrupt()
    return body()


def write_big(environ, start_response):
    """Sends ?size= bytes of the pattern through write(), in ?piece= bytes."""
    query = query_of(environ)
    size, piece = int(query["size"]), int(query.get("piece", 65536))
    write = start_response("200 OK", TEXT_HEADERS + [("Content-Length", str(size))])
    entry = record(query["token"])
    entry["pieces"] = sent = 0
    data = b"".join(pattern_chunks(size))
    try:
        for start in range(0, size, piece):
            write(data[start:start + piece])
            sent += len(data[start:start + piece])
            entry["pieces"] += 1
    except OSError as error:
        entry["error"] = str(error)
        raise
    entry["written"] = sent
    return []


class BytesSubclass(bytes):
    pass


def plain_bytes(environ, start_response):
    """bjoern's habit: the app returns one bytes object, not an iterable of them."""
    kind = query_of(environ).get("kind", "bytes")
    start_response("200 OK", TEXT_HEADERS)
    body = b"returned as bytes"
    return {"bytes": body, "bytearray": bytearray(body), "subclass": BytesSubclass(body)}[kind]


def read_record(environ, start_response):
    return respond_json(start_response, record(query_of(environ)["token"]))


def process_stats(environ, start_response):
    gc.collect()
    rss_kib = None
    with open("/proc/self/status") as status_file:
        for line in status_file:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
    return respond_json(start_response, {"objects": len(gc.get_objects()),
                                         "allocated_blocks": sys.getallocatedblocks(),
                                         "rss_kib": rss_kib, "open_fds": len(os.listdir("/proc/self/fd")),
                                         "pid": os.getpid()})


def process_id(environ, start_response):
    return respond(start_response, str(os.getpid()).encode())


ROUTES = {
    "/ping": ping,
    "/say": say,
    "/environ": environ_report,
    "/echo": echo,
    "/hash": hash_body,
    "/input": input_ops,
    "/input-lines": input_lines,
    "/slow": slow,
    "/interrupt-while-stopping": interrupt_while_stopping,
    "/slow-stream": slow_stream,
    "/sized": sized,
    "/unsized": unsized,
    "/status": status,
    "/headers": set_headers,
    "/big": big,
    "/wrong-length": wrong_length,
    "/iter": iterable_kinds,
    "/iter-error": iterable_error,
    "/stream": stream,
    "/generator-stream": generator_stream,
    "/body-residence": body_residence,
    "/write": write_callable,
    "/keep-callables": keep_callables,
    "/start-response": start_response_validation,
    "/exc-info-replaces": exc_info_replaces,
    "/exc-info-after-write": exc_info_after_write,
    "/exc-info-after-yield": exc_info_after_yield,
    "/start-response-twice": start_response_twice,
    "/error": app_error,
    "/file": file_wrapper,
    "/endless": endless,
    "/write-big": write_big,
    "/bytes": plain_bytes,
    "/record": read_record,
    "/stats": process_stats,
    "/pid": process_id,
}


def routing_app(environ, start_response):
    path = environ["PATH_INFO"]
    handler = ROUTES.get(path)
    if handler is None and path.startswith("/environ/"):
        handler = environ_report
    if handler is None:
        return respond(start_response, f"no route for {path!r}".encode(), "404 Not Found")
    return handler(environ, start_response)


# ---------------------------------------------------------------- wsgiref.validate

def strict_app(environ, start_response):
    """An app that follows PEP 3333 to the letter (for wsgiref.validate).

    GET/HEAD answer b"hello"; POST echoes the body, read with read(n) only,
    which is all the validator's input wrapper allows.
    """
    if environ["REQUEST_METHOD"] == "POST":
        stream = environ["wsgi.input"]
        if environ.get("CONTENT_LENGTH"):
            body = stream.read(int(environ["CONTENT_LENGTH"]))
        else:
            parts = []
            while True:
                part = stream.read(4096)
                if not part:
                    break
                parts.append(part)
            body = b"".join(parts)
    else:
        body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_validated_app():
    from wsgiref.validate import validator
    return validator(strict_app)


# ---------------------------------------------------------------- frameworks

def make_flask_app():
    from flask import Flask, jsonify, request

    app = Flask("ursa_test_flask")

    @app.get("/hello")
    def hello():
        return f"Hello, {request.args.get('name', 'world')}!"

    @app.post("/sum")
    def sum_numbers():
        payload = request.get_json()
        return jsonify({"sum": sum(payload["numbers"]), "label": payload["label"]})

    @app.get("/cookies")
    def cookies():
        return jsonify(request.cookies)

    return app


def configure_django(urlpatterns, module_name, **more_settings):
    """Django set up in-process with `urlpatterns` as its URLconf (and
    `more_settings`)."""
    import types

    import django
    from django.conf import settings

    urls = types.ModuleType(module_name)
    urls.urlpatterns = urlpatterns
    sys.modules[urls.__name__] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY="ursa-tests-only",
        ROOT_URLCONF=urls.__name__,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_TZ=True,
        **more_settings,
    )
    django.setup()


def make_django_app():
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse, JsonResponse
    from django.urls import path

    def hello(request):
        return HttpResponse(f"Hello, {request.GET.get('name', 'world')}!", content_type="text/plain")

    def sum_numbers(request):
        if request.method != "POST":
            return HttpResponse(status=405)
        payload = json.loads(request.body)
        return JsonResponse({"sum": sum(payload["numbers"]), "label": payload["label"]})

    configure_django([path("hello", hello), path("sum", sum_numbers)], "ursa_test_django_urls")
    return get_wsgi_application()
