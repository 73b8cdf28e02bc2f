"""WebSockets for ASGI apps over real sockets (ws_apps.py): the handshake
(RFC 6455 4.2) and the websocket scope, the ASGI events, and the cases of
the Autobahn testsuite's categories 1-7 and 9, each graded strictly (the
close code the RFC asks for, the connection ended by the server), with
frames built byte for byte (support/rawws.py). The websockets library is
the well-behaved client."""
import asyncio
import json
import struct
import sys

import pytest

from support.rawhttp import build_request
from support.rawws import (BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, close_payload, handshake_headers,
                           open_websocket)
from support.waiting import file_text, wait_until

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="ursa serves ASGI apps on Python 3.11+")

APP = "ws_apps:routing"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers.start(name="websocket", app=APP)


def ws_url(server, target):
    return f"ws://127.0.0.1:{server.port}{target}"


def run(coroutine):
    return asyncio.run(coroutine)


def expect_failure(ws, code):
    """The server fails the connection: a close frame with `code`, then
    the end of the connection."""
    frame = ws.read_close()
    assert frame.close_code == code, frame


# ---------------------------------------------------------------- the handshake

@pytest.mark.parametrize("name", ["sec-websocket-extensions", "Sec-WebSocket-Accept", "sec-websocket-protocol",
                                  "upgrade", "connection"])
def test_handshake_fields_from_the_app_are_refused_and_the_servers_are_sent_once(server, name):
    from websockets.asyncio.client import connect

    async def talk():
        async with connect(ws_url(server, f"/handshake-field?name={name}")) as ws:
            return ws.response.headers, await ws.recv()

    headers, refusal = run(talk())
    assert "is the server's to send" in refusal and name in refusal
    [extensions] = headers.get_all("Sec-WebSocket-Extensions")
    assert extensions.startswith("permessage-deflate")
    assert len(headers.get_all("Sec-WebSocket-Accept")) == 1
    assert "x-mine" not in str(headers)


def test_scope_subprotocol_and_accept_headers(server):
    from websockets.asyncio.client import connect

    async def talk():
        async with connect(ws_url(server, "/scope?a=1&b=%20"), subprotocols=["chat", "v2"]) as ws:
            return ws.subprotocol, ws.response.headers, json.loads(await ws.recv())

    subprotocol, headers, scope = run(talk())
    assert subprotocol == "chat"
    assert headers["x-accepted"] == "yes"
    assert headers["Server"] == "ursa" and "Date" in headers
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert (scope["http_version"], scope["scheme"]) == ("1.1", "ws")
    assert "method" not in scope
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope", "/scope", "a=1&b=%20")
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["chat", "v2"]
    assert scope["extensions"] == ["websocket.http.response"]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["state"] == {"started": "True"}
    assert ["sec-websocket-version", "13"] in scope["headers"]


def test_scheme_is_wss_behind_a_tls_proxy(server):
    ws = open_websocket(server, "/scope", extra_headers=[("X-Forwarded-Proto", "https")])
    with ws:
        opcode, payload = ws.read_message()
        assert json.loads(payload)["scheme"] == "wss"
        assert ws.read_close().close_code == 1000


def test_the_101_and_its_accept_key(server):
    with open_websocket(server, "/echo") as ws:
        response = ws.response
        assert (response.status, response.reason) == (101, "Switching Protocols")
        assert response.header("Upgrade") == "websocket"
        assert response.header("Connection") == "Upgrade"
        assert response.header("Sec-WebSocket-Protocol") is None
        assert response.header("Content-Length") is None and response.header("Transfer-Encoding") is None


def handshake_answer(server, headers=None, method="GET", version="HTTP/1.1", target="/echo"):
    """The answer to a handshake (a valid one by default) on a new connection."""
    headers = handshake_headers()[0] if headers is None else headers
    with server.connect() as conn:
        conn.send(build_request(method, target, headers, version=version))
        return conn.read_response()


@pytest.mark.parametrize("version", ["8", "14", "", "13, 8"])
def test_another_version_gets_426_naming_13(server, version):
    headers, _ = handshake_headers(version=version)
    response = handshake_answer(server, headers)
    assert response.status == 426
    assert response.header("Sec-WebSocket-Version") == "13"
    assert response.header("Connection") == "close"


