"""Addresses to listen on: the --bind forms (HOST:PORT, [IPv6]:PORT,
unix:/path, unix:@name, fd://N), how a listening socket is named in the
logs, and the one line that says why an address cannot be listened on.

Nothing here binds a socket: listeners.py (the master) and paste.py (one
process) do, with ursa.bind_and_listen().
"""
import errno
import os
import socket
import stat
from dataclasses import dataclass

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_PORT = 8000


@dataclass(eq=False)
class Address:
    """Where to listen: kind is 'tcp' (host, port), 'unix' (path; '@name' is
    abstract) or 'fd' (an inherited listening socket). Two addresses are
    equal when they are written the same."""

    kind: str
    host: str = None
    port: int = None
    path: str = None
    fd: int = None

    def __str__(self):
        if self.kind == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"{host}:{self.port}"
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"fd://{self.fd}"

    def __eq__(self, other):
        return isinstance(other, Address) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def parse_binds(value):
    """One address or a list of them (a config file may give either)."""
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ValueError("needs at least one address")
    return [parse_bind(item) for item in items]


def parse_bind(text):
    """Parse one --bind value; raises ValueError with the expected forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"address must be a non-empty string, got {text!r}")
    text = text.strip()
    forms = "use HOST:PORT, [IPv6]:PORT, unix:/path, unix:@name or fd://N"
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if path in ("", "@"):
            raise ValueError(f"{text!r} has no socket path; {forms}")
        return Address("unix", path=path)
    if text.startswith("fd://"):
        number = text[len("fd://"):]
        if not number.isdigit():
            raise ValueError(f"{text!r}: the fd must be a number, as in fd://3")
        return Address("fd", fd=int(number))
    if text.startswith("tcp://"):
        text = text[len("tcp://"):]
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host:
            raise ValueError(f"{text!r} is missing the closing ']' of the IPv6 address; {forms}")
        if rest == "":
            port = DEFAULT_PORT
        elif rest.startswith(":"):
            port = _parse_port(rest[1:], text, forms)
        else:
            raise ValueError(f"{text!r}: expected ':PORT' after ']'; {forms}")
        return Address("tcp", host=host, port=port)
    if text.isdigit():
        raise ValueError(f"{text!r} is only a port; write 127.0.0.1:{text} (local) or 0.0.0.0:{text} (everywhere)")
    if text.count(":") > 1:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, as in [::1]:8000")
    host, colon, port_text = text.partition(":")
    port = _parse_port(port_text, text, forms) if colon else DEFAULT_PORT
    return Address("tcp", host=host or "0.0.0.0", port=port)


def _parse_port(text, whole, forms):
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"{whole!r}: the port must be a number from 0 to 65535; {forms}")
    return int(text)


def describe_socket(sock):
    """How a listening socket is shown in logs: http://host:port or unix:path."""
    name = sock.getsockname()
    if sock.family == socket.AF_INET:
        return f"http://{name[0]}:{name[1]}"
    if sock.family == socket.AF_INET6:
        return f"http://[{name[0]}]:{name[1]}"
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if name.startswith("\0"):
            return "unix:@" + name[1:]
        return "unix:" + name
    return str(name)


def is_socket_file(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def describe_bind_error(address, exc):
    """One line saying why `address` (an Address) cannot be listened on, and what to do."""
    where = f"cannot listen on {address}"
    code = exc.errno
    if code == errno.EADDRINUSE:
        if address.kind == "unix" and not address.path.startswith("@"):
            if is_socket_file(address.path):
                return f"{where}: another server is listening on it; stop it or choose another path"
            return f"{where}: a file that is not a socket is at {address.path}; remove it or choose another path"
        return f"{where}: address already in use; stop the server using it or choose another address"
    if code in (errno.EACCES, errno.EPERM):
        if address.kind == "tcp" and address.port < 1024:
            return (f"{where}: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE, "
                    f"or use a port of 1024 or more")
        if address.kind == "unix":
            return (f"{where}: permission denied; choose a path in a directory you can write, "
                    f"or run with the needed rights")
        return f"{where}: permission denied"
    if code == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no address {address.host}; use 127.0.0.1, 0.0.0.0 or one of its own"
    if code == errno.ENOENT and address.kind == "unix":
        return f"{where}: directory {os.path.dirname(address.path) or '.'} does not exist"
    if code == errno.EAFNOSUPPORT:
        return f"{where}: this machine does not support that address family (IPv6 off?)"
    return f"{where}: {exc.strerror or exc}"
