"""The settings of the ursa command: one table (settings_table()) of their names,
flags, defaults and value parsers, and Settings, the values resolved from
the defaults, a config file (configfile.py) and the command line (cli.py),
or from a PasteDeploy [server] section (paste.py).

The one table serves the command line, the config file, PasteDeploy and the
help text, so a setting is spelled the same everywhere: ``--max-request-line``
on the command line is ``max_request_line`` in a config file. The limits and
timeouts of ursa.run() come from the core's own OPTION_SPECS, and each value
is checked by the core's rules (core_option_parser) wherever it is given.
Every mistake a user can make here raises ConfigError with one line that
says what to fix.
"""
import grp
import pwd
from dataclasses import dataclass

from .addresses import DEFAULT_BIND, parse_bind, parse_binds
from .errors import ConfigError

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# gunicorn accepts "warn" too; systemd units and Procfiles carry it.
LOG_LEVEL_SPELLINGS = {"warn": "warning"}

# Server options the command sets itself: it builds the access log, sets
# wsgi.multiprocess from --workers and adds jitter to --max-requests.
COMMAND_HANDLED_OPTIONS = frozenset({"access_log", "multiprocess", "max_requests"})
DEFAULT_WORKER_TIMEOUT = 30.0


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
    level = LOG_LEVEL_SPELLINGS.get(level, level)
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