def test_no_version_gets_426(server):
    headers, _ = handshake_headers()
    response = handshake_answer(server, [h for h in headers if h[0] != "Sec-WebSocket-Version"])
    assert response.status == 426


@pytest.mark.parametrize("key", ["", "short", "AAAAAAAAAAAAAAAAAAAAAA==x", "AAAAAAAAAAAAAAAAAAAAAB==",
                                 "AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAA*A==", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="])
def test_a_key_that_is_not_16_bytes_of_base64_gets_400(server, key):
    headers, _ = handshake_headers(key=key)
    response = handshake_answer(server, headers)
    assert response.status == 400, response
    assert b"Sec-WebSocket-Key" in response.body


def test_two_keys_get_400(server):
    headers, _ = handshake_headers()
    response = handshake_answer(server, headers + [("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")])
    assert response.status == 400


def test_a_handshake_must_be_get_on_http_1_1_with_connection_upgrade(server):
    headers, _ = handshake_headers()
    assert handshake_answer(server, headers, method="POST").status == 400
    assert handshake_answer(server, headers, version="HTTP/1.0").status == 400
    without_upgrade = [h for h in headers if h[0] != "Connection"] + [("Connection", "keep-alive")]
    response = handshake_answer(server, without_upgrade)
    assert response.status == 400 and b"Connection: Upgrade" in response.body


def test_connection_and_upgrade_are_lists_in_any_case(server):
    headers, _ = handshake_headers()
    headers = [(name, value) for name, value in headers if name not in ("Upgrade", "Connection")]
    headers += [("Upgrade", "h2c, WebSocket"), ("Connection", "keep-alive, UPGRADE")]
    with server.connect() as conn:
        conn.send(build_request("GET", "/echo", headers))
        assert conn.read_response().status == 101


def test_an_ordinary_request_and_other_upgrades_are_plain_http(server):
    assert server.get("/echo").body == b"plain http /echo"
    response = server.get("/echo", headers=[("Upgrade", "h2c"), ("Connection", "Upgrade")])
    assert (response.status, response.body) == (200, b"plain http /echo")


def test_closing_before_accepting_gets_403(server):
    response = handshake_answer(server, target="/deny")
    assert response.status == 403
    assert response.header("Connection") == "close"


def test_returning_without_accepting_gets_403(server):
    assert handshake_answer(server, target="/no-answer").status == 403


def test_failing_before_accepting_gets_500(server):
    assert handshake_answer(server, target="/fail-before-accept").status == 500
    server.wait_for_log("the app fails before it accepts")


def test_an_http_response_denies_the_handshake(server):
    response = handshake_answer(server, target="/http-response")
    assert (response.status, response.body) == (401, b"who are you?")
    assert response.header("www-authenticate") == "Basic"


def test_a_wsgi_server_answers_an_upgrade_as_before(servers):
    response = handshake_answer(servers.start(app="routing_app"), target="/ping")
    assert (response.status, response.body) == (200, b"pong")
    assert response.header("Connection") == "close"


# ---------------------------------------------------------------- the ASGI events

def test_echo_of_text_and_bytes_with_the_websockets_client(server):
    from websockets.asyncio.client import connect

    async def talk():
        async with connect(ws_url(server, "/echo"), compression=None) as ws:
            answers = []
            for message in ("hello", b"\x00\xff", "", b"", "é€😀"):
                await ws.send(message)
                answers.append(await ws.recv())
            return answers

    assert run(talk()) == ["hello", b"\x00\xff", "", b"", "é€😀"]


def test_the_app_closes_with_a_code_and_reason_and_then_hears_the_disconnect(server, tmp_path):
    marker = tmp_path / "disconnect"
    with open_websocket(server, f"/close-with?code=4001&reason=done&marker={marker}") as ws:
        assert ws.read_message() == (TEXT, b"bye")
        frame = ws.read_close()
    assert frame.payload == close_payload(4001, b"done")
    wait_until(lambda: file_text(marker), 30, "the app heard the disconnect")
    assert json.loads(file_text(marker)) == {"type": "websocket.disconnect", "code": 4001, "reason": ""}


def test_the_client_closes_and_the_app_hears_its_code_and_reason(server, tmp_path):
    marker = tmp_path / "code"
    with open_websocket(server, f"/echo?marker={marker}") as ws:
        ws.send_frame(CLOSE, close_payload(4321, b"client done"))
        frame = ws.read_frame()
        assert frame.opcode == CLOSE and frame.payload == close_payload(4321, b"client done")
        ws.assert_closed()
    wait_until(lambda: file_text(marker) == "4321 client done", 30, "the app heard code 4321 and its reason")


def test_a_client_that_vanishes_without_a_close_frame(server, tmp_path):
    marker = tmp_path / "code"
    ws = open_websocket(server, f"/echo?marker={marker}")
    ws.send_frame(TEXT, b"hi")
    assert ws.read_message() == (TEXT, b"hi")
    ws.conn.close_with_reset() if hasattr(ws.conn, "close_with_reset") else ws.close()
    wait_until(lambda: file_text(marker) == "1006", 30, "the app heard 1006")
    server.assert_serving()


def test_an_app_that_returns_closes_with_1000(server):
    with open_websocket(server, "/returns") as ws:
        assert ws.read_close().close_code == 1000


def test_an_app_that_fails_closes_with_1011(server):
    with open_websocket(server, "/fail-after-accept") as ws:
        ws.send_frame(TEXT, b"go")
        assert ws.read_close().close_code == 1011
    server.wait_for_log("the app fails after a message")


def test_send_after_the_disconnect_raises_client_disconnected(server, tmp_path):
    marker = tmp_path / "outcome"
    with open_websocket(server, f"/send-after-disconnect?marker={marker}") as ws:
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_frame().opcode == CLOSE
    wait_until(lambda: file_text(marker), 30, "the app tried to send")
    assert file_text(marker) == "ClientDisconnected"


def test_invalid_messages_raise_in_the_app(server):
    with open_websocket(server, "/bad-messages") as ws:
        opcode, payload = ws.read_message()
        assert json.loads(payload) == ["ValueError", "ValueError", "TypeError", "ValueError", "ValueError",
                                       "RuntimeError", "RuntimeError", "ValueError"]
        assert ws.read_close().close_code == 1000


def test_send_waits_while_the_client_does_not_read(server, tmp_path):
    """Backpressure: 64 MiB cannot all be sent while the client reads 1 MiB."""
    marker = tmp_path / "sent"
    with open_websocket(server, f"/stream?count=1024&size=65536&marker={marker}") as ws:
        received = 0
        while received < MiB:
            opcode, payload = ws.read_message()
            received += len(payload)
        assert not marker.exists()
        while received < 1024 * 65536:
            opcode, payload = ws.read_message()
            assert opcode == BINARY
            received += len(payload)
        wait_until(marker.exists, 30, "the app sent everything")
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_close(answer=False).close_code == 1000


# ---------------------------------------------------------------- Autobahn 1: framing

@pytest.mark.parametrize("length", [0, 125, 126, 127, 128, 65535, 65536, 65537])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_1_messages_of_every_length_form(server, opcode, length):
    payload = b"*" * length
    with open_websocket(server) as ws:
        ws.send_frame(opcode, payload)
        assert ws.read_message() == (opcode, payload)
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_close(answer=False).close_code == 1000


def test_1_a_frame_written_byte_by_byte(server):
    from support.rawws import frame

    with open_websocket(server) as ws:
        for byte in frame(TEXT, b"slowly"):
            ws.send(bytes([byte]))
        assert ws.read_message() == (TEXT, b"slowly")


# ---------------------------------------------------------------- Autobahn 2: pings and pongs

@pytest.mark.parametrize("payload", [b"", b"hello", b"\x00\xff\xfe" * 41 + b"xx"])
def test_2_a_ping_gets_a_pong_with_its_payload(server, payload):
    with open_websocket(server) as ws:
        ws.send_frame(PING, payload)
        frame = ws.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, payload)


def test_2_an_unsolicited_pong_is_ignored(server):
    with open_websocket(server) as ws:
        ws.send_frame(PONG, b"unasked")
        ws.send_frame(TEXT, b"after")
        assert ws.read_message() == (TEXT, b"after")


def test_2_ten_pings_in_one_write_get_ten_pongs(server):
    from support.rawws import frame

    with open_websocket(server) as ws:
        ws.send(b"".join(frame(PING, b"%d" % i) for i in range(10)))
        assert [ws.read_frame().payload for _ in range(10)] == [b"%d" % i for i in range(10)]


# ---------------------------------------------------------------- Autobahn 3: reserved bits

@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("opcode", [TEXT, BINARY, PING])
def test_3_reserved_bits_are_a_protocol_error(server, rsv, opcode):
    with open_websocket(server) as ws:
        ws.send_frame(opcode, b"hello", rsv=rsv)
        expect_failure(ws, 1002)


def test_3_reserved_bits_after_a_valid_message(server):
    # The failure is immediate (RFC 6455 7.1.7): an echo the app had not
    # sent yet is not waited for, so the test waits for it first.
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, b"first")
        assert ws.read_message() == (TEXT, b"first")
        ws.send_frame(TEXT, b"second", rsv=2)
        ws.send_frame(PING, b"after")
        expect_failure(ws, 1002)


