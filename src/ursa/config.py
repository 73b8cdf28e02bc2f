"""Settings of the ursa command: their names, defaults and parsers, the
config-file loader, bind-address parsing and the WSGI app loader.

One table (SETTINGS) serves the command line, the config file (a Python
file, like gunicorn.conf.py) and the help text, so a setting is spelled the
same everywhere: ``--max-request-line`` on the command line is
``max_request_line`` in a config file. Every mistake a user can make here
raises ConfigError with one line that says what to fix.
"""
import ast
import difflib
import grp
import importlib
import os
import pwd
import sys
import traceback

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_PORT = 8000
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

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


# Server options the command sets itself: it builds the access log, sets
# wsgi.multiprocess from --workers and adds jitter to --max-requests.
COMMAND_HANDLED_OPTIONS = frozenset({"access_log", "multiprocess", "max_requests"})
DEFAULT_WORKER_TIMEOUT = 30.0


class ConfigError(Exception):
    """A mistake in the command line, config file or app; str() is the one-line message."""


# -- value parsers: each takes a str (command line) or a Python value (config
# file) and returns the setting's value, or raises ValueError saying what is
# expected.

def parse_positive_int(value):
    number = _to_int(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


def parse_non_negative_int(value):
    number = _to_int(value)
    if number < 0:
        raise ValueError(f"must not be negative, got {number}")
    return number


def _to_int(value):
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip().replace("_", ""), 10)
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None


def parse_port(value):
    number = _to_int(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"must be a port number from 0 to 65535, got {number}")
    return number


def parse_seconds(value):
    if isinstance(value, bool):
        raise ValueError(f"must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number of seconds, got {value!r}") from None
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"must be zero or more seconds, got {value!r}")
    return seconds


def parse_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def parse_str(value):
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value


def parse_optional_path(value):
    """A file name, '-' for the standard stream, or None/'' for off."""
    if value is None or value == "" or value is False:
        return None
    return parse_str(value)


def parse_log_level(value):
    level = parse_str(value).strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def parse_umask(value):
    if isinstance(value, int) and not isinstance(value, bool):
        mask = value
    else:
        text = str(value).strip()
        try:
            # "022" means octal, as in the shell's umask; "0o22" and "18" also work.
            mask = int(text, 8) if text.isdigit() else int(text, 0)
        except ValueError:
            raise ValueError(f"must be an octal mask like 022, got {value!r}") from None
    if not 0 <= mask <= 0o777:
        raise ValueError(f"must be between 000 and 777 (octal), got {value!r}")
    return mask


def parse_binds(value):
    """One address or a list of them (a config file may give either)."""
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ValueError("needs at least one address")
    return [parse_bind(item) for item in items]


