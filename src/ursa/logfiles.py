"""Reopening the log files (SIGUSR1, for logrotate) when workers run as
another user, and handing the new files to them.

The master opens every log file: --error-log (a handler of the
"ursa.error" logger, see logs.py), --access-log, and what a PasteDeploy
ini's [loggers] sections set up. Workers inherit the open files at the fork
and never open a log file by name, so the worker user needs no right on the
files or their folder. On SIGUSR1 the master (root, usually) opens each file
anew, creating it if logrotate moved it away, and hands the new files to
every worker over its channel (a unix socket, SCM_RIGHTS); a worker puts
each one in place of the old file under the same descriptor number (dup2),
so nothing that holds that number (a logging stream, faulthandler, the
access log) notices. A file the master cannot open is kept, with one line
saying so.
"""
import array
import json
import logging
import os
import socket

# One message on a worker's channel: its JSON and the files it carries
# (Linux passes at most 253 in one message: SCM_MAX_FD).
MESSAGE_BYTES = 65536
MAX_FILES_PER_MESSAGE = 253

log = logging.getLogger("ursa.error")


def open_file_handlers():
    """The logging.FileHandlers of every logger that have a file open."""
    loggers = [logging.getLogger()] + [logger for logger in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(logger, logging.Logger)]
    handlers = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.FileHandler) and handler.stream is not None:
                handlers[id(handler)] = handler
    return list(handlers.values())


def reopen_file_handler(handler):
    """Open `handler`'s file anew (creating it if it was moved away); on
    OSError the handler keeps its previous file."""
    stream = handler._open()
    handler.acquire()
    try:
        previous, handler.stream = handler.stream, stream
        previous.flush()
    finally:
        handler.release()
    previous.close()


def reopen_master_files(access_log):
    """SIGUSR1 in the master: every log file opened anew. Returns what to
    hand the workers: (names, fds), a name being ["file", path] for a
    logging handler or ["access", target] for the access log."""
    names, fds = [], []
    for handler in open_file_handlers():
        try:
            reopen_file_handler(handler)
        except OSError as exc:
            log.error("cannot reopen %s: %s; still writing to the previous file", handler.baseFilename,
                      exc.strerror)
            continue
        names.append(["file", handler.baseFilename])
        fds.append(handler.stream.fileno())
    if access_log is not None and access_log.owns_fd:
        try:
            access_log.reopen()
        except OSError as exc:
            log.error("cannot reopen %s: %s; still writing to the previous file", access_log.target, exc.strerror)
        else:
            names.append(["access", access_log.target])
            fds.append(access_log.fd)
    return names, fds


def hand_files(channel, names, fds):
    """Send the reopened files to a worker; raises OSError."""
    message = json.dumps(["logs", names]).encode("utf-8")
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    channel.sendmsg([message], rights, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)


def receive(channel):
    """One message from the master: (data, fds); (b"", []) once the master
    is gone. The fds are the caller's to close."""
    room = socket.CMSG_SPACE(MAX_FILES_PER_MESSAGE * array.array("i").itemsize)
    data, ancillary, _, _ = channel.recvmsg(MESSAGE_BYTES, room, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def take_handed_files(data, fds, access_log):
    """In a worker: put each file the master handed in place of the one of
    the same name, under the same descriptor number. A file that cannot be
    put in place is logged in one line; the previous one stays."""
    try:
        kind, names = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        log.error("worker %d: the master sent a garbled message: %r", os.getpid(), data[:80])
        return
    if kind != "logs":
        return
    handlers = {handler.baseFilename: handler for handler in open_file_handlers()}
    for (what, name), fd in zip(names, fds):
        try:
            if what == "file" and name in handlers:
                put_file_under(handlers[name], fd)
            elif what == "access" and access_log is not None and access_log.owns_fd and access_log.target == name:
                os.dup2(fd, access_log.fd, inheritable=False)
        except (OSError, ValueError) as exc:
            log.error("worker %d cannot take the reopened %s: %s; still writing to the previous file", os.getpid(),
                      name, getattr(exc, "strerror", None) or exc)


def put_file_under(handler, fd):
    handler.acquire()
    try:
        if handler.stream is not None:
            handler.stream.flush()
            os.dup2(fd, handler.stream.fileno(), inheritable=False)
    finally:
        handler.release()