# ---------------------------------------------------------------- Autobahn 4: opcodes

@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_4_reserved_opcodes_are_a_protocol_error(server, opcode):
    with open_websocket(server) as ws:
        ws.send_frame(opcode, b"payload")
        expect_failure(ws, 1002)


# ---------------------------------------------------------------- Autobahn 5: fragmentation

@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_5_a_fragmented_message_is_one_message(server, opcode):
    with open_websocket(server) as ws:
        ws.send_frame(opcode, b"frag", fin=False)
        ws.send_frame(CONTINUATION, b"men", fin=False)
        ws.send_frame(CONTINUATION, b"", fin=False)
        ws.send_frame(CONTINUATION, b"ted")
        assert ws.read_message() == (opcode, b"fragmented")


def test_5_pings_between_fragments_are_answered_at_once(server):
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, b"one ", fin=False)
        ws.send_frame(PING, b"between")
        frame = ws.read_frame()
        assert (frame.opcode, frame.payload) == (PONG, b"between")
        ws.send_frame(CONTINUATION, b"two")
        assert ws.read_message() == (TEXT, b"one two")


def test_5_many_small_fragments(server):
    with open_websocket(server) as ws:
        from support.rawws import frame
        parts = [frame(BINARY if i == 0 else CONTINUATION, bytes([i % 256]) * 7, fin=i == 999) for i in range(1000)]
        ws.send(b"".join(parts))
        assert ws.read_message() == (BINARY, b"".join(bytes([i % 256]) * 7 for i in range(1000)))