def parse_user(value):
    """A user name or uid -> (uid, default gid of that user or None)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    text = parse_str(value)
    if text.isdigit():
        return int(text), None
    try:
        entry = pwd.getpwnam(text)
    except KeyError:
        raise ValueError(f"there is no user {text!r} on this machine") from None
    return entry.pw_uid, entry.pw_gid


def parse_group(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = parse_str(value)
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueError(f"there is no group {text!r} on this machine") from None


def parse_hook(value):
    if not callable(value):
        raise ValueError(f"must be a function, got {value!r}")
    return value


class Setting:
    """One setting: its name, command-line flags, parser, default and help."""

    def __init__(self, name, flags, parse, default, help, metavar=None, kind="value", section="process"):
        self.name = name
        self.flags = flags
        self.parse = parse
        self.default = default
        self.help = help
        self.metavar = metavar
        self.kind = kind  # "value", "flag" (no argument) or "list" (repeatable)
        self.section = section


def core_option_parser(name):
    """The parser of server option `name`: it converts a command-line string
    or a config-file value to the kind the core takes, then checks it with
    the core's own rules (_core.check_option), so that a value the core
    would refuse in a worker is refused here, before anything is bound."""
    from . import _core

    kind = _core.OPTION_SPECS[name][0]
    convert = _CORE_KIND_CONVERTERS.get(kind)
    if convert is None:
        raise KeyError(f"the server option {name} ({kind}) has no textual form")

    def parse(value):
        converted = convert(value)
        try:
            _core.check_option(name, converted)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return float(converted) if kind in ("seconds", "rate") else converted
    return parse


def _number_of(unit):
    """A converter to a number of `unit`, keeping the number as the user
    wrote it (an int stays an int) so that a refusal quotes their value."""
    def convert(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        text = str(value).strip().replace("_", "")
        for number in (int, float):
            try:
                return number(text)
            except ValueError:
                pass
        raise ValueError(f"must be a number of {unit}, got {value!r}")
    return convert


_CORE_KIND_CONVERTERS = {
    "bytes": _to_int,
    "count": _to_int,
    "seconds": _number_of("seconds"),
    "rate": _number_of("bytes per second"),
    "bool": parse_bool,
    "str": parse_str,
    "networks": parse_str,
    "prefix": parse_str,
}


def _core_option_settings():
    """The limits and timeouts of ursa.run(), under the same names, each
    checked by the core's own rules (see core_option_parser)."""
    from . import OPTIONS, _core

    described = {
        "max_request_line": ("BYTES", "longest request line; longer gets 414"),
        "max_header_line": ("BYTES", "longest header line; longer gets 431"),
        "max_headers": ("N", "most header fields in a request; more gets 431"),
        "max_header_bytes": ("BYTES", "largest request head; larger gets 431"),
        "max_body_size": ("BYTES", "largest request body; larger gets 413"),
        "body_buffer_size": ("BYTES", "bodies larger than this spill to a temp file"),
        "max_connections": ("N", "open connections per worker before it stops accepting"),
        "header_timeout": ("SECONDS", "time to receive a request head; then 408"),
        "body_timeout": ("SECONDS", "longest gap while receiving a body; then 408"),
        "min_body_rate": ("BYTES_PER_S", "a request body must keep up this many bytes/s after "
                                         "body_timeout; 0: off"),
        "keepalive_timeout": ("SECONDS", "idle keep-alive connections close after this"),
        "write_timeout": ("SECONDS", "a client that takes no data for this long is dropped"),
        "graceful_timeout": ("SECONDS", "on stop or reload, requests in flight get this long to finish"),
        "url_scheme": ("SCHEME", "wsgi.url_scheme of every request (http or https); behind a proxy, "
                                 "its forwarded headers decide"),
        "forwarded_allow_ips": ("IPS", "proxies whose X-Forwarded-*/Forwarded headers set the scheme and "
                                       "client address: addresses, networks (10.0.0.0/8) or '*'"),
        "proxy_protocol": (None, "every connection begins with a PROXY protocol v1/v2 header (HAProxy, AWS NLB)"),
        "script_name": ("PATH", "the app is mounted under this prefix: requests under it get it as "
                                "SCRIPT_NAME and the rest as PATH_INFO"),
    }
    settings = []
    for name, default in OPTIONS.items():
        if name in COMMAND_HANDLED_OPTIONS or _core.OPTION_SPECS[name][0] not in _CORE_KIND_CONVERTERS:
            continue  # the command's own business, or no value a user can type (a callable)
        metavar, text = described.get(name, ("VALUE", f"the server option {name}"))
        flag = _core.OPTION_SPECS[name][0] == "bool"
        settings.append(Setting(name, ["--" + name.replace("_", "-")], core_option_parser(name), default,
                                text if flag else f"{text} (default {default!r})", metavar,
                                kind="flag" if flag else "value", section="limits"))
    return settings


def _build_settings():
    listening, workers, logging_, process = "listening", "workers", "logging", "process"
    settings = [
        Setting("bind", ["-b", "--bind"], parse_binds, None,
                f"address to listen on, repeatable: HOST:PORT, [::1]:PORT, unix:/path, unix:@name "
                f"or fd://N (default {DEFAULT_BIND})", "ADDRESS", kind="list", section=listening),
        Setting("backlog", ["--backlog"], parse_positive_int, 1024,
                "listen() backlog of each socket (default 1024)", "N", section=listening),
        Setting("reuse_port", ["--reuse-port"], parse_bool, False,
                "set SO_REUSEPORT on TCP sockets", kind="flag", section=listening),
        Setting("workers", ["-w", "--workers"], parse_positive_int, 1,
                "number of worker processes (default 1)", "N", section=workers),
        Setting("timeout", ["-t", "--timeout"], parse_seconds, DEFAULT_WORKER_TIMEOUT,
                "a worker whose loop is held this long by one app call is killed and replaced "
                f"(default {DEFAULT_WORKER_TIMEOUT:g}; 0: never; the app's import is not counted)",
                "SECONDS", section=workers),
        Setting("max_requests", ["--max-requests"], core_option_parser("max_requests"), 0,
                "restart a worker gracefully after it served N requests (default 0: never)", "N",
                section=workers),
        Setting("max_requests_jitter", ["--max-requests-jitter"], parse_non_negative_int, 0,
                "add a random 0..N to --max-requests per worker, so they do not restart together", "N",
                section=workers),
        Setting("preload", ["--preload"], parse_bool, False,
                "load the app once in the master before forking (HUP then cannot reload code)",
                kind="flag", section=workers),
        Setting("reload", ["--reload"], parse_bool, False,
                "restart workers when a loaded source file changes (development only)",
                kind="flag", section=workers),
        Setting("access_log", ["--access-log"], parse_optional_path, None,
                "write an access log to FILE, or '-' for stdout (default: off)", "FILE", section=logging_),
        Setting("access_log_format", ["--access-log-format"], parse_str, None,
                "access log line, with gunicorn's atoms like %%(h)s %%(r)s %%(s)s "
                "(default: combined log format)", "FORMAT", section=logging_),
        Setting("error_log", ["--error-log"], parse_optional_path, "-",
                "write server messages to FILE, or '-' for stderr (default '-')", "FILE", section=logging_),
        Setting("log_level", ["--log-level"], parse_log_level, "info",
                f"least severity of server messages: {', '.join(LOG_LEVELS)} (default info)", "LEVEL",
                section=logging_),
        Setting("chdir", ["--chdir"], parse_str, None,
                "change to DIR before loading the app (relative paths are then relative to DIR)", "DIR",
                section=process),
        Setting("pid", ["--pid"], parse_optional_path, None,
                "write the master's process id to FILE", "FILE", section=process),
        Setting("umask", ["--umask"], parse_umask, None,
                "file mode mask for the files ursa makes (unix sockets, logs, pid file), e.g. 007 "
                "(default: inherited)", "MASK",
                section=process),
        Setting("user", ["--user"], parse_user, None,
                "run workers as this user (name or uid; the master must be root); unix socket files "
                "belong to it", "USER", section=process),
        Setting("group", ["--group"], parse_group, None,
                "run workers as this group (name or gid; the master must be root); unix socket files "
                "belong to it: --group www-data --umask 007 lets nginx in", "GROUP", section=process),
    ]
    return settings + _core_option_settings()


