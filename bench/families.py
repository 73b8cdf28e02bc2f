"""What bench/compare.py benchmarks: three families of servers, the scenarios their apps answer, and the
server each family's ratios are to.

    .venv/bin/python bench/compare.py                    # all: WSGI against bjoern, ASGI and WS against uvicorn
    .venv/bin/python bench/compare.py --families asgi    # the ASGI family alone
    .venv/bin/python bench/compare.py --families ws      # the WebSocket family alone

WSGI: bench/servers.py serving apps.py; ASGI: bench/asgi_servers.py serving
asgi_apps.py; WS: the ASGI servers again (bench/websocket_servers.py) serving
the WebSocket apps of websocket_apps.py, loaded by picows clients
(websocket_load.py) instead of wrk. WebSockets are a family of their own
rather than scenarios of the ASGI one because everything around the load
differs: the client, what a unit of work is (a message, not a request),
the check, the idle connection whose memory is measured (an upgraded one),
and the targets (issue 11's, against uvicorn's websockets implementation).
One run measures every scenario of the families it is given
the same way (compare.py) and reports them in one table and one chart, each
scenario's ratios to its family's reference. A server's name is unique
across the families (ursa is the WSGI one, ursa-asgi the ASGI one), and a
scenario may run servers of the other family beside its own: the ASGI hello
runs ursa's WSGI hello as well, so ASGI's cost is seen against WSGI's in
the same rounds.
"""
import os

import apps
import asgi_apps
import asgi_servers
import servers
import targets
import websocket_servers
from servers import HOST

# What wrk's done() (below) prints its JSON after.
WRK_RESULT_PREFIX = "WRK_JSON "


class Scenario:
    """One kind of request, described once and turned into a wrk script and raw bytes."""

    protocol = "http"  # loaded by wrk, checked by httpclient

    def __init__(self, name, title, app, method="GET", path="/", headers=None, body=b"", chunks=None,
                 keep_alive=True, expected_body=None, expect_chunked=False, guests=()):
        self.name = name
        self.title = title
        self.app = app
        self.method = method
        self.path = path
        self.headers = dict(headers or {})
        self.body = body
        self.chunks = chunks  # a body sent with Transfer-Encoding: chunked, one chunk each; None: body
        self.keep_alive = keep_alive
        self.expected_body = expected_body
        self.expect_chunked = expect_chunked
        self.guests = tuple(guests)  # servers of another family run beside this family's (the same app name)
        self.family = None  # set by the Family the scenario is given to

    def request_bytes(self, port):
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        body = self.body
        if self.chunks is not None:
            lines.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in self.chunks) + b"0\r\n\r\n"
        elif body:
            lines.append(f"Content-Length: {len(body)}")
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def wrk_script(self, port):
        if self.chunks is not None:
            # wrk would add a Content-Length to wrk.body; request() hands it the raw request instead.
            return f"local request_bytes = {_lua_bytes(self.request_bytes(port))}\n" \
                   f"function request() return request_bytes end\n{WRK_DONE_FUNCTION}"

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
        return {"name": self.name, "title": self.title, "app": self.app, "family": self.family.name,
                "reference": self.family.reference, "protocol": self.protocol}


class WebSocketScenario:
    """One WebSocket load: the app, the path its clients open, and the load generator's pattern
    (websocket_load.py: echo, or broadcast) with its clients and message size."""

    protocol = "websocket"  # loaded by websocket_load.py
    guests = ()

    def __init__(self, name, title, app, pattern, clients, message_size, unit):
        self.name = name
        self.title = title
        self.app = app
        self.path = f"/{app}"  # the apps do not route: the path only names the app in the server's log
        self.pattern = pattern
        self.clients = clients
        self.message_size = message_size
        self.unit = unit  # what one of its messages is, for the report
        self.family = None

    def describe(self):
        return {"name": self.name, "title": self.title, "app": self.app, "family": self.family.name,
                "reference": self.family.reference, "protocol": self.protocol, "pattern": self.pattern,
                "clients": self.clients, "message_size": self.message_size, "unit": self.unit}


def _lua_bytes(data):
    """``data`` as a Lua string literal: printable ASCII as it is, every other byte as a decimal escape
    (a long bracket would turn CR LF into LF)."""
    return '"' + "".join(chr(byte) if 32 <= byte < 127 and byte not in b'"\\' else f"\\{byte:03d}"
                         for byte in data) + '"'


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
    """The servers of one interface, the scenarios they are loaded with, and the defaults of a run."""

    def __init__(self, name, server_module, scenarios, reference, detail_servers, memory_servers,
                 callgrind_scenarios, extension_modules, targets, subject=None, measures_idle=True):
        self.name = name
        self.servers = server_module.SERVERS
        self.script = os.path.abspath(server_module.__file__)  # the child that starts a server
        for server in self.servers.values():
            server.script = self.script
            server.family = name
        self.scenarios = scenarios
        for scenario in scenarios:
            scenario.family = self
        self.memory_scenario = scenarios[0]  # hello (WS: echo): the app idle memory is measured with
        self.reference = reference  # the server this family's ratios are to
        self.subject = subject  # the server whose ratios to every peer get a table of their own (None: no table)
        self.measures_idle = measures_idle  # its detail servers' idle cost is measured (bench/idle.py: HTTP only)
        # This family's share of the defaults of --detail-servers, --memory-servers, --callgrind-scenarios.
        self.detail_servers = detail_servers
        self.memory_servers = memory_servers
        self.callgrind_scenarios = callgrind_scenarios
        self.extension_modules = extension_modules  # {server: its compiled module}, for the size table
        self.targets = targets  # document -> this family's checked targets


