"""The benchmarked ASGI servers, and the script that starts one.

    python bench/asgi_servers.py SERVER APP

does for the ASGI servers and apps (asgi_apps.APP_NAMES) what servers.py does
for the WSGI ones: listens on 127.0.0.1, prints "port N" and serves APP until
SIGINT, one worker in one process (granian keeps a main process beside it).
Where a server serves both families its ASGI entry has its own name
(ursa-asgi, granian-asgi), so one run's tables and chart tell them apart.
Every server runs the apps' lifespan (see asgi_apps.py) and writes no access
log; the rest is each server's defaults.
"""
import functools
import sys

import asgi_apps  # beside this file: on sys.path both as a script and in the harness
from servers import Server, announce_port, child_main, listening_socket, serve_with_granian, serve_with_ursa


def serve_with_uvicorn(app_name, load_app, **extra_config):
    import uvicorn

    # What `uvicorn --workers 1 --loop uvloop --http httptools --no-access-log`
    # runs: one Server in this process (more workers would fork), here on a
    # socket bound on port 0 so the port is known without races.
    sock = listening_socket()
    config = uvicorn.Config(load_app(app_name), loop="uvloop", http="httptools", lifespan="on", workers=1,
                            access_log=False, log_level="warning", **extra_config)
    announce_port(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])


def serve_with_hypercorn(app_name, load_app):
    import uvloop
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    # What hypercorn's uvloop worker runs (`hypercorn -k uvloop`), in this
    # process: `--workers 1` would spawn it as a child of a supervisor.
    sock = listening_socket()
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    app = load_app(app_name)
    announce_port(sock.getsockname()[1])
    uvloop.run(serve(app, config))


SERVERS = {server.name: server for server in (
    Server("ursa-asgi", functools.partial(serve_with_ursa, interface="asgi"),
           "ursa.listen(interface='asgi') + ursa.run(): asyncio on ursa.eventloop", "ursa", required=True),
    Server("uvicorn", serve_with_uvicorn, "uvicorn.Server(loop='uvloop', http='httptools', workers=1).run(), "
           "access log off", "uvicorn", requires=("uvloop", "httptools"), required=True,
           # Its keep-alive timeout (5 s) closes the first idle connections before it has answered 10,000.
           holds_idle_connections=False),
    Server("granian-asgi", functools.partial(serve_with_granian, interface="asgi"),
           "Granian(interface='asgi', workers=1, runtime_threads=1): main + worker process", "granian",
           single_process=False,
           holds_idle_connections=False),  # its backpressure (1024) bounds the connections it serves
    Server("hypercorn", serve_with_hypercorn, "hypercorn.asyncio.serve() under uvloop.run(): its uvloop "
           "worker, in one process", "hypercorn", requires=("uvloop",),
           # Its keep-alive timeout (5 s) closes the first idle connections before it has answered 10,000.
           holds_idle_connections=False),
)}


if __name__ == "__main__":
    child_main(SERVERS, asgi_apps, sys.argv[1:])
