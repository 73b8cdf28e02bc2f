"""The WSGI environ (PEP 3333) and wsgi.input, as the app sees them."""
import io
import socket

import pytest

from support.rawhttp import build_request


def report_for(server, method="GET", target="/environ", headers=(), body=b"", version="HTTP/1.1"):
    """The app's report of its environ, and the client's local port."""
    with server.connect() as conn:
        conn.send(build_request(method, target, headers, body, version, host=f"127.0.0.1:{server.port}"))
        response = conn.read_response()
        assert response.status == 200, response
        return response.json(), conn.local_port()


def environ_for(server, *args, **kwargs):
    return report_for(server, *args, **kwargs)[0]["environ"]


def test_request_method_is_the_method_sent(server):
    assert environ_for(server, "GET")["REQUEST_METHOD"] == "GET"
    assert environ_for(server, "POST", body=b"x")["REQUEST_METHOD"] == "POST"
    assert environ_for(server, "DELETE")["REQUEST_METHOD"] == "DELETE"


def test_script_name_is_empty(server):
    assert environ_for(server)["SCRIPT_NAME"] == ""


def test_path_info_is_percent_decoded_as_latin_1(server):
    environ = environ_for(server, target="/environ/caf%C3%A9%20x%2Fy")
    assert environ["PATH_INFO"] == "/environ/caf\xc3\xa9 x/y"


def test_path_info_excludes_the_query_string(server):
    assert environ_for(server, target="/environ/a?b=c")["PATH_INFO"] == "/environ/a"


def test_query_string_is_raw(server):
    assert environ_for(server, target="/environ?x=1&y=%20a+b&z")["QUERY_STRING"] == "x=1&y=%20a+b&z"


def test_query_string_is_empty_without_a_query(server):
    assert environ_for(server)["QUERY_STRING"] == ""


def test_raw_uri_and_request_uri_are_the_raw_request_target(server):
    environ = environ_for(server, target="/environ/caf%C3%A9?q=%2F")
    assert environ["RAW_URI"] == "/environ/caf%C3%A9?q=%2F"
    assert environ["REQUEST_URI"] == "/environ/caf%C3%A9?q=%2F"


def test_content_type_comes_from_the_header_and_not_as_http_content_type(server):
    environ = environ_for(server, "POST", headers=[("Content-Type", "application/x-test")], body=b"abc")
    assert environ["CONTENT_TYPE"] == "application/x-test"
    assert "HTTP_CONTENT_TYPE" not in environ


def test_content_length_is_present_when_the_request_has_one(server):
    environ = environ_for(server, "POST", body=b"12345")
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_content_length_is_absent_when_the_request_has_none(server):
    assert "CONTENT_LENGTH" not in environ_for(server, "GET")


def test_server_name_and_port_name_this_server(server):
    environ = environ_for(server)
    assert environ["SERVER_NAME"] in {"127.0.0.1", "localhost", socket.gethostname(), socket.getfqdn()}
    assert environ["SERVER_PORT"] == str(server.port)


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_server_protocol_is_the_request_version(server, version):
    assert environ_for(server, version=version)["SERVER_PROTOCOL"] == version


def test_remote_addr_and_remote_port_are_the_clients(server):
    report, local_port = report_for(server)
    assert report["environ"]["REMOTE_ADDR"] == "127.0.0.1"
    assert report["environ"]["REMOTE_PORT"] == str(local_port)


def test_remote_addr_follows_each_ipv4_peer(server):
    # Every 127/8 address is loopback on Linux: peers that differ in octets
    # of one, two and three digits, and the same peer again after others.
    peers = ["127.0.0.1", "127.10.200.3", "127.255.0.99", "127.10.200.3", "127.0.0.1"]
    for peer in peers:
        with server.connect(source=peer) as conn:
            conn.send(b"GET /environ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.read_response().json()["environ"]["REMOTE_ADDR"] == peer


def test_each_request_on_a_connection_gets_its_own_request_line(server):
    requests = [("POST", "/environ?a=1", "HTTP/1.1"), ("GET", "/environ", "HTTP/1.1"),
                ("DELETE", "/environ?b=2", "HTTP/1.0"), ("GET", "/environ", "HTTP/1.1")]
    with server.connect() as conn:
        for method, target, version in requests:
            keep_alive = [("Connection", "keep-alive")] if version == "HTTP/1.0" else []
            conn.send(build_request(method, target, keep_alive, b"", version))
            environ = conn.read_response(method).json()["environ"]
            path, _, query = target.partition("?")
            assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"],
                    environ["RAW_URI"], environ["SERVER_PROTOCOL"]) == (method, path, query, target, version)


