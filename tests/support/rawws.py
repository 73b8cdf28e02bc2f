"""A raw WebSocket client that sends frames byte for byte, valid or not, and
shows exactly which frames the server sent (RFC 6455 5.2).

open_websocket() does the opening handshake over a RawConnection
(rawhttp.py) and returns a RawWebSocket: send_frame() builds any frame (fin,
reserved bits, opcode, masked or not, a payload of any length, or several
frames in one write), read_frame() parses the server's frames strictly
(unmasked, no reserved bits, minimal lengths), and read_close() reads up
to the close frame and the end of the connection, as an Autobahn case does.
"""
import base64
import hashlib
import os
import socket
import struct

from .rawhttp import ConnectionClosed, build_request

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def handshake_headers(key=None, version="13", extra=()):
    key = base64.b64encode(os.urandom(16)).decode() if key is None else key
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", version), *extra], key


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True):
    """One frame's bytes; a client's frames are masked (with a random key)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, length)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def mask_bytes(payload, key):
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, opcode, payload, rsv1=False):
        self.fin, self.opcode, self.payload, self.rsv1 = fin, opcode, payload, rsv1

    @property
    def close_code(self):
        assert self.opcode == CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        return f"<Frame fin={self.fin} opcode={self.opcode:#x} {self.payload[:80]!r} ({len(self.payload)} bytes)>"


class RawWebSocket:
    def __init__(self, conn, response):
        self.conn = conn
        self.response = response

    def send(self, data):
        self.conn.send(data)

    def send_frame(self, opcode, payload=b"", **kwargs):
        self.conn.send(frame(opcode, payload, **kwargs))

    def read_frame(self, allow_rsv1=False):
        """The server's next frame, checked: unmasked, no reserved bits (but
        RSV1 with `allow_rsv1`: permessage-deflate), a control frame whole
        and short, lengths in their shortest form."""
        first, second = self.conn.read_exactly(2)
        assert first & (0x30 if allow_rsv1 else 0x70) == 0, f"reserved bits set: {first:#x}"
        assert not second & 0x80, "a server's frame is never masked"
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.conn.read_exactly(2))[0]
            assert length >= 126, "a 16-bit length in its shortest form"
        elif length == 127:
            length = struct.unpack("!Q", self.conn.read_exactly(8))[0]
            assert length >= 65536, "a 64-bit length in its shortest form"
        opcode = first & 0x0F
        if opcode >= 0x8:
            assert first & 0x80 and length <= 125, "a control frame is whole and at most 125 bytes"
        return Frame(bool(first & 0x80), opcode, self.conn.read_exactly(length) if length else b"",
                     rsv1=bool(first & 0x40))

    def read_message(self):
        """(opcode, payload) of the next data message, its fragments joined;
        pings and pongs on the way are skipped."""
        opcode, parts = None, []
        while True:
            received = self.read_frame()
            if received.opcode in (PING, PONG):
                continue
            if received.opcode == CLOSE:
                return CLOSE, received.payload
            if opcode is None:
                opcode = received.opcode
            parts.append(received.payload)
            if received.fin:
                return opcode, b"".join(parts)

    def read_close(self, answer=True):
        """Frames up to the server's close frame (returned), answering it
        when `answer`, then the end of the connection (asserted)."""
        while True:
            received = self.read_frame()
            if received.opcode == CLOSE:
                break
        if answer:
            try:
                self.send_frame(CLOSE, received.payload[:2])
            except OSError:
                pass
        self.assert_closed()
        return received

    def assert_closed(self):
        """The server closed the TCP connection (reading gives EOF or a reset)."""
        try:
            rest = self.conn.receive_more()
        except (ConnectionClosed, ConnectionResetError):
            return
        except OSError:
            return
        assert not rest, f"bytes after the end: {rest[:80]!r}"

    def close(self):
        self.conn.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_websocket(server, target="/echo", extra_headers=(), expect_status=101):
    """The handshake on a new connection: a RawWebSocket once the server
    switched protocols (its Sec-WebSocket-Accept checked)."""
    conn = server.connect()
    headers, key = handshake_headers(extra=extra_headers)
    conn.send(build_request("GET", target, headers))
    response = conn.read_response()
    assert response.status == expect_status, response
    if expect_status == 101:
        assert response.header("Sec-WebSocket-Accept") == accept_key(key), response
    return RawWebSocket(conn, response)


def shut_write(ws):
    ws.conn.sock.shutdown(socket.SHUT_WR)
