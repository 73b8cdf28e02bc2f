"""Behind a proxy: the scheme and the client address its forwarded headers
give (X-Forwarded-Proto, -Ssl, -Protocol, -For and RFC 7239 Forwarded)
count only when the peer is in forwarded_allow_ips (default 127.0.0.1,::1,
as in gunicorn; a unix peer always), and then whole or not at all. The
original peer stays in the environ as ursa.peer; contradictory schemes are
a 400, as in gunicorn."""
import pytest

from support.rawhttp import build_request


def environ_with(server, *headers, host="127.0.0.1"):
    with server.connect() as conn:
        conn.send(build_request("GET", "/environ", list(headers)))
        response = conn.read_response()
    assert response.status == 200, response
    return response.json()["environ"]


@pytest.fixture(scope="module")
def trusting(module_servers):
    """Trusts loopback (the default) and 10.0.0.0/8, the proxies in front."""
    return module_servers.start(name="trusting", options={"forwarded_allow_ips": "127.0.0.1,::1,10.0.0.0/8"})


@pytest.fixture(scope="module")
def distrusting(module_servers):
    return module_servers.start(name="distrusting", options={"forwarded_allow_ips": "10.0.0.1"})


@pytest.mark.parametrize("header, scheme", [
    (("X-Forwarded-Proto", "https"), "https"),
    (("X-Forwarded-Proto", "HTTPS"), "https"),
    (("X-Forwarded-Proto", "http"), "http"),
    (("X-Forwarded-Ssl", "on"), "https"),
    (("X-Forwarded-Protocol", "ssl"), "https"),
    (("Forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"), "https"),
])
def test_a_trusted_proxy_sets_the_scheme(trusting, header, scheme):
    assert environ_with(trusting, header)["wsgi.url_scheme"] == scheme


def test_without_forwarded_headers_the_scheme_is_the_servers(trusting):
    environ = environ_with(trusting)
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert "ursa.peer" not in environ


def test_contradictory_scheme_headers_are_a_400(trusting):
    with trusting.connect() as conn:
        conn.send(build_request("GET", "/environ", [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]))
        response = conn.read_response()
    assert response.status == 400
    assert b"contradict" in response.body
    trusting.assert_serving()


@pytest.mark.parametrize("values, client", [
    (["203.0.113.7"], "203.0.113.7"),
    # The right-most address that is not a trusted proxy: a client cannot
    # pose as another by sending its own X-Forwarded-For.
    (["198.51.100.1, 203.0.113.7, 10.0.0.5"], "203.0.113.7"),
    (["198.51.100.1", "203.0.113.7, 10.1.2.3"], "203.0.113.7"),
    (["10.0.0.2, 10.0.0.3"], "10.0.0.2"),
    (["[2001:db8::1]"], "2001:db8::1"),
    (["203.0.113.7:4711"], "203.0.113.7"),
])
def test_a_trusted_proxy_sets_the_client_address_from_x_forwarded_for(trusting, values, client):
    environ = environ_with(trusting, *[("X-Forwarded-For", value) for value in values])
    assert environ["REMOTE_ADDR"] == client
    assert environ["ursa.peer"] == "127.0.0.1"


@pytest.mark.parametrize("value, client, scheme", [
    ('for=203.0.113.7', "203.0.113.7", "http"),
    ('for="[2001:db8:cafe::17]:4711";proto=https', "2001:db8:cafe::17", "https"),
    ('for=198.51.100.1;proto=http, for=203.0.113.7;proto=https, for=10.0.0.5', "203.0.113.7", "https"),
    ('For=203.0.113.7;Proto=HTTPS', "203.0.113.7", "https"),
])
def test_forwarded_sets_the_client_and_its_scheme(trusting, value, client, scheme):
    environ = environ_with(trusting, ("Forwarded", value))
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == (client, scheme)


@pytest.mark.parametrize("value", ["for=unknown", "for=_hidden"])
def test_forwarded_without_an_address_keeps_the_peer(trusting, value):
    environ = environ_with(trusting, ("Forwarded", value))
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert "ursa.peer" not in environ


def test_forwarded_speaks_for_the_client_before_x_forwarded_for(trusting):
    environ = environ_with(trusting, ("X-Forwarded-For", "198.51.100.1"), ("Forwarded", "for=203.0.113.7"))
    assert environ["REMOTE_ADDR"] == "203.0.113.7"


def test_an_untrusted_peer_is_ignored_whole(distrusting):
    environ = environ_with(distrusting, ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7"),
                           ("Forwarded", "for=198.51.100.1;proto=https"), ("X-Forwarded-Ssl", "off"))
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert "ursa.peer" not in environ
    # The headers still reach the app as headers.
    assert environ["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"


def test_star_trusts_every_peer(servers):
    server = servers.start(options={"forwarded_allow_ips": "*"})
    assert environ_with(server, ("X-Forwarded-For", "203.0.113.7"))["REMOTE_ADDR"] == "203.0.113.7"


def test_a_unix_socket_peer_is_trusted(servers, tmp_path):
    server = servers.start(host=f"unix:{tmp_path}/app.sock", port=None,
                           options={"forwarded_allow_ips": "10.0.0.1"})
    environ = environ_with(server, ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7"))
    assert (environ["wsgi.url_scheme"], environ["REMOTE_ADDR"], environ["ursa.peer"]) == ("https", "203.0.113.7", "")


def test_ipv6_loopback_is_trusted_by_default(servers):
    server = servers.start(host="::1")
    assert environ_with(server, ("X-Forwarded-Proto", "https"))["wsgi.url_scheme"] == "https"


# ---------------------------------------------------------------- SCRIPT_NAME

@pytest.fixture(scope="module")
def mounted(module_servers):
    return module_servers.start(name="mounted", options={"script_name": "/app"})


@pytest.mark.parametrize("target, script_name, path_info", [
    ("/app/environ/page", "/app", "/environ/page"),
    ("/app/environ/a%20b?x=1", "/app", "/environ/a b"),
    # Outside the prefix a request is the app's as it is (a load balancer's
    # health check, say), with an empty SCRIPT_NAME.
    ("/environ/health", "", "/environ/health"),
])
def test_script_name_splits_requests_under_the_prefix(mounted, target, script_name, path_info):
    environ = mounted.get_json(target)["environ"]
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_the_prefix_must_end_at_a_path_segment(servers):
    server = servers.start(options={"script_name": "/env"})
    # "/environ/x" begins with "/env" but is not under it.
    environ = server.get_json("/environ/x")["environ"]
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("", "/environ/x")
