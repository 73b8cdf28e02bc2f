"""The `ursa` command: serve a WSGI or ASGI app with a master and worker processes.

    ursa [OPTIONS] MODULE:APP        (also: python -m ursa ...)

Options follow gunicorn's where users know them (-b, -w, -c, --max-requests,
--graceful-timeout, --pid ...), and gunicorn's own spellings of ursa's
settings are accepted beside them (--keep-alive, --access-logfile,
--limit-request-line ...: config.GUNICORN_NAMES); a gunicorn flag ursa has
no use for is refused with what ursa does instead. The limits and timeouts
are those of ursa.run() under the same names. Settings can also come from a
Python config file (-c FILE); the command line wins over the file, and the
file over the PaaS variables PORT, WEB_CONCURRENCY and SCRIPT_NAME.
"""
import argparse
import logging
import os
import sys

from .addresses import parse_bind
from .apploader import load_wsgi_app
from .config import (GUNICORN_NAMES, UNSUPPORTED_GUNICORN_SETTINGS, Settings, parse_port, parse_positive_int,
                     settings_by_name, settings_table)
from .configfile import load_config_file
from .errors import EXIT_CONFIG_ERROR, ConfigError
from .privileges import check_can_switch
from .processes import apply_environment, extend_python_path

# --check-config's status when the config or the app does not load.
EXIT_CHECK_FAILED = 1

log = logging.getLogger("ursa.error")

EPILOG = """\
signals to the master: TERM/INT graceful stop, QUIT immediate stop, HUP reload
(re-read config, new workers), TTIN/TTOU one worker more/less, USR1 reopen logs,
USR2 upgrade (a new master on the same sockets; then TERM the old one).
examples:
  ursa -w 4 -b 0.0.0.0:8000 myproject.wsgi:application
  ursa -b unix:/run/app.sock --access-log - 'app:create_app(debug=False)'
"""


