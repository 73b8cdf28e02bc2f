"""What bench/compare.py benchmarks: a family of servers, the scenarios their apps answer, and the server
the ratios are to.

    .venv/bin/python bench/compare.py                  # the WSGI family (bench/servers.py, apps.py)
    .venv/bin/python bench/compare.py --family asgi    # the ASGI family (bench/asgi_servers.py, asgi_apps.py)

The measurements (compare.py) are the same for every family; a family only
says what to run, what to compare with, and where to write the results.
"""
import os

import apps
import asgi_apps
import asgi_servers
import servers
import targets
from servers import HOST

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
# What wrk's done() (below) prints its JSON after.
WRK_RESULT_PREFIX = "WRK_JSON "


class Scenario:
    """One kind of request, described once and turned into a wrk script and raw bytes."""

    def __init__(self, name, title, app, method="GET", path="/", headers=None, body=b"",
                 keep_alive=True, expected_body=None, expect_chunked=False):
        self.name = name
        self.title = title
        self.app = app
        self.method = method
        self.path = path
        self.headers = dict(headers or {})
        self.body = body
        self.keep_alive = keep_alive
        self.expected_body = expected_body
        self.expect_chunked = expect_chunked

    def request_bytes(self, port):
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def wrk_script(self):
        def lua_string(text):
            # A long bracket needs no escaping as long as its closing mark is absent.
            if "]==]" in text:
                raise ValueError(f"scenario {self.name}: cannot quote {text!r} for wrk's Lua")
            return f"[==[{text}]==]"

        lines = [f"wrk.method = {lua_string(self.method)}"]
        for name, value in self.headers.items():
            # The spaces keep "[[==[" from reading as the start of a long bracket.
            lines.append(f"wrk.headers[ {lua_string(name)} ] = {lua_string(value)}")
        if self.body:
            lines.append(f"wrk.body = {lua_string(self.body.decode('latin-1'))}")
        if not self.keep_alive:
            lines.append('wrk.headers["Connection"] = "close"')
        lines.append(WRK_DONE_FUNCTION)
        return "\n".join(lines) + "\n"

    def describe(self):
        return {"name": self.name, "title": self.title, "app": self.app}


# wrk calls done() once at the end; printing JSON spares parsing its report.
WRK_DONE_FUNCTION = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %%d, "duration_us": %%d, "p50_us": %%.1f, "p99_us": %%.1f, '
    .. '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
""" % WRK_RESULT_PREFIX

WSGI_SCENARIOS = [
    Scenario("hello", "hello, keep-alive", "hello", expected_body=apps.HELLO_BODY),
    Scenario("flask", "Flask hello", "flask", expected_body=apps.HELLO_BODY),
    Scenario("json", "JSON, json.dumps", "json", expected_body=apps.JSON_BODY),
    Scenario("large", "256 KiB body", "large", expected_body=apps.LARGE_BODY),
    Scenario("stream", f"generator, {apps.STREAM_CHUNK_COUNT} x 1 KiB", "stream",
             expected_body=apps.STREAM_CHUNK * apps.STREAM_CHUNK_COUNT, expect_chunked=True),
    Scenario("file", "1 MiB file, file_wrapper", "file", expected_body=apps.file_contents()),
    Scenario("post", "POST 4 KiB echo", "echo", method="POST", body=b"p" * apps.POST_BODY_SIZE,
             headers={"Content-Type": "application/octet-stream"}, expected_body=b"p" * apps.POST_BODY_SIZE),
    Scenario("close", "hello, Connection: close", "hello", keep_alive=False, expected_body=apps.HELLO_BODY),
    Scenario("headers", "20 headers, environ app", "environ", path="/search/results?q=wsgi&page=2",
             headers=apps.MANY_HEADERS, expected_body=apps.EXPECTED_ENVIRON_BODY),
]


class Family:
    """The servers one run compares, the scenarios it loads them with, and its defaults."""

    def __init__(self, name, server_module, scenarios, reference, detail_servers, memory_servers,
                 callgrind_scenarios, output, extension_modules, targets=None):
        self.name = name
        self.servers = server_module.SERVERS
        self.script = os.path.abspath(server_module.__file__)  # the child that starts a server
        self.scenarios = scenarios
        self.scenarios_by_name = {scenario.name: scenario for scenario in scenarios}
        self.memory_scenario = self.scenarios_by_name["hello"]  # the app idle memory is measured with
        self.reference = reference  # the server every ratio is to
        # Defaults of --detail-servers, --memory-servers and --callgrind-scenarios (comma-separated).
        self.detail_servers = detail_servers
        self.memory_servers = memory_servers
        self.callgrind_scenarios = callgrind_scenarios
        self.output = output  # default --output prefix
        self.extension_modules = extension_modules  # {server: its compiled module}, for the size table
        self._targets = targets  # document -> checked targets, or None: this family has none

    def evaluate_targets(self, document):
        return self._targets(document) if self._targets else []


WSGI_SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in WSGI_SCENARIOS}
# The WSGI scenarios that apply as they are (the ASGI apps of the same names
# answer the same bodies), the ASGI stream, and two frameworks for Flask's one.
ASGI_SCENARIOS = [
    WSGI_SCENARIOS_BY_NAME["hello"],
    WSGI_SCENARIOS_BY_NAME["json"],
    Scenario("starlette", "Starlette hello, PlainTextResponse", "starlette", expected_body=apps.HELLO_BODY),
    Scenario("fastapi", "FastAPI JSON, returns a dict", "fastapi", expected_body=asgi_apps.COMPACT_JSON_BODY),
    WSGI_SCENARIOS_BY_NAME["post"],
    Scenario("stream", f"more_body, {asgi_apps.STREAM_CHUNK_COUNT} x 1 KiB", "stream",
             expected_body=apps.STREAM_CHUNK * asgi_apps.STREAM_CHUNK_COUNT, expect_chunked=True),
    WSGI_SCENARIOS_BY_NAME["large"],
    WSGI_SCENARIOS_BY_NAME["close"],
]

FAMILIES = {family.name: family for family in (
    Family("wsgi", servers, WSGI_SCENARIOS, reference="bjoern", detail_servers="ursa,bjoern",
           memory_servers="ursa,bjoern", callgrind_scenarios="hello,flask",
           output=os.path.join(RESULTS_DIR, "latest"),
           extension_modules={"ursa": "ursa._core", "bjoern": "_bjoern"}, targets=targets.evaluate),
    Family("asgi", asgi_servers, ASGI_SCENARIOS, reference="uvicorn", detail_servers="ursa,uvicorn",
           memory_servers="ursa,uvicorn", callgrind_scenarios="hello,fastapi",
           output=os.path.join(RESULTS_DIR, "asgi-latest"), extension_modules={"ursa": "ursa._core"}),
)}