# ---------------------------------------------------------------- Autobahn 6: UTF-8

VALID_UTF8 = ["κόσμε".encode(), b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xef\xbf\xbf", b"\xed\x9f\xbf",
              b"\xee\x80\x80", "Hello-µ@ßöäüàá-UTF-8!!".encode()]
INVALID_UTF8 = [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
                b"\x80", b"\xbf", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x88\x80\x80\xaf",
                b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xfe", b"\xff", b"\xce",
                b"\xe1\xbd", b"a\xc0"]


@pytest.mark.parametrize("payload", VALID_UTF8)
def test_6_valid_utf8_is_echoed(server, payload):
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, payload)
        assert ws.read_message() == (TEXT, payload)


@pytest.mark.parametrize("payload", INVALID_UTF8)
def test_6_invalid_utf8_closes_with_1007(server, payload):
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, payload)
        expect_failure(ws, 1007)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_6_a_code_point_split_across_fragments(server, split):
    text = "a😀b".encode()
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, text[:split + 1], fin=False)
        ws.send_frame(CONTINUATION, text[split + 1:])
        assert ws.read_message() == (TEXT, text)


def test_6_each_byte_in_its_own_fragment(server):
    text = "κόσμε😀".encode()
    with open_websocket(server) as ws:
        for i, byte in enumerate(text):
            ws.send_frame(TEXT if i == 0 else CONTINUATION, bytes([byte]), fin=i == len(text) - 1)
        assert ws.read_message() == (TEXT, text)


# ---------------------------------------------------------------- Autobahn 7: closing

def test_7_a_close_is_echoed_and_the_server_ends_the_connection(server):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE, close_payload(1000, b"bye"))
        frame = ws.read_frame()
        assert frame.opcode == CLOSE and frame.close_code == 1000
        ws.assert_closed()


def test_7_an_empty_close_is_answered_empty(server):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE)
        frame = ws.read_frame()
        assert (frame.opcode, frame.payload) == (CLOSE, b"")
        ws.assert_closed()


