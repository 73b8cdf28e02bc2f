"""Starts one ursa server for the robustness tests, serving hostile_apps.app.

    python tests/robustness/hostile_server.py [--backlog N] [--access-log] [--option NAME=JSON ...]

Binds 127.0.0.1 on an ephemeral port, prints the line tests/support/servers.py
waits for,  LISTENING {"pid": ..., "addresses": [...]},  then serves until
SIGTERM. The soft limit on open files is raised to the hard limit first, so
that a test can hold thousands of connections.
"""
import argparse
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def raise_open_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--access-log", action="store_true", help="log each response with hostile_apps.access_log")
    arguments = parser.parse_args()
    options = {}
    for pair in arguments.option:
        name, _, value = pair.partition("=")
        options[name] = json.loads(value)

    raise_open_file_limit()
    import ursa
    import hostile_apps

    if arguments.access_log:
        options["access_log"] = hostile_apps.access_log

    sock = ursa.bind_and_listen("127.0.0.1", 0, listen_backlog=arguments.backlog)
    host, port = sock.getsockname()[:2]
    print("LISTENING " + json.dumps({"pid": os.getpid(),
                                     "addresses": [{"family": "inet", "host": host, "port": port}]}), flush=True)
    ursa.server_run(sock, hostile_apps.app, **options)
    print("SERVE RETURNED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
