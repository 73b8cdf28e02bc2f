"""The WSGI apps every benchmarked server runs, unchanged from server to server.

Each app is as cheap as its scenario allows, so that what the benchmark
measures is the server's work around it: parsing, environ, writing.
"""

HELLO_BODY = b"Hello, World!"
LARGE_BODY = b"x" * (64 * 1024)
CHUNK = b"c" * 1024
CHUNK_COUNT = 16
POST_BODY_SIZE = 4 * 1024

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


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO_BODY)))])
    return [HELLO_BODY]


def large(environ, start_response):
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(LARGE_BODY)))]
    )
    return [LARGE_BODY]


def chunked(environ, start_response):
    # No Content-Length: an HTTP/1.1 server must send this chunked.
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (CHUNK for _ in range(CHUNK_COUNT))


def echo(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))]
    )
    return [body]


def environ_heavy(environ, start_response):
    # Reads every header the scenario sends, as a framework building its
    # request object would; answers with how many were present so a server
    # that drops headers is caught by the harness's response check.
    present = sum(1 for key in ENVIRON_BASE_KEYS if key in environ)
    present += sum(1 for key in MANY_HEADERS_ENVIRON_KEYS if environ.get(key))
    body = b"%d" % present
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


APPS = {
    "hello": hello,
    "large": large,
    "chunked": chunked,
    "echo": echo,
    "environ": environ_heavy,
}

# What the harness expects back from each app before it starts measuring.
EXPECTED_ENVIRON_BODY = b"%d" % (len(ENVIRON_BASE_KEYS) + len(MANY_HEADERS_ENVIRON_KEYS))
