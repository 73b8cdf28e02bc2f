"""The config file (-c FILE): a Python file of settings, like
gunicorn.conf.py. It is run, and each global it sets is a setting of the
table in config.py (under the same name as the flag: max_request_line for
--max-request-line, or gunicorn's name for it), `wsgi_app`, or a server
hook. A name the table does not know is a warning (a helper variable is
allowed), a wrong value a ConfigError naming the file.
"""
import os
import sys
import traceback

from .config import parse_str, settings_by_name
from .errors import ConfigError, did_you_mean

# Server hooks a config file may define, with gunicorn's names and arguments.
HOOKS = {
    "on_starting": "(arbiter)",
    "when_ready": "(arbiter)",
    "on_reload": "(arbiter)",
    "pre_fork": "(arbiter, worker)",
    "post_fork": "(arbiter, worker)",
    "post_worker_init": "(worker)",
    "worker_int": "(worker)",          # in the worker, on SIGINT or SIGQUIT
    "worker_exit": "(arbiter, worker)",  # in the worker, as it exits
    "child_exit": "(arbiter, worker)",   # in the master, once it reaped the worker
    "on_exit": "(arbiter)",
}

# gunicorn's names for settings ursa has under another name, accepted in
# config files so a gunicorn.conf.py mostly works as it is.
GUNICORN_ALIASES = {
    "accesslog": "access_log",
    "errorlog": "error_log",
    "loglevel": "log_level",
    "pidfile": "pid",
    "preload_app": "preload",
    "limit_request_line": "max_request_line",
    "limit_request_fields": "max_headers",
    "limit_request_field_size": "max_header_line",
    "keepalive": "keepalive_timeout",
    "worker_connections": "max_connections",
}


def parse_hook(value):
    if not callable(value):
        raise ValueError(f"must be a function, got {value!r}")
    return value


def load_config_file(path, settings):
    """Run the Python file at `path` and copy its settings into `settings`."""
    try:
        with open(path, "rb") as config:
            source = config.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    namespace = {"__file__": os.path.abspath(path), "__name__": "__ursa_config__"}
    try:
        code = compile(source, path, "exec")
        exec(code, namespace)
    except SyntaxError as exc:
        raise ConfigError(f"config file {path}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        line = _innermost_line(exc, path)
        raise ConfigError(f"config file {path}{line}: {type(exc).__name__}: {exc}") from None

    known = settings_by_name()
    for name, value in namespace.items():
        if name.startswith("_") or isinstance(value, type(sys)):
            continue
        if name == "wsgi_app":
            settings.wsgi_app = parse_str(value) if isinstance(value, str) else value
            continue
        if name in HOOKS:
            try:
                settings.hooks[name] = parse_hook(value)
            except ValueError as exc:
                raise ConfigError(f"config file {path}: {name} {exc}") from None
            continue
        target = GUNICORN_ALIASES.get(name, name)
        if target in known:
            settings.set(target, value, f"config file {path}: {name}")
        elif not callable(value) and not isinstance(value, type):
            # Helper variables are allowed, so an unknown name is only a warning.
            hint = did_you_mean(name, list(known) + list(HOOKS) + list(GUNICORN_ALIASES))
            settings.warnings.append(f"config file {path}: ignoring unknown setting {name!r}{hint}")
    settings.config_file = os.path.abspath(path)


def _innermost_line(exc, filename):
    """', line N' of the deepest frame of `exc` in `filename`, or ''."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = f", line {frame.lineno}"
    return line
