"""Upgrading without downtime (USR2): the running master forks and execs
the program as it is on disk now (the same command line, from the
directory it was started in), handing it its listening sockets as systemd
would (fds 3, 4, ... with LISTEN_FDS) and, in UPGRADE_ENVIRONMENT, its
pid and which of the sockets it owns (made by itself, not passed by
systemd or as fd://N: their doors and socket files go with them).

Both masters then serve the same sockets until one is told to stop. While
the other one serves, a stopping master leaves the sockets open to new
clients and their files in place (other_master_serving). The orchestration
(the pid file, the messages) is the Arbiter's: see arbiter.py.
"""
import fcntl
import json
import os
import signal
import sys

from . import systemd
from .errors import ConfigError
from .processes import fork_with_signals_blocked, process_exists

# Set by a master for the new master it execs on SIGUSR2: its pid and which
# of the sockets (passed as with systemd's LISTEN_FDS) are its own.
UPGRADE_ENVIRONMENT = "URSA_UPGRADE_FROM"
EXIT_EXEC_FAILED = 127


def take_environment():
    """The upgrade description an old master left for this one, or None;
    it is removed from the environment (children must not inherit it)."""
    return os.environ.pop(UPGRADE_ENVIRONMENT, None)


def parse_environment(text):
    """(the old master's pid, the indexes of the sockets it owned)."""
    try:
        described = json.loads(text)
        return int(described["pid"]), set(described["owned"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{UPGRADE_ENVIRONMENT} is garbled: {text!r}; unset it") from None


def start_new_master(master_pid, listeners, directory):
    """Fork and exec a new master on `listeners` (a listeners.Listeners),
    in `directory`; returns its pid. Raises OSError if the fork fails."""
    owned = [index for index, sock in enumerate(listeners.sockets) if sock in listeners.owned]
    environment = dict(os.environ)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environment.pop(name, None)
    environment[UPGRADE_ENVIRONMENT] = json.dumps({"pid": master_pid, "owned": owned})
    environment["LISTEN_FDS"] = str(len(listeners.sockets))
    argv = restart_argv()
    fds = [sock.fileno() for sock in listeners.sockets]
    pid, blocked = fork_with_signals_blocked()
    if pid == 0:
        exec_new_master(argv, environment, fds, directory, blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid


def restart_argv():
    """The command line that started this process, to exec it again."""
    original = getattr(sys, "orig_argv", None)  # 3.10+: with the interpreter's options
    if original:
        return [sys.executable] + list(original[1:])
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m PACKAGE
        package = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return [sys.executable, "-m", package] + sys.argv[1:]
    return [sys.executable] + sys.argv


def exec_new_master(argv, environment, fds, directory, signal_mask):
    """In the child of a SIGUSR2 fork: the listening sockets become fds 3,
    4, ... (as systemd passes them), then exec. Never returns."""
    try:
        count = len(fds)
        # First out of the way of 3..3+count, then into place: a socket may
        # already sit where another one goes.
        floor = max(fds + [systemd.SD_LISTEN_FDS_START + count])
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in fds]
        for index, fd in enumerate(moved):
            os.dup2(fd, systemd.SD_LISTEN_FDS_START + index, inheritable=True)
            os.close(fd)
        environment["LISTEN_PID"] = str(os.getpid())
        os.chdir(directory)
        signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
        os.execve(argv[0], argv, environment)
    except BaseException as exc:  # nothing of the master's may run here
        try:
            os.write(2, f"ursa: error: cannot exec the new master {argv}: {exc}\n".encode("utf-8", "replace"))
        finally:
            os._exit(EXIT_EXEC_FAILED)


def other_master_serving(new_master, old_master):
    """The pid of another master serving these sockets (`new_master`, the one
    a SIGUSR2 started, or `old_master`, the one that started this one), or None."""
    for pid in (new_master, old_master):
        if pid is None:
            continue
        if pid == old_master and os.getppid() != pid:
            continue  # it exited: this one was handed to init
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                return pid
        except ChildProcessError:  # not our child: the old master
            if process_exists(pid):
                return pid
    return None
