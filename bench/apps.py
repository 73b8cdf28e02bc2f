"""The WSGI apps every benchmarked server runs, unchanged from server to server.

Each app is as cheap as its scenario allows, so that what the benchmark
measures is the server's work around it: parsing, environ, writing. The
Flask app is the exception on purpose: it shows what is left of a server's
advantage under a framework.
"""
import functools
import json
import os

HELLO_BODY = b"Hello, World!"
JSON_MESSAGE = {"message": "Hello, World!"}
JSON_BODY = json.dumps(JSON_MESSAGE).encode()
LARGE_BODY = b"x" * (256 * 1024)
STREAM_CHUNK = b"c" * 1024
STREAM_CHUNK_COUNT = 100
POST_BODY_SIZE = 4 * 1024

# The file the "file" app sends: the harness writes it once into a temporary
# directory and passes its path to every server in this environment variable.
FILE_PATH_ENV = "URSA_BENCH_FILE"
FILE_SIZE = 1024 * 1024
FILE_BLOCK_SIZE = 64 * 1024

# The headers a browser behind a proxy sends, roughly; the "headers" scenario
# sends these and the environ app reads every one of them back.
MANY_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br",
    "Referer": "http://127.0.0.1/some/previous/page?with=query",
    "Cookie": "session=0123456789abcdef0123456789abcdef; theme=dark; consent=yes; tracking=none",
    "Cache-Control": "max-age=0",
    "Upgrade-Insecure-Requests": "1",
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-User": "?1",
    "DNT": "1",
    "X-Forwarded-For": "203.0.113.7, 198.51.100.23",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "example.org",
    "X-Real-IP": "203.0.113.7",
    "X-Request-ID": "4bf92f3577b34da6a3ce929d0e0e4736",
    "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "If-None-Match": '"a-strong-etag-value"',
}
MANY_HEADERS_ENVIRON_KEYS = tuple("HTTP_" + name.upper().replace("-", "_") for name in MANY_HEADERS)
ENVIRON_BASE_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "HTTP_HOST",
    "wsgi.url_scheme",
)


def file_contents():
    # A function, not a constant: only the harness needs it, not every server's memory.
    return bytes(range(256)) * (FILE_SIZE // 256)


def write_file(directory):
    """Write the file the "file" app sends into ``directory``; returns its path."""
    path = os.path.join(directory, "file.bin")
    with open(path, "wb") as output:
        output.write(file_contents())
    return path


def _bytes_response(start_response, body, content_type):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def hello(environ, start_response):
    return _bytes_response(start_response, HELLO_BODY, "text/plain")


def json_hello(environ, start_response):
    # Serialised on every request, as an API view would.
    return _bytes_response(start_response, json.dumps(JSON_MESSAGE).encode(), "application/json")


def large(environ, start_response):
    return _bytes_response(start_response, LARGE_BODY, "application/octet-stream")


def stream(environ, start_response):
    # No Content-Length: an HTTP/1.1 server must send this chunked.
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (STREAM_CHUNK for _ in range(STREAM_CHUNK_COUNT))


class FileBlocks:
    """PEP 3333's fallback for a server without wsgi.file_wrapper: the file read in blocks."""

    def __init__(self, file, block_size=FILE_BLOCK_SIZE):
        self.file = file
        self.block_size = block_size

    def __iter__(self):
        return iter(functools.partial(self.file.read, self.block_size), b"")

    def close(self):
        self.file.close()


def file_download(environ, start_response):
    # Opened on every request, as a download view would; the server's
    # file_wrapper (sendfile, for most) closes it.
    file = open(os.environ[FILE_PATH_ENV], "rb")
    size = os.fstat(file.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
    return environ.get("wsgi.file_wrapper", FileBlocks)(file, FILE_BLOCK_SIZE)


def echo(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return _bytes_response(start_response, environ["wsgi.input"].read(length), "application/octet-stream")


def environ_heavy(environ, start_response):
    # Reads every header the scenario sends, as a framework building its
    # request object would; answers with how many were present so a server
    # that drops headers is caught by the harness's response check.
    present = sum(1 for key in ENVIRON_BASE_KEYS if key in environ)
    present += sum(1 for key in MANY_HEADERS_ENVIRON_KEYS if environ.get(key))
    return _bytes_response(start_response, b"%d" % present, "text/plain")


def flask_hello():
    """A Flask app answering "/" with the hello body."""
    from flask import Flask

    app = Flask("bench")

    @app.route("/")
    def index():
        return HELLO_BODY.decode()

    return app


APPS = {
    "hello": hello,
    "json": json_hello,
    "large": large,
    "stream": stream,
    "file": file_download,
    "echo": echo,
    "environ": environ_heavy,
}
# Built only by the server that serves them: importing Flask at the top
# would put it in the idle memory of every server, whatever its app.
APP_FACTORIES = {
    "flask": flask_hello,
}
APP_NAMES = (*APPS, *APP_FACTORIES)


def loader(plain, factories):
    """The load_app(name) of a module's tables: an app of ``plain`` as it is, one of ``factories`` built."""
    def load_app(name):
        return factories[name]() if name in factories else plain[name]
    return load_app


load_app = loader(APPS, APP_FACTORIES)


# What the harness expects back from the environ app before it starts measuring.
EXPECTED_ENVIRON_BODY = b"%d" % (len(ENVIRON_BASE_KEYS) + len(MANY_HEADERS_ENVIRON_KEYS))