_settings_table = None


def settings_table():
    """The list of Setting, built on first use (it reads ursa.OPTIONS)."""
    global _settings_table
    if _settings_table is None:
        _settings_table = _build_settings()
    return _settings_table


def settings_by_name():
    return {setting.name: setting for setting in settings_table()}


class Settings:
    """Resolved settings: defaults, overridden by a config file, overridden by
    the command line. Attributes are the setting names; `hooks` maps hook
    names to functions; `explicit` holds the names that were given."""

    def __init__(self):
        for setting in settings_table():
            setattr(self, setting.name, setting.default)
        self.wsgi_app = None
        self.config_file = None
        self.hooks = {}
        self.explicit = set()
        self.warnings = []

    def set(self, name, value, origin):
        """Parse and store one setting; `origin` starts the error message
        ('--workers', 'config file x.py: workers')."""
        setting = settings_by_name()[name]
        try:
            parsed = setting.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{origin} {exc}") from None
        setattr(self, name, parsed)
        self.explicit.add(name)

    @property
    def binds(self):
        return self.bind if self.bind is not None else [parse_bind(DEFAULT_BIND)]

    def core_options(self):
        """Keywords for ursa.serve(): the limits and timeouts that were set."""
        names = {setting.name for setting in settings_table() if setting.section == "limits"}
        return {name: getattr(self, name) for name in names if name in self.explicit}

    def uid_gid(self):
        """(uid, gid) the workers should switch to, each None for 'unchanged'."""
        uid, user_gid = self.user if self.user is not None else (None, None)
        gid = self.group if self.group is not None else user_gid
        return uid, gid

    def call_hook(self, name, *args):
        hook = self.hooks.get(name)
        if hook is not None:
            hook(*args)


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
            hint = _did_you_mean(name, list(known) + list(HOOKS) + list(GUNICORN_ALIASES))
            settings.warnings.append(f"config file {path}: ignoring unknown setting {name!r}{hint}")
    settings.config_file = os.path.abspath(path)