def test_request_headers_become_http_variables(server):
    environ = environ_for(server, headers=[("X-Custom-Header", "value 1"), ("Accept", "text/plain")])
    assert environ["HTTP_X_CUSTOM_HEADER"] == "value 1"
    assert environ["HTTP_ACCEPT"] == "text/plain"
    assert environ["HTTP_HOST"] == f"127.0.0.1:{server.port}"


def test_repeated_request_headers_are_joined_with_commas(server):
    environ = environ_for(server, headers=[("X-Multi", "a"), ("X-Multi", "b"), ("x-multi", "c")])
    assert environ["HTTP_X_MULTI"] == "a,b,c"


def test_repeated_cookie_lines_are_joined_as_cookie_crumbs(server):
    """RFC 6265 5.4 and RFC 9113 8.2.3: "a=1; session=abc", never
    "a=1,session=abc", which every cookie parser reads as one cookie a."""
    environ = environ_for(server, headers=[("Cookie", "a=1"), ("cookie", "session=abc"), ("COOKIE", "c=3")])
    assert environ["HTTP_COOKIE"] == "a=1; session=abc; c=3"


def test_empty_host_is_allowed(server):
    """RFC 9112 3.2: a request target without an authority sends Host empty."""
    environ = environ_for(server, headers=[("Host", "")])
    assert environ["HTTP_HOST"] == ""


@pytest.mark.parametrize("host", ["example.com", "example.com:", "example.com:8080", "127.0.0.1:65535", "[::1]",
                                  "[::1]:80", "[v1.fe80::a+en1]:443", "xn--caf-dma.example"])
def test_host_forms_of_rfc_9112_are_accepted(server, host):
    assert environ_for(server, headers=[("Host", host)])["HTTP_HOST"] == host


def test_header_names_with_underscores_are_dropped(server):
    # Otherwise "X_Forwarded_For" could pass for "X-Forwarded-For".
    environ = environ_for(server, headers=[("X_Forwarded_For", "1.2.3.4"), ("X-Kept", "yes")])
    assert "HTTP_X_FORWARDED_FOR" not in environ
    assert environ["HTTP_X_KEPT"] == "yes"


def test_header_values_are_latin_1_strings(server):
    with server.connect() as conn:
        conn.send(b"GET /environ HTTP/1.1\r\nHost: x\r\nX-Latin: caf\xe9\r\n\r\n")
        environ = conn.read_response().json()["environ"]
    assert environ["HTTP_X_LATIN"] == "caf\xe9"


def test_every_cgi_variable_is_a_str(server):
    report, _ = report_for(server, "POST", headers=[("Content-Type", "text/plain")], body=b"x")
    not_str = {key: kind for key, kind in report["checks"]["types"].items() if "." not in key and kind != "str"}
    assert not_str == {}


def test_wsgi_version_is_the_tuple_1_0(server):
    report, _ = report_for(server)
    assert report["environ"]["wsgi.version"] == [1, 0]
    assert report["checks"]["version_is_tuple"] is True


def test_wsgi_url_scheme_is_http_by_default(server):
    assert environ_for(server)["wsgi.url_scheme"] == "http"


def test_wsgi_input_is_a_file_like(server):
    report, _ = report_for(server)
    assert report["checks"]["input_has_file_methods"] is True


def test_wsgi_errors_is_sys_stderr(server):
    report, _ = report_for(server)
    assert report["checks"]["errors_is_stderr"] is True


def test_wsgi_multithread_and_run_once_are_false(server):
    environ = environ_for(server)
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.run_once"] is False


def test_wsgi_multiprocess_is_false_by_default(server):
    assert environ_for(server)["wsgi.multiprocess"] is False


def test_wsgi_file_wrapper_is_callable(server):
    report, _ = report_for(server)
    assert report["checks"]["file_wrapper_callable"] is True


def test_wsgi_input_terminated_is_true(server):
    assert environ_for(server, "POST", body=b"abc")["wsgi.input_terminated"] is True
    assert environ_for(server, "GET")["wsgi.input_terminated"] is True


@pytest.fixture(scope="module")
def configured_server(module_servers):
    return module_servers.start(name="configured", options={"multiprocess": True, "url_scheme": "https"})


def test_multiprocess_option_sets_wsgi_multiprocess(configured_server):
    assert environ_for(configured_server)["wsgi.multiprocess"] is True


def test_url_scheme_option_sets_wsgi_url_scheme(configured_server):
    assert environ_for(configured_server)["wsgi.url_scheme"] == "https"


# ---------------------------------------------------------------- wsgi.input

