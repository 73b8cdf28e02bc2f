"""Where the ursa command's lines go: server messages and app tracebacks
through the "ursa.error" logger (--error-log, --log-level, shaped further
by --log-config and logconfig_dict), what apps write to wsgi.errors
(ErrorLogStream) and, with --capture-output, to stdout and stderr, and
access lines to the --access-log file (the AccessLog of accesslog.py).

The master opens both, at start and again on HUP; workers inherit the open
files. Reopening them for logrotate (USR1) and handing the new files to
workers running as another user is logfiles.py's job.
"""
import logging
import logging.config
import os
import sys
import threading

from .accesslog import AccessLog
from .errors import ConfigError

LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def setup_error_log(target, level):
    """Send the "ursa.error" logger (server messages and app tracebacks) to
    `target` ('-' is stderr) at `level` ('info', ...). The new file is
    opened before the previous one is let go: OSError changes nothing."""
    logger = logging.getLogger("ursa.error")
    if target in (None, "-"):
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(target, delay=False)
    handler.ursa_owned = True
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    for previous in list(logger.handlers):
        if getattr(previous, "ursa_owned", False):
            logger.removeHandler(previous)
            previous.close()
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    # The app may configure the root logger; messages must not appear twice.
    logger.propagate = False


def setup_server_logging(settings):
    """The error log of `settings`, then its --log-config file and its
    logconfig_dict, which may send "ursa.error" (or the app's loggers)
    elsewhere. OSError: the error log cannot be opened; ConfigError: the
    logging configuration is wrong."""
    setup_error_log(settings.error_log, settings.log_level)
    if settings.log_config is not None:
        if not os.path.isfile(settings.log_config):
            raise ConfigError(f"--log-config {settings.log_config} does not exist; give a logging "
                              f"fileConfig file")
        try:
            logging.config.fileConfig(settings.log_config, disable_existing_loggers=False)
        except Exception as exc:
            raise ConfigError(f"--log-config {settings.log_config}: {_describe(exc)}; see the logging "
                              f"module's configuration file format") from None
    if settings.logconfig_dict is not None:
        # gunicorn's logconfig_dict need not name the schema's version.
        config = dict({"version": 1, "disable_existing_loggers": False}, **settings.logconfig_dict)
        try:
            logging.config.dictConfig(config)
        except Exception as exc:
            raise ConfigError(f"logconfig_dict: {_describe(exc)}") from None


def _describe(exc):
    text = str(exc)
    # dictConfig nests the cause: "Unable to configure handler 'x'" and its reason.
    if exc.__cause__ is not None:
        text = f"{text}: {exc.__cause__}"
    return f"{type(exc).__name__}: {text}" if isinstance(exc, KeyError) else text


def error_log_fd():
    """The file descriptor the error log writes to: its file's, or 2 when
    it is stderr (or a --log-config handler that has no file)."""
    for handler in logging.getLogger("ursa.error").handlers:
        if getattr(handler, "ursa_owned", False) and isinstance(handler, logging.FileHandler):
            if handler.stream is not None:
                return handler.stream.fileno()
    return 2


def capture_standard_streams():
    """--capture-output: whatever the process writes to stdout and stderr
    (print(), a library's warnings, a C extension's fprintf) goes to the
    error log's file. Called again after a SIGUSR1 reopen, so the streams
    follow the new file."""
    target = error_log_fd()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    for fd in (1, 2):
        if fd != target:
            os.dup2(target, fd)
    # A file is block-buffered: lines would reach the log late, and out of
    # order with the server's own.
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass


class ErrorLogStream:
    """The wsgi.errors of the ursa command's workers: what an app or a
    framework writes there goes through the "ursa.error" logger (so into
    --error-log), as ERROR records. Text is gathered until a newline or
    flush(), so a traceback written in one call stays one record."""

    def __init__(self, logger_name="ursa.error"):
        self.logger = logging.getLogger(logger_name)
        self.pending = []
        self.lock = threading.Lock()

    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        with self.lock:
            self.pending.append(text)
            if "\n" not in text:
                return len(text)
            whole = "".join(self.pending)
            complete, _, rest = whole.rpartition("\n")
            self.pending = [rest] if rest else []
        self.logger.error("%s", complete)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        with self.lock:
            whole = "".join(self.pending)
            self.pending = []
        if whole:
            self.logger.error("%s", whole)


def open_access_log(target, log_format, advice=""):
    """The AccessLog writing to `target` ('-': stdout). A file that cannot
    be opened is a ConfigError, ending with `advice`; a bad format raises
    accesslog.FormatError."""
    try:
        return AccessLog(target, log_format)
    except OSError as exc:
        raise ConfigError(f"cannot open access log {target}: {exc.strerror}{advice}") from None