class GunicornFlag(argparse.Action):
    """gunicorn's flag for an ursa setting: keeps the value with the
    spelling used, so that a bad value is reported under it."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, (option_string, values))


class UnsupportedGunicornFlag(argparse.Action):
    """A gunicorn flag ursa has no use for: refused with what ursa does
    instead (it may have a value or not; either way it is refused)."""

    def __init__(self, option_strings, dest, hint=None, **kwargs):
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.hint = hint

    def __call__(self, parser, namespace, values, option_string=None):
        raise ConfigError(f"{option_string} is gunicorn's and ursa has no such flag: {self.hint}")


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="ursa", description="Serve a WSGI or ASGI app with ursa, a fast server with a C core.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", nargs="?", metavar="MODULE:APP",
                        help="the WSGI or ASGI app: module:name, module:factory() or module:factory('arg')")
    parser.add_argument("-c", "--config", metavar="FILE",
                        help="Python file of settings (like gunicorn.conf.py): workers = 4, bind = [...]")
    parser.add_argument("--version", action="version", version=f"ursa {__version__}")
    parser.add_argument("--check-config", action="store_true",
                        help="load the config and the app, then exit: 0 if they load, 1 with the reason")
    parser.add_argument("--print-config", action="store_true",
                        help="print every setting as resolved (defaults, PORT/WEB_CONCURRENCY/SCRIPT_NAME, "
                             "-c FILE, command line), then exit")
    groups = {section: parser.add_argument_group(title) for section, title in [
        ("listening", "listening"), ("workers", "workers"), ("app", "the app"),
        ("limits", "limits and timeouts (as in ursa.run())"), ("logging", "logging"), ("process", "process")]}
    for setting in settings_table():
        group = groups[setting.section]
        if not setting.flags:
            continue  # a config file's only (logconfig_dict)
        if setting.kind == "flag":
            group.add_argument(*setting.flags, dest=setting.name, action="store_true",
                               default=argparse.SUPPRESS, help=setting.help)
        else:
            group.add_argument(*setting.flags, dest=setting.name, metavar=setting.metavar,
                               action="append" if setting.kind == "list" else "store",
                               default=argparse.SUPPRESS, help=setting.help)
    gunicorn = parser.add_argument_group("gunicorn's spellings", "accepted beside ursa's own (0 for a "
                                         "--limit-request-* is the largest ursa allows)")
    for alias in GUNICORN_NAMES:
        if alias.flags:
            target = next(s for s in settings_table() if s.name == alias.target)
            gunicorn.add_argument(*alias.flags, dest=gunicorn_dest(alias), metavar=target.metavar,
                                  action=GunicornFlag, default=argparse.SUPPRESS, help=f"= {target.flags[-1]}")
    for hint, flags in UNSUPPORTED_GUNICORN_SETTINGS.values():
        if flags:
            parser.add_argument(*flags, action=UnsupportedGunicornFlag, hint=hint)
    return parser


def gunicorn_dest(alias):
    return "gunicorn:" + alias.name


def apply_paas_environment(settings, environ):
    """PORT, WEB_CONCURRENCY and SCRIPT_NAME, as Heroku-style platforms and
    gunicorn read them: the defaults of --bind (0.0.0.0:$PORT), --workers
    and --script-name, below a config file and the command line."""
    port = environ.get("PORT", "").strip()
    if port:
        try:
            settings.bind = [parse_bind(f"0.0.0.0:{parse_port(port)}")]
        except ValueError as exc:
            raise ConfigError(f"the PORT environment variable {exc}; unset it or give -b/--bind") from None
    workers = environ.get("WEB_CONCURRENCY", "").strip()
    if workers:
        try:
            settings.workers = parse_positive_int(workers)
        except ValueError as exc:
            raise ConfigError(f"the WEB_CONCURRENCY environment variable {exc}; unset it or give "
                              f"-w/--workers") from None
    script_name = environ.get("SCRIPT_NAME", "")
    if script_name:
        try:
            settings.script_name = settings_by_name()["script_name"].parse(script_name)
            settings.explicit.add("script_name")  # a core option reaches the workers only when given
        except ValueError as exc:
            raise ConfigError(f"the SCRIPT_NAME environment variable {exc}; unset it or give "
                              f"--script-name") from None


def resolve_settings(args):
    """Defaults, then PORT and WEB_CONCURRENCY, then the config file, then
    the command line (gunicorn's spellings first, so ursa's own win)."""
    settings = Settings()
    apply_paas_environment(settings, os.environ)
    if args.config:
        load_config_file(args.config, settings)
    for alias in GUNICORN_NAMES:
        if hasattr(args, gunicorn_dest(alias)):
            flag, value = getattr(args, gunicorn_dest(alias))
            settings.set(alias.target, alias.value_for_target(value), flag)
    for setting in settings_table():
        if hasattr(args, setting.name):
            settings.set(setting.name, getattr(args, setting.name), setting.flags[-1])
    if args.app:
        settings.wsgi_app = args.app
    if settings.reload and settings.preload:
        raise ConfigError("--reload and --preload do not mix: with --preload the master holds the "
                          "code, so it cannot be reloaded; drop one of them")
    return settings


def prepare_process(settings):
    """Process-wide setup the master does before binding: working
    directory, environment (-e), import path (--pythonpath), privilege
    checks, access log format. (The master opens the log files, and keeps
    them: see logs.py.)"""
    if settings.chdir is not None:
        try:
            os.chdir(settings.chdir)
        except OSError as exc:
            raise ConfigError(f"--chdir {settings.chdir}: {exc.strerror}") from None
    # The console script's sys.path starts with its bin directory, not the
    # working directory where the user's module is.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    extend_python_path(settings.pythonpath)
    apply_environment(settings.raw_env)

    check_can_switch(*settings.uid_gid())

    from .accesslog import FormatError, compile_format

    try:
        compile_format(settings.access_log_format)
    except FormatError as exc:
        raise ConfigError(str(exc)) from None


def setup_logging(settings):
    from .logs import setup_server_logging

    try:
        setup_server_logging(settings)
    except OSError as exc:
        raise ConfigError(f"cannot open error log {settings.error_log}: {exc.strerror}; choose a "
                          f"writable --error-log path") from None
    for warning in settings.warnings:
        log.warning("%s", warning)


def run_command(argv):
    start_directory = os.getcwd()  # before --chdir: where a new master (SIGUSR2) starts
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        args.config = os.path.abspath(args.config)  # a reload after --chdir still finds it
    if args.check_config:
        return check_config(args)
    settings = resolve_settings(args)
    if args.print_config:
        sys.stdout.write(describe_settings(settings))
        return 0
    if settings.wsgi_app is None:
        parser.error("which app? give MODULE:APP (e.g. myproject.wsgi:application) or set "
                     "wsgi_app in the config file")
    if settings.umask is not None:
        os.umask(settings.umask)  # before the first file ursa makes: the error log
    setup_logging(settings)
    prepare_process(settings)

    from .arbiter import Arbiter

    app = load_wsgi_app(settings.wsgi_app) if settings.preload else None
    return Arbiter(settings, app=app, reload_settings=lambda: resolve_settings(args),
                   start_directory=start_directory).run()


def check_config(args):
    """--check-config: everything a start does short of binding and
    forking (the settings, the logs, the process setup, the app's import).
    Returns 0, or EXIT_CHECK_FAILED after one line saying why."""
    try:
        settings = resolve_settings(args)
        if settings.wsgi_app is None:
            raise ConfigError("which app? give MODULE:APP (e.g. myproject.wsgi:application) or set wsgi_app "
                              "in the config file")
        setup_logging(settings)
        prepare_process(settings)
        load_wsgi_app(settings.wsgi_app)
    except ConfigError as exc:
        sys.stderr.write(f"ursa: error: {exc}\n")
        return EXIT_CHECK_FAILED
    app = settings.wsgi_app if isinstance(settings.wsgi_app, str) else repr(settings.wsgi_app)
    sys.stdout.write(f"ursa: the config and the app {app} load\n")
    return 0


def describe_settings(settings):
    """--print-config: `name = value` per setting, in a config file's
    spelling (paths and addresses as written, hooks by name)."""
    lines = [f"wsgi_app = {settings.wsgi_app!r}"]
    for setting in settings_table():
        lines.append(f"{setting.name} = {_printable(settings, setting.name)!r}")
    for name, hook in sorted(settings.hooks.items()):
        lines.append(f"{name} = {getattr(hook, '__qualname__', repr(hook))}")
    return "\n".join(lines) + "\n"


def _printable(settings, name):
    value = getattr(settings, name)
    if name == "bind":
        return [str(address) for address in settings.binds]
    if name == "user" and value is not None:
        return value[0]
    if name == "umask" and value is not None:
        return f"{value:03o}"
    if name == "raw_env":
        return [f"{key}={text}" for key, text in value]
    return value


def main(argv=None):
    """Entry point of `ursa` and `python -m ursa`; returns the exit status."""
    try:
        return run_command(argv)
    except ConfigError as exc:
        sys.stderr.write(f"ursa: error: {exc}\n")
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        return 130
