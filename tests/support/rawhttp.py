"""A raw HTTP/1.x client that shows exactly what a server sent.

build_request() writes a request byte for byte; RawConnection sends it and
reads responses with a strict parser (status line, header syntax, framing
by Content-Length, chunked or close), keeping what follows a response in
its buffer for pipelining. connect() opens one to an address, given as
(family, address) or as the text ursa logs ('http://host:port',
'unix:/path', 'unix:@name').
"""
import json
import socket

# Generous: the machine has 2 cores and other test suites run beside this one.
IO_TIMEOUT = 30.0


class ConnectionClosed(Exception):
    """The server closed the connection before a complete response head."""


class IncompleteBody(Exception):
    """The connection closed inside a response body; ``response.body`` holds what came."""

    def __init__(self, response):
        super().__init__(f"connection closed inside the body after {len(response.body)} bytes")
        self.response = response


class Response:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, as sent
        self.raw_head = raw_head
        self.body = b""
        self.framing = None  # "content-length", "chunked", "close" or "none"

    def headers_named(self, name):
        return [value for header, value in self.headers if header.lower() == name.lower()]

    def header(self, name):
        """The value of a header sent once; None if absent; an error if repeated."""
        values = self.headers_named(name)
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {self.headers} body={self.body[:200]!r}>"


class RawConnection:
    """One client socket, with a read buffer and a strict response parser."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buffer = bytearray()

    def send(self, data):
        self.sock.sendall(data)

    def local_port(self):
        return self.sock.getsockname()[1]

    def receive_more(self):
        """Receive what is available into the buffer; False at end of stream."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _take(self, count):
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def read_line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                return self._take(end + 2)[:-2]
            if not self.receive_more():
                raise ConnectionClosed(f"closed inside a line; got {bytes(self.buffer)!r}")

    def read_exactly(self, count):
        while len(self.buffer) < count:
            if not self.receive_more():
                raise ConnectionClosed(f"closed after {len(self.buffer)} of {count} bytes")
        return self._take(count)

    def read_head(self):
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                return self._take(end + 4)
            if not self.receive_more():
                raise ConnectionClosed(f"closed before a complete response head; got {bytes(self.buffer)!r}")

    def read_response(self, method="GET"):
        """Read one response (a 1xx interim response is returned on its own)."""
        head = self.read_head()
        lines = head[:-4].split(b"\r\n")
        version, status, reason = (lines[0].decode("latin-1").split(" ", 2) + [""])[:3]
        assert version in ("HTTP/1.0", "HTTP/1.1"), f"bad status line {lines[0]!r}"
        headers = []
        for line in lines[1:]:
            name, colon, value = line.decode("latin-1").partition(":")
            assert colon and name and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip(" \t")))
        response = Response(version, int(status), reason, headers, head)
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            response.framing = "none"
            return response
        transfer_encoding = response.header("Transfer-Encoding")
        content_length = response.header("Content-Length")
        if transfer_encoding is not None:
            assert transfer_encoding.lower() == "chunked", f"unexpected Transfer-Encoding {transfer_encoding!r}"
            assert content_length is None, "both Transfer-Encoding and Content-Length sent"
            response.framing = "chunked"
            self._read_chunked_body(response)
        elif content_length is not None:
            response.framing = "content-length"
            length = int(content_length)
            while len(self.buffer) < length:
                if not self.receive_more():
                    response.body = self._take(len(self.buffer))
                    raise IncompleteBody(response)
            response.body = self._take(length)
        else:
            response.framing = "close"
            response.body = self.read_until_close()
        return response

    def _read_chunked_body(self, response):
        parts = []
        try:
            while True:
                size_line = self.read_line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_line():  # trailers, up to the empty line
                        pass
                    break
                parts.append(self.read_exactly(size))
                assert self.read_exactly(2) == b"\r\n", "chunk data not followed by CRLF"
        except ConnectionClosed:
            parts.append(self._take(len(self.buffer)))
            response.body = b"".join(parts)
            raise IncompleteBody(response)
        response.body = b"".join(parts)

    def receive_until(self, marker):
        """Buffer received bytes until ``marker`` is among them (nothing is consumed)."""
        while marker not in self.buffer:
            if not self.receive_more():
                raise ConnectionClosed(f"closed before {marker!r} arrived; got {bytes(self.buffer)[-200:]!r}")

    def read_until_close(self):
        while self.receive_more():
            pass
        return self._take(len(self.buffer))

    def is_closed_by_server(self, timeout=IO_TIMEOUT):
        """True when the server closes (EOF or reset) with no further bytes."""
        self.sock.settimeout(timeout)
        try:
            more = self.read_until_close()
        except ConnectionResetError:
            more = b""
        assert not more, f"bytes after the response: {more[:200]!r}"
        return True

    def abort(self):
        """Close with a TCP reset, as a client that vanishes does."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method, target, headers=(), body=b"", version="HTTP/1.1", host="test"):
    lines = [f"{method} {target} {version}"]
    names = {name.lower() for name, _ in headers}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_address(text):
    """(family, address) for 'http://host:port', 'http://[v6]:port', 'unix:/path' or 'unix:@name'."""
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        return socket.AF_UNIX, ("\0" + path[1:] if path.startswith("@") else path)
    if text.startswith("http://"):
        text = text[len("http://"):]
    host, _, port = text.rpartition(":")
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


def open_socket(family, address, timeout=IO_TIMEOUT, nodelay=True, source=None):
    """A socket connected to `address`; `source` is the local address to connect from."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        if source is not None:
            sock.bind((source, 0))
        sock.connect(address)
        if nodelay and family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def connect(address, timeout=IO_TIMEOUT, nodelay=True, source=None):
    """A RawConnection to `address`: (family, address), or a text for parse_address()."""
    family, target = parse_address(address) if isinstance(address, str) else address
    return RawConnection(open_socket(family, target, timeout, nodelay, source), timeout)
