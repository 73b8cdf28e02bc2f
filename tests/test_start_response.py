"""start_response: argument checking with clear errors, exc_info, the rule
of one call, and the write() callable it returns.

The app catches what start_response raises and reports its type and message
in the body (apps.start_response_validation), so each case is visible here.
"""
import pytest

# case name (see apps.BAD_START_RESPONSE_CALLS) -> (exception type, word the message must contain)
STATUS_CASES = {
    "status-bytes": ("TypeError", "status"),
    "status-int": ("TypeError", "status"),
    "status-none": ("TypeError", "status"),
    "status-no-reason": ("ValueError", "status"),
    "status-two-digits": ("ValueError", "status"),
    "status-four-digits": ("ValueError", "status"),
    "status-letters": ("ValueError", "status"),
    "status-no-space": ("ValueError", "status"),
    "status-newline": ("ValueError", "status"),
}

HEADER_CASES = {
    "headers-dict": ("TypeError", "header"),
    "headers-tuple": ("TypeError", "header"),
    "headers-str": ("TypeError", "header"),
    "headers-none": ("TypeError", "header"),
    "header-item-list": ("TypeError", "header"),
    "header-item-3-tuple": ("TypeError", "header"),
    "header-item-1-tuple": ("TypeError", "header"),
    "header-item-str": ("TypeError", "header"),
    "header-name-bytes": ("TypeError", "header"),
    "header-value-bytes": ("TypeError", "header"),
    "header-value-int": ("TypeError", "header"),
    "header-value-not-latin-1": ("ValueError", "header"),
    "header-name-not-latin-1": ("ValueError", "header"),
    "header-value-cr": ("ValueError", "header"),
    "header-value-lf": ("ValueError", "header"),
    "header-value-nul": ("ValueError", "header"),
    "header-value-crlf-injection": ("ValueError", "header"),
    "header-name-cr": ("ValueError", "header"),
    "header-name-lf": ("ValueError", "header"),
    "header-name-nul": ("ValueError", "header"),
    "header-name-space": ("ValueError", "header"),
    "header-name-colon": ("ValueError", "header"),
    "header-name-empty": ("ValueError", "header"),
    "header-name-parenthesis": ("ValueError", "header"),
}


def outcome_of(server, case):
    response = server.get(f"/start-response?case={case}")
    assert response.status == 200, response
    return response.json()


@pytest.mark.parametrize("case", list(STATUS_CASES))
def test_bad_status_is_refused_with_an_error_naming_the_status(server, case):
    expected_type, word = STATUS_CASES[case]
    outcome = outcome_of(server, case)
    assert outcome["raised"], f"start_response accepted {case}"
    assert outcome[f"is_{'type' if expected_type == 'TypeError' else 'value'}_error"], outcome
    assert word in outcome["message"].lower(), outcome


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_bad_headers_are_refused_with_an_error_naming_the_header_problem(server, case):
    expected_type, word = HEADER_CASES[case]
    outcome = outcome_of(server, case)
    assert outcome["raised"], f"start_response accepted {case}"
    assert outcome[f"is_{'type' if expected_type == 'TypeError' else 'value'}_error"], outcome
    assert word in outcome["message"].lower(), outcome


def test_no_injected_header_reaches_the_wire(server):
    response = server.get("/start-response?case=header-value-crlf-injection")
    assert response.header("Set-Cookie") is None


def test_exc_info_before_the_head_is_sent_replaces_status_and_headers(server):
    response = server.get("/exc-info-replaces")
    assert response.status == 500
    assert response.header("X-Replaced") == "1"
    assert response.header("X-First") is None
    assert response.body == b"replaced"


@pytest.mark.parametrize("target", ["/exc-info-after-write", "/exc-info-after-yield"])
def test_exc_info_after_the_head_is_sent_re_raises_the_exception(server, target):
    response = server.get(target)
    assert response.status == 200
    assert response.body == b"part one;re-raised ZeroDivisionError"


def test_second_start_response_without_exc_info_is_an_error(server):
    response = server.get("/start-response-twice")
    assert response.status == 200
    assert response.header("X-First") == "1"
    assert response.json()["raised"] is True


def test_write_callable_alone_sends_the_body(server):
    response = server.get("/write?mode=alone")
    assert (response.status, response.body) == (200, b"hello world")


def test_write_callable_mixed_with_a_returned_iterable_keeps_the_order(server):
    assert server.get("/write?mode=mixed").body == b"written;iterated;too"


def test_write_callable_with_the_apps_content_length(server):
    response = server.get("/write?mode=with-length")
    assert response.header("Content-Length") == "9"
    assert response.body == b"abcdefghi"


@pytest.mark.parametrize("kept", ["start_response", "write", "both"])
def test_callables_kept_past_their_request_raise_and_never_touch_a_later_one(server, kept):
    with server.connect() as conn:  # one connection: the later request is on the same one
        conn.send(f"GET /keep-callables?keep={kept} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert conn.read_response().json() == {}
        for _ in range(2):  # the second time, whatever the server reused is in play
            conn.send(f"GET /keep-callables?call={kept} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            response = conn.read_response()
            outcome = response.json()
            assert response.body.find(b"stale") == -1
            for name in (["start_response", "write"] if kept == "both" else [kept]):
                assert outcome[name].startswith("RuntimeError: ") and "after its response ended" in outcome[name]


def test_write_callable_response_is_chunked_on_http11_and_keeps_the_connection(server):
    with server.connect() as conn:
        conn.send(b"GET /write?mode=mixed HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        response = conn.read_response()
        assert response.framing == "chunked"
        assert response.body == b"written;iterated;too"
        assert conn.read_response().body == b"pong"
