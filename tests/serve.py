"""Starts an ursa server for the end-to-end tests (one process per server).

    python tests/serve.py --app routing_app --mode listen-run --host 127.0.0.1 --port 0 \
        [--factory] [--option NAME=JSON ...] [--reuse-port] [--usr1-file PATH] [--warnings-error]

Writes one line to stdout once its socket listens (for the modes that bind
before serving):  LISTENING {"pid": ..., "addresses": [...]}
and one line when serving ends:  SERVE RETURNED  (exit 0), or
KEYBOARD INTERRUPT  (exit 130) when run() raised KeyboardInterrupt.

Modes:
  run               ursa.run(app, host, port)      (binds inside run; prints no address)
  listen-run        ursa.listen(app, host, port); ursa.run()
  bjoern            import ursa as bjoern; bjoern.listen(...); bjoern.run()
  server-run-socket ursa.server_run(socket, app)   (the socket made here)
  server-run-fd     ursa.server_run(fd, app)       (an int file descriptor)
  serve-many        ursa.serve([socket, socket], app)   (two sockets)
"""
import argparse
import importlib
import json
import os
import signal
import socket
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", required=True,
                        help="name of an app in apps.py, or module:name (with --factory: of a function "
                             "returning one)")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--mode", default="listen-run",
                        choices=["run", "listen-run", "bjoern", "server-run-socket", "server-run-fd", "serve-many"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=JSON",
                        help="a server option, its value as JSON (repeatable)")
    parser.add_argument("--usr1-file", help="install a SIGUSR1 handler that writes this file")
    parser.add_argument("--warnings-error", action="store_true", help="turn every warning into an exception")
    return parser.parse_args()


def parse_options(pairs):
    options = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        options[name] = json.loads(value)
    return options


def announce(**fields):
    fields["pid"] = os.getpid()
    print("LISTENING " + json.dumps(fields), flush=True)


def address_of(sock):
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return {"family": "unix", "path": name if isinstance(name, str) else name.decode("latin-1")}
    return {"family": "inet6" if sock.family == socket.AF_INET6 else "inet", "host": name[0], "port": name[1]}


def serve(arguments, app, options):
    import ursa

    host, port = arguments.host, arguments.port
    if arguments.mode == "run":
        print(f"STARTING {json.dumps({'pid': os.getpid()})}", flush=True)
        ursa.run(app, host, port, reuse_port=arguments.reuse_port, **options)
    elif arguments.mode == "listen-run":
        sock = ursa.listen(app, host, port, reuse_port=arguments.reuse_port, **options)
        announce(addresses=[address_of(sock)])
        ursa.run()
    elif arguments.mode == "bjoern":
        import ursa as bjoern

        sock = bjoern.listen(app, host, port, **options)
        announce(addresses=[address_of(sock)])
        bjoern.run()
    elif arguments.mode in ("server-run-socket", "server-run-fd"):
        sock = ursa.bind_and_listen(host, port, arguments.reuse_port)
        announce(addresses=[address_of(sock)])
        ursa.server_run(sock if arguments.mode == "server-run-socket" else sock.fileno(), app, **options)
    elif arguments.mode == "serve-many":
        socks = [ursa.bind_and_listen(host, 0) for _ in range(2)]
        announce(addresses=[address_of(sock) for sock in socks])
        ursa.serve(socks, app, **options)


def main():
    arguments = parse_arguments()
    # A program started in the background by a non-interactive shell (a CI
    # runner's `cmd &`) inherits SIGINT ignored, and ursa rightly leaves an
    # ignored SIGINT alone; the tests are of a program run in a terminal,
    # where SIGINT is Python's default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if arguments.warnings_error:
        warnings.simplefilter("error")
    if arguments.usr1_file:
        usr1_file = arguments.usr1_file

        def on_usr1(signum, frame):
            with open(usr1_file, "w") as f:
                f.write(f"SIGUSR1 handled by pid {os.getpid()}\n")
        signal.signal(signal.SIGUSR1, on_usr1)
    module, _, name = arguments.app.rpartition(":")
    app = getattr(importlib.import_module(module or "apps"), name)
    if arguments.factory:
        app = app()
    try:
        serve(arguments, app, parse_options(arguments.option))
    except KeyboardInterrupt:
        print("KEYBOARD INTERRUPT", flush=True)
        return 130
    print("SERVE RETURNED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
