"""PasteDeploy server runner (for pserve and anything using paste.deploy):

    [server:main]
    use = egg:ursa#main
    host = 127.0.0.1
    port = 8080
    # unix_socket = /run/app.sock      (instead of host and port)
    # reuse_port = true
    # workers = 4                      (more than 1: ursa's master and workers)
    # access_log = -
    # max_request_line = 8192          (any limit or timeout of ursa.run())

Values in an ini file are strings; each is converted to what the option
takes, and a wrong one raises ConfigError naming the option.
"""
import logging
import os

from .config import (ConfigError, Settings, parse_bool, parse_non_negative_int, parse_optional_path,
                     parse_positive_int, parse_seconds, parse_str)

DEFAULT_PORT = 8080

log = logging.getLogger("ursa.error")


def run_server(wsgi_app, global_conf, host="127.0.0.1", port=DEFAULT_PORT, unix_socket=None,
               reuse_port=False, backlog=1024, workers=1, access_log=None, access_log_format=None,
               **options):
    import ursa

    reuse_port = _convert("reuse_port", reuse_port, parse_bool)
    backlog = _convert("backlog", backlog, parse_positive_int)
    workers = _convert("workers", workers, parse_positive_int)
    access_log = _convert("access_log", access_log, parse_optional_path)
    core_options = {name: _convert_core_option(name, value) for name, value in options.items()}
    if unix_socket:
        address = "unix:" + unix_socket
    else:
        port = _convert("port", port, parse_non_negative_int)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    if workers > 1:
        return _run_with_workers(wsgi_app, address, reuse_port, backlog, workers, access_log,
                                 access_log_format, core_options)

    from .accesslog import AccessLog
    from .arbiter import describe_socket

    if access_log is not None:
        access = AccessLog(access_log, access_log_format)
        core_options["access_log"] = access
        wsgi_app = access.wrap_app(wsgi_app)
    _ensure_error_log()
    if unix_socket:
        sock = ursa.listen(wsgi_app, address, listen_backlog=backlog, **core_options)
    else:
        sock = ursa.listen(wsgi_app, host, port, reuse_port=reuse_port, listen_backlog=backlog, **core_options)
    log.info("Listening at: %s (%d)", describe_socket(sock), os.getpid())
    ursa.run()


def _ensure_error_log():
    """Server messages go where the ini's [loggers] sent them (pserve sets
    that up); without any logging configuration, to stderr."""
    from .arbiter import setup_error_log

    if not logging.getLogger().handlers and not log.handlers:
        setup_error_log("-", "info")


def _run_with_workers(wsgi_app, address, reuse_port, backlog, workers, access_log, access_log_format,
                      core_options):
    from .arbiter import Arbiter

    settings = Settings()
    origin = "[server] option"
    settings.set("bind", [address], f"{origin} host/port")
    settings.set("reuse_port", reuse_port, f"{origin} reuse_port")
    settings.set("backlog", backlog, f"{origin} backlog")
    settings.set("workers", workers, f"{origin} workers")
    if access_log is not None:
        settings.set("access_log", access_log, f"{origin} access_log")
    if access_log_format is not None:
        settings.set("access_log_format", access_log_format, f"{origin} access_log_format")
    for name, value in core_options.items():
        if name == "max_requests":
            settings.set("max_requests", value, f"{origin} max_requests")
        else:
            settings.set(name, value, f"{origin} {name}")
    _ensure_error_log()
    Arbiter(settings, app=wsgi_app).run()


def _convert(name, value, parse):
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"[server] option {name} {exc}") from None


def _convert_core_option(name, value):
    from ursa import OPTIONS

    if name not in OPTIONS or name in ("access_log", "multiprocess"):
        known = sorted(set(OPTIONS) - {"access_log", "multiprocess"})
        raise ConfigError(f"[server] option {name!r} is unknown to ursa; known: host, port, unix_socket, "
                          f"reuse_port, backlog, workers, access_log, access_log_format, {', '.join(known)}")
    default = OPTIONS[name]
    if isinstance(default, bool):
        parse = parse_bool
    elif isinstance(default, float):
        parse = parse_seconds
    elif isinstance(default, int):
        parse = parse_non_negative_int
    else:
        parse = parse_str
    return _convert(name, value, parse)
