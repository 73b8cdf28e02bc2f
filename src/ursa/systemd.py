"""systemd integration: socket activation and readiness notification.

Socket activation (sd_listen_fds(3)): systemd binds the sockets, starts the
service with them as fds 3, 4, ... and sets LISTEN_PID to the service's pid
and LISTEN_FDS to their count. A unit for ursa looks like::

    # ursa.socket                     # ursa.service
    [Socket]                          [Service]
    ListenStream=127.0.0.1:8000       Type=notify
                                      ExecStart=/srv/app/.venv/bin/ursa -w 4 app:app
                                      KillMode=mixed
                                      ExecReload=/bin/kill -HUP $MAINPID

Notification (sd_notify(3)): with Type=notify, systemd waits for READY=1
on the datagram socket named by NOTIFY_SOCKET.
"""
import os
import socket

SD_LISTEN_FDS_START = 3


def listen_fds(unset_environment=True):
    """Return the fds systemd passed to this process (empty if none).

    The variables are removed afterwards (by default) so that children,
    such as the app starting a subprocess, do not take the sockets as theirs.
    """
    try:
        if int(os.environ.get("LISTEN_PID", "")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    finally:
        if unset_environment:
            for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                os.environ.pop(name, None)
    fds = list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(count, 0)))
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            raise OSError(f"LISTEN_FDS={count}, but fd {fd} is not open; is the service started by "
                          f"its .socket unit?") from None
    return fds


def notify(state):
    """Send `state` (e.g. "READY=1") to systemd; False if not run by it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError:
        return False
    return True
