"""The master's listening sockets.

They are bound from the --bind addresses (a stale unix socket file, whose
server died, is replaced only once every other address is bound, so a start
that fails leaves it as it was), or adopted: the sockets systemd passes, an
fd://N, or those of the master that started this one (USR2, upgrade.py).
Workers inherit them at the fork and serve them all.

The master owns those it made (and those the old master owned): when the
service stops, their doors close to new connections while the workers
serve what the kernel has queued, and their socket files are removed.
"""
import logging
import os
import socket
import stat
from dataclasses import dataclass, field

from . import _core, _socket_file_of, _stale_socket_file, bind_and_listen
from .addresses import describe_bind_error, describe_socket
from .errors import ConfigError
from .privileges import give_socket_file

log = logging.getLogger("ursa.error")


@dataclass
class Listeners:
    sockets: list = field(default_factory=list)       # in --bind order; what every worker serves
    owned: list = field(default_factory=list)         # made by this master (not systemd's, not an fd://)
    socket_files: list = field(default_factory=list)  # unix socket files to remove when the service stops

    def bind(self, settings):
        """Bind every address of `settings` (ConfigError if one cannot be).
        On failure those bound so far stay here, for close() and
        remove_socket_files()."""
        # A stale socket file (its server died) is replaced last, once every
        # other address is bound: a failure leaves it as it was.
        addresses = settings.binds
        order = sorted(range(len(addresses)), key=lambda index: stale_socket_file_at(addresses[index]))
        bound = {}
        for index in order:
            sock = bound[index] = self.bind_address(addresses[index], settings)
            self.sockets.append(sock)  # closed by close() if a later one fails
        self.sockets = [bound[index] for index in range(len(addresses))]
        self.owned = [bound[index] for index, address in enumerate(addresses) if address.kind != "fd"]

    def bind_address(self, address, settings):
        if address.kind == "fd":
            return adopt_fd(address.fd, f"fd://{address.fd}")
        try:
            if address.kind == "unix":
                sock = bind_and_listen("unix:" + address.path, None, listen_backlog=settings.backlog)
                if not address.path.startswith("@"):
                    self.socket_files.append(address.path)
                    give_socket_file(address.path, *settings.uid_gid())
                return sock
            return bind_and_listen(address.host, address.port, settings.reuse_port, settings.backlog)
        except socket.gaierror as exc:
            raise ConfigError(f"cannot listen on {address}: unknown host {address.host!r} "
                              f"({exc.strerror}); use an IP address or a name in /etc/hosts") from None
        except OSError as exc:
            raise ConfigError(describe_bind_error(address, exc)) from None

    def adopt(self, fds, describe, owned=()):
        """Serve the listening sockets `fds` passed to this process; those
        whose index is in `owned` are this master's (their doors, their
        socket files). describe(fd) names one in an error."""
        for index, fd in enumerate(fds):
            sock = adopt_fd(fd, describe(fd))
            self.sockets.append(sock)
            if index in owned:
                self.owned.append(sock)
                path = _socket_file_of(sock)
                if path is not None:
                    self.socket_files.append(path)

    def close_doors(self):
        """The service stops: from now on new clients are refused (socket
        files removed, new TCP connections dropped at the SYN), while the
        workers serve what the kernel has already queued before they close
        the sockets (the core does that when it finds the door closed)."""
        self.remove_socket_files()
        for sock in self.owned:
            try:
                _core.close_door(sock)
            except OSError as exc:
                log.warning("cannot close %s to new connections: %s", describe_socket(sock), exc.strerror)

    def close(self):
        for sock in self.sockets:
            sock.close()

    def remove_socket_files(self):
        for path in self.socket_files:
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except OSError:
                pass
        self.socket_files = []


def stale_socket_file_at(address):
    """Whether binding `address` replaces a stale socket file. A socket
    file a server listens on is refused (ConfigError)."""
    if address.kind != "unix" or address.path.startswith("@"):
        return False
    try:
        return _stale_socket_file(address.path)
    except OSError as exc:
        raise ConfigError(describe_bind_error(address, exc)) from None


def adopt_fd(fd, what):
    """The listening socket at `fd`; ConfigError (naming it `what`) if it is not one."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ConfigError(f"{what} is not a usable socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ConfigError(f"{what} is not a listening stream socket; call listen() on it "
                          f"before passing it")
    return sock
