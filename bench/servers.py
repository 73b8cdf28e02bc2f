"""The benchmarked WSGI servers: how each one serves, and the script that starts one.

As a script (what the harness runs, pinned to a core by taskset):

    python bench/servers.py SERVER APP

listens on 127.0.0.1, prints "port N" on stdout and serves APP (a name from
apps.APP_NAMES) until SIGINT; bench/asgi_servers.py is the same script for
the ASGI servers and apps (asgi_apps.py). Servers that bind through their
own listen() announce the port they were given on port 0; the others
(granian, nginx) are handed a port found free just before. Either way the
harness then waits until the port accepts connections
(serverprocess.ServerProcess), so a server is only measured once it listens.

Each server runs as it would in production with one process (SERVERS says
how); where a server keeps a master beside its worker, both are measured.

The script imports as little as it can: whatever it imports sits in every
server's memory, which the benchmark measures. What only the harness needs is
imported where it is used, or lives in serverprocess.py.
"""
import os
import socket
import sys

import apps  # beside this file: on sys.path both as a script and in the harness

HOST = "127.0.0.1"
PORT_LINE_PREFIX = "port "
# A directory the harness makes for each server run (nginx's config and logs).
SERVER_DIR_ENV = "URSA_BENCH_SERVER_DIR"
NGINX = "/usr/sbin/nginx"

# meinheld closes the connection after every response unless it is given a
# keep-alive timeout; gunicorn's meinheld worker sets it the same way.
MEINHELD_KEEPALIVE_SECONDS = 10


def announce_port(port):
    print(f"{PORT_LINE_PREFIX}{port}", flush=True)
    # Nobody reads stdout after the port line: whatever the server prints
    # later goes to stderr (a file), where it cannot fill a pipe and block.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def free_port():
    """A port nothing listens on now, for servers that cannot bind port 0 themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def listening_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(1024)
    return sock


def serve_with_ursa(app_name, load_app, **options):
    import ursa

    sock = ursa.listen(load_app(app_name), HOST, 0, **options)
    announce_port(sock.getsockname()[1])
    ursa.run()


def _serve_with_bjoern(app_name, load_app):
    import bjoern

    sock = bjoern.listen(load_app(app_name), HOST, 0)
    announce_port(sock.getsockname()[1])
    bjoern.run()


def _serve_with_meinheld(app_name, load_app):
    from meinheld import server

    sock = listening_socket()  # kept referenced: meinheld takes only its descriptor
    server.set_listen_socket(sock.fileno())
    server.set_keepalive(MEINHELD_KEEPALIVE_SECONDS)
    app = load_app(app_name)
    announce_port(sock.getsockname()[1])
    server.run(app)


def serve_with_granian(app_name, load_app, interface="wsgi"):
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    # Granian's worker binds the socket itself, so the port is picked here.
    # Its worker is forked and calls the loader, which builds the app there.
    port = free_port()
    # One worker with one runtime thread (granian's default, said outright): one core's worth.
    server = Granian("bench", address=HOST, port=port, interface=Interfaces(interface), workers=1,
                     runtime_threads=1, log_level=LogLevels.warning)
    announce_port(port)
    server.serve(target_loader=lambda _target: load_app(app_name))


def _serve_with_gunicorn(app_name, load_app):
    from gunicorn.app.base import BaseApplication

    # gunicorn's master binds before forking the worker; handing it a socket
    # we bound on port 0 (bind "fd://N") lets us learn the port without races.
    sock = listening_socket()
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    app = load_app(app_name)

    class OneWorker(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", [f"fd://{sock.fileno()}"])
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            # Announced by the worker once it is ready, so the harness sees
            # (and measures) both processes from the start.
            self.cfg.set("post_worker_init", lambda worker: announce_port(port))

        def load(self):
            return app

    OneWorker().run()


def _serve_with_waitress(app_name, load_app):
    import waitress

    # waitress drops X-Forwarded-* headers from clients it does not trust as
    # proxies; the other servers pass every header on, and so it does here.
    server = waitress.create_server(load_app(app_name), host=HOST, port=0,
                                    clear_untrusted_proxy_headers=False)
    announce_port(server.effective_port)
    server.run()


# nginx answers with a static copy of what the WSGI app sends: text in the
# config, or a file it sends as it would any static file (sendfile).
NGINX_TEXT_ANSWERS = {
    "hello": ("text/plain", apps.HELLO_BODY),
    "json": ("application/json", apps.JSON_BODY),
}
NGINX_FILE_ANSWERS = ("large", "file")
NGINX_APPS = (*NGINX_TEXT_ANSWERS, *NGINX_FILE_ANSWERS)
NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    # The WSGI servers never end a keep-alive connection after N requests.
    keepalive_requests 1000000;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    server {{
        listen {host}:{port};
        location / {{
            {answer}
        }}
    }}
}}
"""


def _nginx_answer(app_name, directory):
    """The directives with which nginx answers like the WSGI app ``app_name``."""
    if app_name in NGINX_TEXT_ANSWERS:
        content_type, body = NGINX_TEXT_ANSWERS[app_name]
        text = body.decode()
        # Single-quoted, and nginx would expand a "$" in the text.
        if "'" in text or "$" in text or "\\" in text:
            raise ValueError(f"cannot quote {text!r} for nginx's return")
        return f"default_type {content_type}; return 200 '{text}';"
    if app_name == "large":
        path = os.path.join(directory, "large.bin")
        with open(path, "wb") as output:
            output.write(apps.LARGE_BODY)
    else:
        path = os.environ[apps.FILE_PATH_ENV]
    return (f"default_type application/octet-stream; root {os.path.dirname(path)}; "
            f"try_files /{os.path.basename(path)} =404;")


