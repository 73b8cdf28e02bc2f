"""The `ursa` command: serve a WSGI or ASGI app with a master and worker processes.

    ursa [OPTIONS] MODULE:APP        (also: python -m ursa ...)

Options follow gunicorn's where users know them (-b, -w, -c, --max-requests,
--graceful-timeout, --pid ...); the limits and timeouts are those of
ursa.run() under the same names. Settings can also come from a Python
config file (-c FILE); the command line wins over the file.
"""
import argparse
import logging
import os
import sys

from .apploader import load_wsgi_app
from .config import Settings, settings_table
from .configfile import load_config_file
from .errors import EXIT_CONFIG_ERROR, ConfigError
from .privileges import check_can_switch

log = logging.getLogger("ursa.error")

EPILOG = """\
signals to the master: TERM/INT graceful stop, QUIT immediate stop, HUP reload
(re-read config, new workers), TTIN/TTOU one worker more/less, USR1 reopen logs,
USR2 upgrade (a new master on the same sockets; then TERM the old one).
examples:
  ursa -w 4 -b 0.0.0.0:8000 myproject.wsgi:application
  ursa -b unix:/run/app.sock --access-log - 'app:create_app(debug=False)'
"""


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
    groups = {section: parser.add_argument_group(title) for section, title in [
        ("listening", "listening"), ("workers", "workers"), ("app", "the app"),
        ("limits", "limits and timeouts (as in ursa.run())"), ("logging", "logging"), ("process", "process")]}
    for setting in settings_table():
        group = groups[setting.section]
        if setting.kind == "flag":
            group.add_argument(*setting.flags, dest=setting.name, action="store_true",
                               default=argparse.SUPPRESS, help=setting.help)
        else:
            group.add_argument(*setting.flags, dest=setting.name, metavar=setting.metavar,
                               action="append" if setting.kind == "list" else "store",
                               default=argparse.SUPPRESS, help=setting.help)
    return parser


def resolve_settings(args):
    """Defaults, then the config file, then the command line."""
    settings = Settings()
    if args.config:
        load_config_file(args.config, settings)
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
    directory, import path, privilege checks, access log format. (The
    master opens the log files, and keeps them: see logs.py.)"""
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

    check_can_switch(*settings.uid_gid())

    from .accesslog import FormatError, compile_format

    try:
        compile_format(settings.access_log_format)
    except FormatError as exc:
        raise ConfigError(str(exc)) from None


def setup_logging(settings):
    from .logs import setup_error_log

    try:
        setup_error_log(settings.error_log, settings.log_level)
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
    settings = resolve_settings(args)
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


def main(argv=None):
    """Entry point of `ursa` and `python -m ursa`; returns the exit status."""
    try:
        return run_command(argv)
    except ConfigError as exc:
        sys.stderr.write(f"ursa: error: {exc}\n")
        return EXIT_CONFIG_ERROR
    except KeyboardInterrupt:
        return 130
