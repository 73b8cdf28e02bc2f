"""PasteDeploy server runner (for pserve, Zope's runwsgi and anything using
paste.deploy):

    [server:main]
    use = egg:ursa#main
    host = 127.0.0.1
    port = 8080
    # unix_socket = /run/app.sock      (instead of host and port)
    # reuse_port = true
    # workers = 4                      (more than 1: ursa's master and workers)
    # app_name = main                  (the app each worker loads, see below)
    # timeout = 30                     (workers: --timeout)
    # access_log = -
    # max_request_line = 8192          (any limit or timeout of ursa.run())

Values in an ini file are strings; each is converted and checked by the
same rules as the `ursa` command's options (the core's own, for the limits
and timeouts), before anything is bound. A wrong one ends the process with
one line naming the option and exit status 2.

With one worker the app PasteDeploy loaded is served in this process. With
more, PasteDeploy's copy is never served: loaded before the fork, its open
files and connections (a Zope database, a ZEO client and its thread) would
be shared by every worker, and an app like Zope, once started in a process,
does not start again in it. So this process execs a clean master (python -m
ursa.paste) that never loads the app; each worker loads it after the fork
from the ini file PasteDeploy names in global_conf['__file__'], under
`app_name`, with logging set up from the ini as pserve does.
"""
import json
import logging
import os
import sys

from .addresses import describe_bind_error, describe_socket, parse_bind
from .apploader import describe_exception
from .config import COMMAND_HANDLED_OPTIONS, Settings, parse_port, settings_by_name
from .errors import EXIT_CONFIG_ERROR, ConfigError
from .processes import flush_standard_streams

DEFAULT_PORT = 8080
DEFAULT_APP_NAME = "main"

# Settings of the ursa command a [server] section may hold, besides the
# limits and timeouts of ursa.run().
COMMAND_SETTINGS = ("reuse_port", "backlog", "workers", "timeout", "max_requests", "max_requests_jitter",
                    "access_log", "access_log_format")
ORIGIN = "[server] option"

log = logging.getLogger("ursa.error")


def run_server(wsgi_app, global_conf, host="127.0.0.1", port=DEFAULT_PORT, unix_socket=None,
               app_name=DEFAULT_APP_NAME, **options):
    with _one_line_errors():
        settings = server_settings(host, port, unix_socket, options)
        if settings.workers > 1:
            config_file = _config_file_of(global_conf)
            plan = {"config_file": config_file, "app_name": app_name, "global_conf": _variables(global_conf),
                    "host": host, "port": port, "unix_socket": unix_socket, "options": options,
                    "sys_path": sys.path}
            _exec_clean_master(plan)
        _run_in_process(wsgi_app, settings)