def test_7_nothing_is_read_after_the_close(server):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE, close_payload(1000))
        ws.send_frame(TEXT, b"after the close")
        ws.send_frame(PING, b"after the close")
        frame = ws.read_frame()
        assert frame.opcode == CLOSE
        ws.assert_closed()


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_7_valid_close_codes_are_echoed(server, code):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE, close_payload(code))
        assert ws.read_close(answer=False).close_code == code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535])
def test_7_invalid_close_codes_are_a_protocol_error(server, code):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE, close_payload(code))
        expect_failure(ws, 1002)


def test_7_a_close_reason_of_123_bytes(server):
    with open_websocket(server) as ws:
        ws.send_frame(CLOSE, close_payload(1000, b"r" * 123))
        assert ws.read_close(answer=False).close_code == 1000


# ---------------------------------------------------------------- frames that fail the connection

# Autobahn's cases where the server must fail the connection, as the frames
# the client sends (opcode, payload, options) and the close code it must get.
FAILING = {
    "2: a ping of 126 bytes": ([(PING, b"x" * 126, {})], 1002),
    "2: a fragmented ping": ([(PING, b"part", {"fin": False})], 1002),
    "5: a continuation with nothing to continue": ([(CONTINUATION, b"orphan", {})], 1002),
    "5: a new message inside a fragmented one": ([(TEXT, b"start", {"fin": False}), (TEXT, b"another", {})], 1002),
    "5: an unmasked frame": ([(TEXT, b"bare", {"mask": False})], 1002),
    "6: invalid UTF-8 in a later fragment, before the end": (
        [(TEXT, "κόσμε".encode(), {"fin": False}), (CONTINUATION, b"\xed\xa0\x80", {"fin": False})], 1007),
    "6: a message ending mid code point": (
        [(TEXT, b"ok\xf0\x90", {"fin": False}), (CONTINUATION, b"\x80", {})], 1007),
    "7: a close payload of one byte": ([(CLOSE, b"\x03", {})], 1002),
    "7: a close reason that is not UTF-8": (
        [(CLOSE, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), {})], 1007),
}


@pytest.mark.parametrize("case", FAILING)
def test_frames_that_fail_the_connection(server, case):
    frames, code = FAILING[case]
    with open_websocket(server) as ws:
        for opcode, payload, options in frames:
            ws.send_frame(opcode, payload, **options)
        expect_failure(ws, code)


# ---------------------------------------------------------------- Autobahn 9: large messages

@pytest.mark.parametrize("size", [MiB, 4 * MiB, 16 * MiB])
@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_9_large_messages(server, opcode, size):
    payload = b"*" * size
    with open_websocket(server) as ws:
        ws.send_frame(opcode, payload)
        assert ws.read_message() == (opcode, payload)


def test_9_a_large_message_in_many_frames(server):
    from support.rawws import frame
    chunk = b"0123456789abcdef" * 256
    with open_websocket(server) as ws:
        ws.send(b"".join(frame(BINARY if i == 0 else CONTINUATION, chunk, fin=i == 1023) for i in range(1024)))
        assert ws.read_message() == (BINARY, chunk * 1024)


def test_9_a_message_over_the_limit_closes_with_1009(server):
    with open_websocket(server) as ws:
        ws.send_frame(BINARY, b"x" * (8 * MiB), fin=False)
        ws.send_frame(CONTINUATION, b"x" * (8 * MiB + 1))
        expect_failure(ws, 1009)


def test_9_the_limit_is_an_option(servers):
    small = servers.start(app=APP, options={"websocket_max_message_size": 1000})
    with open_websocket(small) as ws:
        ws.send_frame(TEXT, b"x" * 1000)
        assert ws.read_message() == (TEXT, b"x" * 1000)
        ws.send_frame(TEXT, b"x" * 1001)
        expect_failure(ws, 1009)


# ---------------------------------------------------------------- keepalive pings, timeouts, the stop

def test_the_server_pings_and_closes_a_peer_that_never_answers(servers, tmp_path):
    quick = servers.start(app=APP, options={"websocket_ping_interval": 0.2, "websocket_ping_timeout": 0.3})
    marker = tmp_path / "code"
    with open_websocket(quick, f"/echo?marker={marker}") as ws:
        frame = ws.read_frame()
        assert frame.opcode == PING
        ws.send_frame(PONG, frame.payload)
        assert ws.read_frame().opcode == PING  # the next, after the interval
        ws.assert_closed()  # that one is not answered
    wait_until(lambda: file_text(marker) == "1006", 30, "the app heard 1006")


