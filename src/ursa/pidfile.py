"""The --pid file: the master's process id, for `kill -HUP $(cat FILE)` and
logrotate's postrotate.

The master writes it once it has bound its sockets (refusing to take over
a file that names another running process) and removes it when it exits,
if the file still names it. During a USR2 upgrade the old master's file is
FILE.oldbin, and the new master writes FILE; if the new master exits first,
FILE.oldbin becomes FILE again.
"""
import logging
import os

from .errors import ConfigError
from .processes import process_exists

OLD_SUFFIX = ".oldbin"

log = logging.getLogger("ursa.error")


def write_pid_file(path, pid):
    """Write `pid` to `path` (atomically); ConfigError if it cannot, or if
    the file names another process that is running."""
    try:
        with open(path) as existing:
            other = int(existing.read().strip() or 0)
    except (OSError, ValueError):
        other = 0
    if other and other != pid and process_exists(other):
        raise ConfigError(f"pid file {path} names process {other}, which is running; stop it "
                          f"or choose another --pid")
    temporary = f"{path}.{pid}.tmp"
    try:
        with open(temporary, "w") as pid_file:
            pid_file.write(f"{pid}\n")
        os.replace(temporary, path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise ConfigError(f"cannot write pid file {path}: {exc.strerror}; choose a writable "
                          f"--pid path") from None


def remove_pid_file(path, pid):
    """Remove the file at `path` if it names `pid` (a new master may have written its own)."""
    try:
        with open(path) as pid_file:
            if pid_file.read().strip() == str(pid):
                os.unlink(path)
    except OSError:
        pass


def set_pid_file_aside(path):
    """FILE becomes FILE.oldbin, for a new master to write FILE; returns
    FILE.oldbin. Raises OSError."""
    old_path = path + OLD_SUFFIX
    os.replace(path, old_path)
    return old_path


def restore_pid_file(old_path):
    """FILE.oldbin becomes FILE again; returns FILE, or None (logged) if it cannot."""
    path = old_path[:-len(OLD_SUFFIX)]
    try:
        os.replace(old_path, path)
    except OSError as exc:
        log.error("cannot restore the pid file %s from %s: %s", path, old_path, exc.strerror)
        return None
    return path
