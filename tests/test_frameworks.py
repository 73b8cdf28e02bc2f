"""Real frameworks served end to end: Flask and Django (configured in-process)."""
import pytest
import requests

pytest.importorskip("flask", reason="Flask is not installed (requirements-dev.txt)")
pytest.importorskip("django", reason="Django is not installed (requirements-dev.txt)")


@pytest.fixture(scope="module", params=["flask", "django"])
def framework_server(module_servers, request):
    return module_servers.start(name=request.param, app=f"make_{request.param}_app", factory=True,
                                ready_path="/hello")


def test_get_with_a_query_parameter(framework_server):
    response = requests.get(framework_server.url("/hello?name=ursa"), timeout=30)
    assert response.status_code == 200
    assert response.text == "Hello, ursa!"


def test_json_post(framework_server):
    response = requests.post(framework_server.url("/sum"), json={"numbers": [1, 2, 3.5], "label": "caf\u00e9"},
                             timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"sum": 6.5, "label": "caf\u00e9"}


def test_unknown_route_is_the_frameworks_404(framework_server):
    response = requests.get(framework_server.url("/no-such-page"), timeout=30)
    assert response.status_code == 404


def test_keep_alive_session_serves_many_requests(framework_server):
    with requests.Session() as session:
        for number in range(20):
            response = session.get(framework_server.url(f"/hello?name=n{number}"), timeout=30)
            assert response.text == f"Hello, n{number}!"


def test_flask_sees_every_cookie_of_repeated_cookie_lines(module_servers):
    """A browser behind an HTTP/2 proxy sends its cookies as several lines;
    joined with "," Flask saw one cookie and the session was lost."""
    server = module_servers.start(name="flask-cookies", app="make_flask_app", factory=True, ready_path="/hello")
    response = server.get("/cookies", headers=[("Cookie", "a=1"), ("Cookie", "session=abc")])
    assert response.status == 200, response
    assert response.json() == {"a": "1", "session": "abc"}