def test_a_pong_that_waited_while_the_app_held_the_loop_keeps_the_connection(servers, tmp_path):
    """The server pings; an HTTP request's app then blocks the loop for five
    ping timeouts, and the pong arrives meanwhile: it waited in the socket
    before the deadline, so the WebSocket stays open and echoes after."""
    import threading

    quick = servers.start(app=APP, options={"websocket_ping_interval": 0.2, "websocket_ping_timeout": 0.3})
    marker = tmp_path / "blocking"
    with open_websocket(quick) as ws:
        ping = ws.read_frame()
        assert ping.opcode == PING
        blocked = threading.Thread(target=quick.get, args=(f"/block-loop?seconds=1.5&marker={marker}",))
        blocked.start()
        try:
            wait_until(marker.exists, 30, "the app blocks the loop")
            ws.send_frame(PONG, ping.payload)
        finally:
            blocked.join(60)
        ws.send_frame(TEXT, b"after the block")
        assert ws.read_message() == (TEXT, b"after the block")
        for _ in range(3):  # pings go on, answered, and the connection with them
            frame = ws.read_frame()
            if frame.opcode == PING:
                ws.send_frame(PONG, frame.payload)
        ws.send_frame(TEXT, b"still open")
        assert ws.read_message() == (TEXT, b"still open")


def test_a_close_the_peer_never_answers_ends_after_the_close_timeout(servers):
    quick = servers.start(app=APP, options={"websocket_close_timeout": 0.2})
    with open_websocket(quick, "/close-with?code=1000") as ws:
        assert ws.read_message() == (TEXT, b"bye")
        assert ws.read_frame().close_code == 1000
        ws.assert_closed()


def test_a_graceful_stop_closes_with_1001(servers):
    server = servers.start(app=APP)
    with open_websocket(server) as ws:
        ws.send_frame(TEXT, b"before")
        assert ws.read_message() == (TEXT, b"before")
        server.signal(15)
        frame = ws.read_close()
        assert frame.close_code == 1001
    server.wait_exit()


def test_a_thousand_connections_open_at_once_all_echo(servers):
    """1,000 WebSockets are open together (each handshake done before any
    echoes), then every one echoes three messages at the same time."""
    import resource

    from websockets.asyncio.client import connect

    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {count + 200}")
    # The server inherits the limit: it is started after the raise.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 200), hard))
    server = servers.start(app=APP)

    async def all_of_them():
        opening = asyncio.Semaphore(100)  # handshakes in flight, well inside the backlog

        async def open_one():
            async with opening:
                return await connect(ws_url(server, "/echo"), compression=None, open_timeout=60)

        sockets = await asyncio.gather(*(open_one() for _ in range(count)))
        try:
            async def echo(number, ws):
                for round_ in range(3):
                    await ws.send(f"{number}:{round_}")
                    assert await ws.recv() == f"{number}:{round_}"

            await asyncio.gather(*(echo(number, ws) for number, ws in enumerate(sockets)))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))

    run(all_of_them())
    server.assert_serving()


def unsent_bytes(sock):
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def test_reading_pauses_while_the_app_takes_nothing_and_nothing_is_lost(server, tmp_path):
    """Flow control of what arrives: the app takes no message until it is
    released; the client's 16 MiB wait in the kernel meanwhile (its
    sendall blocks), then every byte reaches the app."""
    import threading

    from support.rawws import frame

    marker, release = tmp_path / "hold", tmp_path / "release"
    with open_websocket(server, f"/hold?marker={marker}&release={release}") as ws:
        wait_until(lambda: file_text(marker) == "accepted", 30, "the app accepted")
        chunk = frame(BINARY, b"m" * 65536)
        sender = threading.Thread(target=lambda: ws.send(chunk * 256))
        sender.start()
        # The server stopped reading: what the client sent piles up in its
        # socket's send queue.
        wait_until(lambda: unsent_bytes(ws.conn.sock) >= 512 * 1024, 30, "the client's send queue filled")
        release.write_text("go")
        sender.join(60)
        assert not sender.is_alive()
        ws.send_frame(CLOSE, close_payload(1000))
        assert ws.read_close(answer=False).close_code == 1000
    done = tmp_path / "hold.done"
    wait_until(lambda: file_text(done), 30, "the app counted what came")
    assert file_text(done) == str(256 * 65536)