def parse_environment(value):
    """-e/--env and raw_env: KEY=VALUE strings (one, or a list of them) ->
    [(key, value)] in the order given."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"must be KEY=VALUE strings, got {value!r}")
    pairs = []
    for item in items:
        key, equals, text = parse_str(item).partition("=")
        if not equals or not key.strip() or "\0" in item:
            raise ValueError(f"must be KEY=VALUE, got {item!r}")
        pairs.append((key.strip(), text))
    return pairs


def parse_python_path(value):
    """--pythonpath: folders separated by commas (gunicorn's form), or a
    list of them in a config file -> [folder]."""
    items = parse_str(value).split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"must be folders separated by commas, got {value!r}")
    folders = [parse_str(item).strip() for item in items]
    if not all(folders):
        raise ValueError(f"has an empty folder name in {value!r}")
    return folders


def parse_log_config_dict(value):
    if not isinstance(value, dict):
        raise ValueError(f"must be a dict of logging.config.dictConfig, got {value!r}")
    return value


def _parse_choice(choices):
    def parse(value):
        text = parse_str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text
    return parse


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


@dataclass
class Setting:
    """One setting: its name, command-line flags, parser, default and help."""

    name: str
    flags: list           # ["-w", "--workers"]: the last one names it in messages
    parse: object         # value (str or Python) -> the setting's value; ValueError says what is expected
    default: object
    help: str
    metavar: str = None
    kind: str = "value"  # "value", "flag" (no argument) or "list" (repeatable)
    section: str = "process"  # the group of --help it is listed in
    merges: bool = False  # a later source adds to the earlier one's list instead of replacing it


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
        "websocket_max_message_size": ("BYTES", "largest WebSocket message; larger closes with 1009"),
        "websocket_ping_interval": ("SECONDS", "a WebSocket is pinged after this long; 0: never"),
        "websocket_ping_timeout": ("SECONDS", "a WebSocket whose pong does not come this long after a ping "
                                              "is closed"),
        "websocket_close_timeout": ("SECONDS", "how long a WebSocket peer has to answer our close frame"),
        "websocket_per_message_deflate": ("BOOL", "negotiate permessage-deflate (RFC 7692) when a WebSocket "
                                                  "client offers it: true or false"),
        "websocket_deflate_window_bits": ("BITS", "permessage-deflate's LZ77 window, ours and the client's when "
                                                  "it lets us choose, is at most 2**BITS bytes (9-15)"),
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
        # A switch that is off by default is a flag; one that is on takes a
        # value (--websocket-per-message-deflate false), as uvicorn's does.
        flag = _core.OPTION_SPECS[name][0] == "bool" and not default
        settings.append(Setting(name, ["--" + name.replace("_", "-")], core_option_parser(name), default,
                                text if flag else f"{text} (default {default!r})", metavar,
                                kind="flag" if flag else "value", section="limits"))
    return settings


def _build_settings():
    from .interfaces import INTERFACES, LIFESPAN_MODES

    listening, workers, app, logging_, process = "listening", "workers", "app", "logging", "process"
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
        Setting("interface", ["--interface"], _parse_choice(INTERFACES), "auto",
                "what the app speaks: wsgi, asgi, or auto: an async app (Starlette, FastAPI, Django's "
                "get_asgi_application()) is ASGI, any other WSGI (default auto)", "{auto,wsgi,asgi}",
                section=app),
        Setting("lifespan", ["--lifespan"], _parse_choice(LIFESPAN_MODES), "auto",
                "an ASGI app's lifespan startup and shutdown: on (a failed startup stops the worker), "
                "off, or auto: on unless the app does not support it (default auto)", "{auto,on,off}",
                section=app),
        Setting("access_log", ["--access-log"], parse_optional_path, None,
                "write an access log to FILE, or '-' for stdout (default: off)", "FILE", section=logging_),
        Setting("access_log_format", ["--access-log-format"], parse_str, None,
                "access log line, with gunicorn's atoms like %%(h)s %%(r)s %%(s)s "
                "(default: combined log format)", "FORMAT", section=logging_),
        Setting("error_log", ["--error-log"], parse_optional_path, "-",
                "write server messages to FILE, or '-' for stderr (default '-')", "FILE", section=logging_),
        Setting("capture_output", ["--capture-output"], parse_bool, False,
                "the workers' stdout and stderr go to the error log too", kind="flag", section=logging_),
        Setting("log_config", ["--log-config"], parse_optional_path, None,
                "a logging.config.fileConfig file, applied after --error-log (its loggers may send "
                "ursa.error elsewhere)", "FILE", section=logging_),
        Setting("logconfig_dict", [], parse_log_config_dict, None,
                "config files only: a logging.config.dictConfig dict, applied after --log-config",
                section=logging_),
        Setting("log_level", ["--log-level"], parse_log_level, "info",
                f"least severity of server messages: {', '.join(LOG_LEVELS)} (default info)", "LEVEL",
                section=logging_),
        Setting("chdir", ["--chdir"], parse_str, None,
                "change to DIR before loading the app (relative paths are then relative to DIR)", "DIR",
                section=process),
        Setting("pythonpath", ["--pythonpath"], parse_python_path, None,
                "folders to put in front of sys.path, separated by commas", "DIRS", section=app),
        Setting("raw_env", ["-e", "--env"], parse_environment, [],
                "set an environment variable of the master and workers before the app loads, "
                "repeatable (added to the config file's raw_env)", "KEY=VALUE", kind="list", section=process,
                merges=True),
        Setting("proc_name", ["-n", "--name"], parse_str, None,
                "process titles become 'ursa: master [NAME]' and 'ursa: worker [NAME]' when setproctitle "
                "is installed (default NAME: the app)", "NAME", section=process),
        Setting("pid", ["-p", "--pid"], parse_optional_path, None,
                "write the master's process id to FILE", "FILE", section=process),
        Setting("umask", ["-m", "--umask"], parse_umask, None,
                "file mode mask for the files ursa makes (unix sockets, logs, pid file), e.g. 007 "
                "(default: inherited)", "MASK",
                section=process),
        Setting("user", ["-u", "--user"], parse_user, None,
                "run workers as this user (name or uid; the master must be root); unix socket files "
                "belong to it", "USER", section=process),
        Setting("group", ["-g", "--group"], parse_group, None,
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
        if setting.merges and name in self.explicit:
            parsed = getattr(self, name) + parsed
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



@dataclass
class GunicornName:
    """gunicorn's name for a setting ursa has under its own name: how a
    gunicorn.conf.py spells it, and gunicorn's command-line flags for it
    (those ursa spells the same, like --workers, need none here)."""

    name: str
    target: str           # the ursa setting
    flags: tuple = ()
    zero_means_largest: bool = False  # gunicorn's 0 for "no limit"

    def value_for_target(self, value):
        """`value` as the target setting takes it: gunicorn's 0 becomes the
        largest value the core accepts for that limit."""
        if self.zero_means_largest:
            try:
                if _to_int(value) == 0:
                    from . import _core
                    return _core.OPTION_SPECS[self.target][2]
            except ValueError:
                pass  # the target's own parser says what is wrong with it
        return value


GUNICORN_NAMES = [
    GunicornName("accesslog", "access_log", ("--access-logfile",)),
    GunicornName("errorlog", "error_log", ("--error-logfile", "--log-file")),
    GunicornName("loglevel", "log_level"),
    GunicornName("logconfig", "log_config"),
    GunicornName("pidfile", "pid"),
    GunicornName("preload_app", "preload"),
    GunicornName("limit_request_line", "max_request_line", ("--limit-request-line",), zero_means_largest=True),
    GunicornName("limit_request_fields", "max_headers", ("--limit-request-fields",), zero_means_largest=True),
    GunicornName("limit_request_field_size", "max_header_line",
                 ("--limit-request-field_size", "--limit-request-field-size"), zero_means_largest=True),
    GunicornName("keepalive", "keepalive_timeout", ("--keep-alive",)),
    GunicornName("access_log_format", "access_log_format", ("--access-logformat",)),
    GunicornName("worker_connections", "max_connections", ("--worker-connections",)),
]


def gunicorn_names():
    return {alias.name: alias for alias in GUNICORN_NAMES}


# gunicorn settings ursa does not have, each with what ursa does instead. A
# gunicorn.conf.py that sets one still runs (with this as a warning); the
# command-line flag is refused with it.
def _no_tls(name):
    return (f"ursa does not terminate TLS; put nginx or HAProxy in front to do it (README: Deploying), "
            f"so {name} has nothing to configure")


UNSUPPORTED_GUNICORN_SETTINGS = {
    "threads": ("ursa workers are single-threaded event loops; use more workers (-w/--workers), and a "
                "thread pool inside the app for blocking calls if it needs one", ("--threads",)),
    "worker_class": ("ursa runs its own worker (one C event loop per process, for WSGI and ASGI alike); "
                     "to keep gunicorn's master, run gunicorn -k ursa.gunicorn.Worker instead",
                     ("-k", "--worker-class")),
    "daemon": ("ursa stays in the foreground; let systemd, supervisord or the container run it in the "
               "background", ("-D", "--daemon")),
    "worker_tmp_dir": ("ursa's workers report that they are alive through shared memory, not a temporary "
                       "file; there is nothing to place", ("--worker-tmp-dir",)),
    "proxy_allow_ips": ("with --proxy-protocol ursa takes the PROXY header from any peer and refuses a "
                        "connection without one; let only the proxy reach the bound address",
                        ("--proxy-allow-from",)),
    "secure_scheme_headers": ("ursa reads X-Forwarded-Proto, X-Forwarded-Ssl, X-Forwarded-Protocol and "
                              "Forwarded from the peers of --forwarded-allow-ips; that set is fixed", ()),
    "forwarder_headers": ("ursa reads X-Forwarded-For and Forwarded from the peers of --forwarded-allow-ips; "
                          "that set is fixed", ()),
    "statsd_host": ("ursa sends no StatsD metrics; the access log (--access-log-format with %(D)s) has each "
                    "request's time", ("--statsd-host",)),
    "statsd_prefix": ("ursa sends no StatsD metrics", ("--statsd-prefix",)),
    "dogstatsd_tags": ("ursa sends no StatsD metrics", ("--dogstatsd-tags",)),
    "syslog": ("ursa has no syslog switch; send the ursa.error logger to a logging.handlers.SysLogHandler "
               "with --log-config or logconfig_dict", ("--log-syslog",)),
    "syslog_addr": ("ursa has no syslog switch; use a SysLogHandler in --log-config or logconfig_dict",
                    ("--log-syslog-to",)),
    "syslog_prefix": ("ursa has no syslog switch; use a SysLogHandler in --log-config or logconfig_dict",
                      ("--log-syslog-prefix",)),
    "syslog_facility": ("ursa has no syslog switch; use a SysLogHandler in --log-config or logconfig_dict",
                        ("--log-syslog-facility",)),
    "logconfig_json": ("load the JSON in the config file and give it as logconfig_dict", ("--log-config-json",)),
    "logger_class": ("ursa logs through the logging logger ursa.error; shape it with --log-config or "
                     "logconfig_dict", ("--logger-class",)),
    "reload_engine": ("ursa's --reload polls the modification times of the loaded source files; there is "
                      "no engine to choose", ("--reload-engine",)),
    "reload_extra_files": ("ursa's --reload watches the source files the app loaded; other files are not "
                           "watched", ("--reload-extra-file",)),
    "spew": ("ursa has no tracing switch; run the app under a debugger or profiler instead", ("--spew",)),
    "sendfile": ("ursa always sends a wsgi.file_wrapper response of a file with sendfile(2); there is no "
                 "switch",
                 ("--no-sendfile",)),
    "initgroups": ("ursa's workers always take the --user's supplementary groups (initgroups) when they "
                   "switch; there is nothing to set", ("--initgroups",)),
    "tmp_upload_dir": ("ursa spills request bodies larger than --body-buffer-size to a temporary file in "
                       "TMPDIR; set TMPDIR to choose where", ()),
    "enable_stdio_inheritance": ("ursa's workers always keep the master's stdout and stderr",
                                 ("-R", "--enable-stdio-inheritance")),
    "paste": ("for a PasteDeploy ini, use ursa's runner: use = egg:ursa#main in its [server:main] section",
              ("--paste", "--paster")),
    "strip_header_spaces": ("ursa's HTTP parser (llhttp) answers a space before a header's colon with a 400, "
                            "as RFC 9112 asks; there is no switch",
                            ("--strip-header-spaces",)),
    "keyfile": (_no_tls("keyfile"), ("--keyfile",)),
    "certfile": (_no_tls("certfile"), ("--certfile",)),
    "ca_certs": (_no_tls("ca_certs"), ("--ca-certs",)),
    "cert_reqs": (_no_tls("cert_reqs"), ("--cert-reqs",)),
    "ssl_version": (_no_tls("ssl_version"), ("--ssl-version",)),
    "ciphers": (_no_tls("ciphers"), ("--ciphers",)),
    "do_handshake_on_connect": (_no_tls("do_handshake_on_connect"), ("--do-handshake-on-connect",)),
    "suppress_ragged_eofs": (_no_tls("suppress_ragged_eofs"), ("--suppress-ragged-eofs",)),
}