def _serve_with_nginx(app_name, _load_app):
    directory = os.environ[SERVER_DIR_ENV]
    config_path = os.path.join(directory, "nginx.conf")
    port = free_port()
    with open(config_path, "w") as config:
        config.write(NGINX_CONFIG.format(directory=directory, host=HOST, port=port,
                                         answer=_nginx_answer(app_name, directory)))
    announce_port(port)
    # exec: the process the harness started (and measures) is nginx itself.
    os.execv(NGINX, [NGINX, "-p", directory, "-c", config_path])


class Server:
    """One benchmarked server: how the child serves, and what the harness may ask of it."""

    def __init__(self, name, serve, how, package, apps=None, single_process=True,
                 holds_idle_connections=True, required=False, requires=()):
        self.name = name
        self.serve = serve  # runs in the child: serve(app_name, load_app), load_app(app_name) -> app
        self.how = how  # how it runs, for the report
        self.package = package  # its Python distribution, imported by that name; None: not Python
        self.requires = tuple(requires)  # more distributions it is run with (uvicorn's uvloop), imported likewise
        self.apps = apps  # the app names it can serve; None: all
        self.single_process = single_process  # callgrind_control reaches it (no forked worker)
        self.holds_idle_connections = holds_idle_connections  # can keep 10,000 idle connections open
        self.required = required

    def serves(self, app_name):
        return self.apps is None or app_name in self.apps

    def unavailable_reason(self, environment, python=None):
        """None if the servers' Python (or the machine) can run this server, else why not.

        The import also writes the server's bytecode cache before any measurement."""
        import subprocess  # harness only, as below

        if self.package is None:
            return None if os.access(NGINX, os.X_OK) else f"{NGINX} not found (apt-get install nginx)"
        python = python or sys.executable
        modules = ", ".join((self.package, *self.requires))
        probe = subprocess.run([python, "-c", f"import {modules}"],
                               capture_output=True, text=True, timeout=60, env=environment)
        if probe.returncode == 0:
            return None
        last_line = (probe.stderr.strip().splitlines() or ["(no error output)"])[-1]
        return f"cannot import {modules} with {python}: {last_line}"

    def version(self, environment=None, python=None):
        """The version of the server's distribution (and of those it runs with), in the servers' Python."""
        import json
        import re
        import subprocess

        if self.package is None:
            completed = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
            match = re.search(r"nginx/(\S+)", completed.stderr)
            return match.group(1) if match else "unknown"
        probe = ("import importlib.metadata as m, json, sys\n"
                 "def version(name):\n"
                 "    try: return m.version(name)\n"
                 "    except m.PackageNotFoundError: pass\n"
                 "    try: return __import__(name).__version__\n"  # ursa from src/, not installed
                 "    except Exception: return 'unknown'\n"
                 "print(json.dumps([version(name) for name in sys.argv[1:]]))")
        completed = subprocess.run([python or sys.executable, "-c", probe, self.package, *self.requires],
                                   capture_output=True, text=True, timeout=60, env=environment)
        versions = json.loads(completed.stdout) if completed.returncode == 0 else ["unknown"] * (1 + len(self.requires))
        with_requires = ", ".join(f"{package} {version}" for package, version in zip(self.requires, versions[1:]))
        return f"{versions[0]} ({with_requires})" if with_requires else versions[0]


SERVERS = {server.name: server for server in (
    Server("ursa", serve_with_ursa, "ursa.listen() + ursa.run()", "ursa", required=True),
    Server("bjoern", _serve_with_bjoern, "bjoern.listen() + bjoern.run()", "bjoern", required=True),
    Server("meinheld", _serve_with_meinheld, f"meinheld.server.run(), keep-alive {MEINHELD_KEEPALIVE_SECONDS} s",
           "meinheld", holds_idle_connections=False),  # picoev's default limit is 4096 descriptors
    Server("granian", serve_with_granian, "Granian(interface='wsgi', workers=1): main + worker process",
           "granian", single_process=False,
           holds_idle_connections=False),  # its backpressure (1024) bounds the connections it serves
    Server("gunicorn", _serve_with_gunicorn, "1 sync worker: master + worker process", "gunicorn",
           single_process=False, holds_idle_connections=False),  # a sync worker holds one connection
    Server("waitress", _serve_with_waitress, "waitress.create_server(), its default 4 threads, proxy headers kept",
           "waitress", holds_idle_connections=False),  # connection_limit 100 by default
    Server("nginx", _serve_with_nginx, "nginx, master_process off: static answers, the ceiling", None,
           apps=NGINX_APPS, holds_idle_connections=False),  # worker_connections 1024
)}


def child_main(servers, app_module, argv):
    """The script's body: serve app ``argv[1]`` of ``app_module`` with server ``argv[0]`` of ``servers``."""
    if len(argv) != 2 or argv[0] not in servers or argv[1] not in app_module.APP_NAMES:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} {{{','.join(servers)}}} "
                 f"{{{','.join(app_module.APP_NAMES)}}}")
    server, app_name = argv
    # The harness stops a server with SIGINT; a harness started in the background by a shell
    # without job control hands its children SIGINT ignored, which Python would keep.
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not servers[server].serves(app_name):
        sys.exit(f"{server} cannot serve the {app_name} app")
    try:
        servers[server].serve(app_name, app_module.load_app)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    child_main(SERVERS, apps, sys.argv[1:])
