"""Where the ursa command's lines go: server messages and app tracebacks
through the "ursa.error" logger (--error-log, --log-level), and access
lines to the --access-log file (the AccessLog of accesslog.py).

The master opens both, at start and again on HUP; workers inherit the open
files. Reopening them for logrotate (USR1) and handing the new files to
workers running as another user is logfiles.py's job.
"""
import logging
import sys

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


def open_access_log(target, log_format, advice=""):
    """The AccessLog writing to `target` ('-': stdout). A file that cannot
    be opened is a ConfigError, ending with `advice`; a bad format raises
    accesslog.FormatError."""
    try:
        return AccessLog(target, log_format)
    except OSError as exc:
        raise ConfigError(f"cannot open access log {target}: {exc.strerror}{advice}") from None