class _one_line_errors:
    """A ConfigError ends the process with one line and exit status 2."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if kind is None or not issubclass(kind, ConfigError):
            return False
        sys.stderr.write(f"ursa: error: {exc}\n")
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def main(argv=None):
    """python -m ursa.paste PLAN: the clean master run_server execs for
    workers > 1 (PLAN is JSON: the ini file, the app name, the [server]
    options). It never loads the app; its workers do."""
    argv = sys.argv[1:] if argv is None else argv
    with _one_line_errors():
        try:
            plan = json.loads(argv[0])
            sys.path[:] = plan["sys_path"]
        except (IndexError, ValueError, KeyError, TypeError):
            raise ConfigError("python -m ursa.paste is started by the PasteDeploy runner (use = egg:ursa#main "
                              "with workers > 1), not by hand") from None
        _configure_logging(plan["config_file"], plan["global_conf"])
        settings = server_settings(plan["host"], plan["port"], plan["unix_socket"], plan["options"])
        loader = worker_app_loader(plan["config_file"], plan["app_name"], plan["global_conf"])
        _run_with_workers(settings, loader)
    return 0


def server_settings(host, port, unix_socket, options):
    """Every option of the [server] section, parsed and checked."""
    settings = Settings()
    if unix_socket:
        address = "unix:" + unix_socket
    else:
        port = _parse(parse_port, "port", port)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        settings.bind = [parse_bind(address)]
    except ValueError as exc:
        raise ConfigError(f"{ORIGIN} host/port/unix_socket: {exc}") from None
    known = known_options()
    for name, value in options.items():
        if name not in known:
            raise ConfigError(f"{ORIGIN} {name!r} is unknown to ursa; known: host, port, unix_socket, app_name, "
                              f"{', '.join(sorted(known))}")
        settings.set(name, value, f"{ORIGIN} {name}")
    return settings


def known_options():
    table = settings_by_name()
    limits = {name for name, setting in table.items() if setting.section == "limits"}
    return (limits - COMMAND_HANDLED_OPTIONS) | set(COMMAND_SETTINGS)


def _parse(parse, name, value):
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"{ORIGIN} {name} {exc}") from None


def _config_file_of(global_conf):
    config_file = global_conf.get("__file__")
    if not config_file:
        raise ConfigError(f"{ORIGIN} workers: more than 1 worker needs the ini file to load the app from in "
                          f"each worker, and PasteDeploy gave none (no __file__ in global_conf); load the "
                          f"server with paste.deploy.loadserver('config:FILE') or set workers = 1")
    return os.path.abspath(config_file)


def _variables(global_conf):
    """The variables PasteDeploy was given (pserve's KEY=VALUE arguments),
    without the two it derives from the file."""
    return {key: str(value) for key, value in global_conf.items() if key not in ("__file__", "here")}


def _exec_clean_master(plan):
    """Replace this process (same pid, same standard streams) with a master
    that has not loaded the app. Never returns."""
    argv = [sys.executable, "-m", "ursa.paste", json.dumps(plan)]
    flush_standard_streams()
    logging.shutdown()  # flush the log files this process opened
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        raise ConfigError(f"cannot start the master for workers = {plan['options'].get('workers')}: "
                          f"exec {sys.executable}: {exc.strerror}") from None


def _configure_logging(config_file, variables):
    """What pserve and runwsgi do first: the ini's [loggers] sections, if
    any, configure logging (the ursa.error logger included)."""
    import configparser
    import logging.config

    parser = configparser.ConfigParser()
    try:
        parser.read([config_file])
        if not parser.has_section("loggers"):
            return
        defaults = dict(variables, __file__=config_file, here=os.path.dirname(config_file))
        logging.config.fileConfig(config_file, defaults, disable_existing_loggers=False)
    except Exception as exc:
        raise ConfigError(f"the logging sections of {config_file}: {describe_exception(exc)}") from None


def worker_app_loader(config_file, app_name, variables):
    """A function that loads the app from PasteDeploy's ini file: what each
    worker calls after the fork."""
    def load():
        from paste.deploy import loadapp

        try:
            return loadapp("config:" + config_file, name=app_name, global_conf=variables)
        except Exception as exc:
            raise ConfigError(f"loading app {app_name!r} of {config_file} failed: "
                              f"{describe_exception(exc)}") from None
    load.description = f"app {app_name!r} of {config_file}"
    return load


def _run_in_process(wsgi_app, settings):
    import ursa

    from .logs import open_access_log

    core_options = settings.core_options()
    if settings.max_requests:
        core_options["max_requests"] = settings.max_requests
    if settings.access_log is not None:
        access = open_access_log(settings.access_log, settings.access_log_format)
        core_options["access_log"] = access
        wsgi_app = access.wrap_app(wsgi_app)
    _ensure_error_log()
    (address,) = settings.bind
    try:
        if address.kind == "unix":
            sock = ursa.listen(wsgi_app, str(address), listen_backlog=settings.backlog, **core_options)
        else:
            sock = ursa.listen(wsgi_app, address.host, address.port, reuse_port=settings.reuse_port,
                               listen_backlog=settings.backlog, **core_options)
    except OSError as exc:
        raise ConfigError(describe_bind_error(address, exc)) from None
    log.info("Listening at: %s (%d)", describe_socket(sock), os.getpid())
    ursa.run()


def _ensure_error_log():
    """Server messages go where the ini's [loggers] sent them (pserve sets
    that up); without any logging configuration, to stderr."""
    from .logs import setup_error_log

    if not logging.getLogger().handlers and not log.handlers:
        setup_error_log("-", "info")


def _run_with_workers(settings, loader):
    """Run the master (in the clean process: see main())."""
    from .arbiter import Arbiter

    settings.wsgi_app = loader.description
    _ensure_error_log()
    Arbiter(settings, app_loader=loader).run()


if __name__ == "__main__":
    sys.exit(main())