SMALL_BODY = b"first line\nsecond line\n\n\r\nfourth line, no newline at the end"


def spilled_body():
    """Over 1 MiB (so it is kept in a temporary file), in lines of varied length."""
    lines = [(b"%d:" % number) + b"y" * (number % 300) + b"\n" for number in range(9000)]
    return b"".join(lines) + b"no newline at the end"


BODIES = {"in-memory": SMALL_BODY, "spilled": spilled_body()}

OPERATIONS = [
    "read",
    "read:-1",
    "read:5,read:5,read",
    "read:0,read:1,read:100000000",
    "readline,readline,readline,read",
    "readline:3,readline:100,readline,readline:0,readline:-1",
    "readlines",
    "iter",
    "readline,iter",
    "read,read,readline,readlines,iter",
    "read:3,readlines,read",
    "read:1048570,readline,read:20,readline:7,readlines",
]

# Zope re-reads the body after a database conflict: seek(0) and again.
REWIND_OPERATIONS = [
    "seekable,tell,read,tell,seek:0,tell,read",
    "read:7,tell,seek:3,readline,seek:0,readlines",
    "readline,seekend:-5,read,seekend:0,read,tell",
    "read:1048570,seekend:-40,readline,seek:0,read:10,tell",
]


@pytest.mark.parametrize("body_name", list(BODIES))
@pytest.mark.parametrize("operations", REWIND_OPERATIONS)
def test_wsgi_input_can_be_rewound_and_read_again(server, apps_module, body_name, operations):
    body = BODIES[body_name]
    with server.connect() as conn:
        conn.send(build_request("POST", f"/input?ops={operations}", body=body))
        response = conn.read_response()
    assert response.status == 200, response
    assert response.json() == apps_module.run_input_ops(io.BytesIO(body), operations)


def test_seeking_past_the_end_stops_at_the_end(server, apps_module):
    """Unlike BytesIO, whose position may pass the end: every bodiless
    request shares one empty wsgi.input, and a seek must not reach the next."""
    summarize = apps_module.summarize
    first = server.get_json("/input?ops=seek:5,tell,read")
    assert first == [{"op": "seek:5", "result": summarize(0)}, {"op": "tell", "result": summarize(0)},
                     {"op": "read", "result": summarize(b"")}]
    assert server.get_json("/input?ops=tell,read") == apps_module.run_input_ops(io.BytesIO(b""), "tell,read")


@pytest.mark.parametrize("body_name", list(BODIES))
@pytest.mark.parametrize("operations", OPERATIONS)
def test_wsgi_input_behaves_like_a_binary_file(server, apps_module, body_name, operations):
    body = BODIES[body_name]
    assert (len(body) > 1 << 20) == (body_name == "spilled")
    with server.connect() as conn:
        conn.send(build_request("POST", f"/input?ops={operations}", body=body))
        response = conn.read_response()
    assert response.status == 200, response
    expected = apps_module.run_input_ops(io.BytesIO(body), operations)
    assert response.json() == expected


@pytest.mark.parametrize("body_name", list(BODIES))
def test_wsgi_input_of_a_chunked_body_behaves_like_a_binary_file(server, apps_module, body_name):
    body = BODIES[body_name]
    operations = "readline,read:10,readline:5,readlines"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[start:start + 70000]), body[start:start + 70000])
                       for start in range(0, len(body), 70000)) + b"0\r\n\r\n"
    with server.connect() as conn:
        conn.send(build_request("POST", f"/input?ops={operations}", [("Transfer-Encoding", "chunked")]) + chunked)
        response = conn.read_response()
    assert response.json() == apps_module.run_input_ops(io.BytesIO(body), operations)


def test_wsgi_input_is_empty_without_a_body(server, apps_module):
    report = server.get_json("/input?ops=read,readline,readlines,iter")
    assert report == apps_module.run_input_ops(io.BytesIO(b""), "read,readline,readlines,iter")


@pytest.mark.parametrize("body_name", list(BODIES))
def test_wsgi_input_readlines_with_a_hint_returns_whole_lines_and_loses_nothing(server, body_name):
    body = BODIES[body_name]
    with server.connect() as conn:
        conn.send(build_request("POST", "/input-lines?hint=15", body=body))
        report = conn.read_response().json()
    lines = [line.encode("latin-1") for line in report["lines"]]
    # PEP 3333 lets a server ignore the hint; either way the lines are whole
    # lines from the start, and what readlines() did not return, read() does.
    assert lines and lines == io.BytesIO(body).readlines()[:len(lines)]
    assert b"".join(lines) + report["rest"].encode("latin-1") == body