ASGI_SCENARIOS = [
    Scenario("asgi-hello", "ASGI hello, raw app", "hello", expected_body=apps.HELLO_BODY, guests=("ursa",)),
    Scenario("asgi-starlette", "ASGI Starlette JSON", "starlette", expected_body=asgi_apps.COMPACT_JSON_BODY),
    Scenario("asgi-fastapi", "ASGI FastAPI JSON GET", "fastapi", expected_body=asgi_apps.COMPACT_JSON_BODY),
    Scenario("asgi-fastapi-post", "ASGI FastAPI POST, pydantic model", "fastapi", method="POST",
             path="/items", headers={"Content-Type": "application/json"}, body=asgi_apps.ITEM_BODY,
             expected_body=asgi_apps.ITEM_BODY),
    Scenario("asgi-post", "ASGI POST 4 KiB echo", "echo", method="POST", body=b"p" * apps.POST_BODY_SIZE,
             headers={"Content-Type": "application/octet-stream"}, expected_body=b"p" * apps.POST_BODY_SIZE),
    Scenario("asgi-upload", f"ASGI chunked upload, {asgi_apps.UPLOAD_CHUNK_COUNT} x 1 KiB, receive()", "length",
             method="POST", headers={"Content-Type": "application/octet-stream"},
             chunks=[asgi_apps.UPLOAD_CHUNK] * asgi_apps.UPLOAD_CHUNK_COUNT,
             expected_body=b"%d" % (len(asgi_apps.UPLOAD_CHUNK) * asgi_apps.UPLOAD_CHUNK_COUNT)),
]

# 16 clients each keeping one 64-byte message in flight; one message to 100 clients (issue 11).
WS_SCENARIOS = [
    WebSocketScenario("ws-echo", "WebSocket echo, 16 clients x 1 message of 64 B in flight", "echo", "echo",
                      clients=16, message_size=64, unit="round trip"),
    WebSocketScenario("ws-broadcast", "WebSocket broadcast, 1 message of 64 B to 100 clients", "broadcast",
                      "broadcast", clients=100, message_size=64, unit="delivery"),
]

FAMILIES = {family.name: family for family in (
    Family("wsgi", servers, WSGI_SCENARIOS, reference="bjoern", detail_servers=("ursa", "bjoern"),
           memory_servers=("ursa", "bjoern"), callgrind_scenarios=("hello", "flask"),
           extension_modules={"ursa": "ursa._core", "bjoern": "_bjoern"}, targets=targets.evaluate),
    # ursa (WSGI) among the ASGI details too: its hello's instructions, idle and memory on the ASGI run's Python.
    Family("asgi", asgi_servers, ASGI_SCENARIOS, reference="uvicorn", detail_servers=("ursa-asgi", "uvicorn", "ursa"),
           memory_servers=("ursa-asgi", "uvicorn", "ursa"),
           callgrind_scenarios=("asgi-hello", "asgi-fastapi", "asgi-fastapi-post"),
           extension_modules={}, targets=targets.evaluate_asgi),
    Family("ws", websocket_servers, WS_SCENARIOS, reference="uvicorn-ws", subject="ursa-ws",
           detail_servers=("ursa-ws", "uvicorn-ws"),
           memory_servers=("ursa-ws", "uvicorn-ws", "granian-ws", "hypercorn-ws"), callgrind_scenarios=("ws-echo",),
           extension_modules={}, targets=targets.evaluate_ws, measures_idle=False),
)}
# Every server and scenario of every family, by its name (unique across the families).
SERVERS = {name: server for family in FAMILIES.values() for name, server in family.servers.items()}
SCENARIOS = {scenario.name: scenario for family in FAMILIES.values() for scenario in family.scenarios}
assert len(SERVERS) == sum(len(family.servers) for family in FAMILIES.values()), "a server name is in two families"
assert len(SCENARIOS) == sum(len(family.scenarios) for family in FAMILIES.values())


def scenario_servers(scenario):
    """The servers that run ``scenario``: its family's that serve its app, and its guests."""
    own = [name for name, server in scenario.family.servers.items() if server.serves(scenario.app)]
    return own + [name for name in scenario.guests if SERVERS[name].serves(scenario.app)]