def _did_you_mean(word, choices):
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _innermost_line(exc, filename):
    """', line N' of the deepest frame of `exc` in `filename`, or ''."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = f", line {frame.lineno}"
    return line


# -- bind addresses

class Address:
    """Where to listen: kind is 'tcp' (host, port), 'unix' (path; '@name' is
    abstract) or 'fd' (an inherited listening socket)."""

    def __init__(self, kind, host=None, port=None, path=None, fd=None):
        self.kind = kind
        self.host = host
        self.port = port
        self.path = path
        self.fd = fd

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


# -- the app

def load_wsgi_app(spec):
    """Import and return the WSGI app named by `spec`.

    `spec` is 'module:name', 'module:attribute.path', 'module:factory()' or
    'module:factory(literal, key=literal)'; a bare 'module' means its
    `application` (or `app`). Failures raise ConfigError naming what to fix.
    """
    if not isinstance(spec, str):
        if callable(spec):
            return spec
        raise ConfigError(f"wsgi_app must be a 'module:app' string or a callable, got {spec!r}")
    module_name, colon, expression = spec.partition(":")
    module_name = module_name.strip()
    if not module_name or (colon and not expression.strip()):
        raise ConfigError(f"app {spec!r}: expected MODULE:APP, as in myproject.wsgi:application")
    module = _import_app_module(module_name)
    if not colon:
        for default in ("application", "app"):
            if hasattr(module, default):
                expression = default
                break
        else:
            raise ConfigError(f"module {module_name!r} has no 'application' or 'app'; name the app: "
                              f"{module_name}:NAME")
    app = _evaluate_app_expression(module, module_name, expression.strip(), spec)
    if not callable(app):
        raise ConfigError(f"{spec!r} is {_a_type_name(app)}, not a WSGI app (a callable "
                          f"taking environ and start_response)")
    return app


def _import_app_module(module_name):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            unreadable = _unreadable_import_folder()
            if unreadable is not None:
                folder, blocked = unreadable
                where = "" if blocked == folder else f"on the way to {folder}, "
                raise ConfigError(f"cannot import {missing!r} as user {_user_name()}: {blocked}: permission "
                                  f"denied ({where}a folder on sys.path); give that user read access or "
                                  f"choose another --user") from None
            raise ConfigError(f"cannot import {module_name!r}: no module named {missing!r} in "
                              f"{os.getcwd()} or on sys.path; check MODULE in MODULE:APP or "
                              f"use --chdir") from None
        raise ConfigError(f"importing {module_name!r} failed: {describe_exception(exc)}") from None
    except SyntaxError as exc:
        raise ConfigError(f"importing {module_name!r} failed: syntax error in {exc.filename}, "
                          f"line {exc.lineno}: {exc.msg}") from None
    except SystemExit as exc:
        raise ConfigError(f"importing {module_name!r} failed: it called sys.exit({exc.code!r})") from None
    except Exception as exc:
        raise ConfigError(f"importing {module_name!r} failed: {describe_exception(exc)}") from None


def _unreadable_import_folder():
    """(folder, what blocks it) for the first folder of sys.path, outside
    Python's own installation, that this process cannot read (a --user
    without rights on the app's folder: the import system skips such a
    folder without a word); None if it can read them all."""
    installation = {os.path.realpath(prefix) for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    for entry in sys.path:
        folder = os.path.abspath(entry or os.curdir)
        if any(folder == prefix or folder.startswith(prefix + os.sep) for prefix in installation):
            continue
        blocked = _blocked_on_the_way(folder)
        if blocked is not None:
            return folder, blocked
    return None


def _blocked_on_the_way(path):
    """The first of `path`'s parents this process may not enter, or `path`
    itself if it may not read it; None if it can, or if `path` does not exist."""
    current = os.sep
    for part in path.split(os.sep)[1:-1]:
        current = os.path.join(current, part)
        if not os.access(current, os.F_OK):
            return None
        if not os.access(current, os.X_OK):
            return current
    if not os.access(path, os.F_OK):
        return None
    needed = os.R_OK | os.X_OK if os.path.isdir(path) else os.R_OK
    return None if os.access(path, needed) else path


def _user_name():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _evaluate_app_expression(module, module_name, expression, spec):
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise ConfigError(f"app {spec!r}: {expression!r} is not a name or a call like "
                          f"create_app()") from None
    call = None
    if isinstance(tree, ast.Call):
        call, tree = tree, tree.func
    path = _dotted_name(tree)
    if path is None:
        raise ConfigError(f"app {spec!r}: {expression!r} must be a name, a dotted name or a call "
                          f"of one with literal arguments")
    target = module
    walked = module_name
    for part in path:
        if not hasattr(target, part):
            names = [name for name in dir(target) if not name.startswith("_")]
            hint = _did_you_mean(part, names)
            raise ConfigError(f"{walked!r} has no attribute {part!r}{hint}; check APP in MODULE:APP")
        target = getattr(target, part)
        walked = f"{walked}:{part}" if walked == module_name else f"{walked}.{part}"
    if call is None:
        return target
    try:
        args = [ast.literal_eval(argument) for argument in call.args]
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
    except ValueError:
        raise ConfigError(f"app {spec!r}: factory arguments must be literals (strings, numbers, "
                          f"lists...)") from None
    if None in kwargs:
        raise ConfigError(f"app {spec!r}: **kwargs is not supported in the factory call")
    if not callable(target):
        raise ConfigError(f"app {spec!r}: {walked!r} is {_a_type_name(target)}, not a factory "
                          f"to call")
    try:
        return target(*args, **kwargs)
    except Exception as exc:
        raise ConfigError(f"calling {expression!r} in {module_name!r} failed: "
                          f"{describe_exception(exc)}") from None


def _dotted_name(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def describe_exception(exc):
    """'ExcType: message (file, line N)' for the frame that raised `exc`,
    skipping importlib's internals."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if ("importlib" not in frame.filename and not frame.filename.startswith("<frozen")
                and frame.filename != __file__):
            where = f" ({frame.filename}, line {frame.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


def _a_type_name(value):
    name = type(value).__name__
    return ("an " if name[0] in "aeiou" else "a ") + name
