"""The benchmarked ASGI servers as WebSocket servers, and the script that starts one.

    python bench/websocket_servers.py SERVER APP

does for the WebSocket apps (websocket_apps.APP_NAMES) what asgi_servers.py
does for the HTTP ones, each server started the same way as there: one
process pinned to one core (granian: its main process and one worker with
one runtime thread), lifespan on, no access log. The entries have names of
their own (ursa-ws, uvicorn-ws, ...) because a server's name is unique
across bench/families.py's families, and a run's tables then tell an ASGI
HTTP figure from a WebSocket one.

What each runs its WebSockets on: ursa its C framing over wslay; uvicorn
the `websockets` package (`--ws websockets`, said outright rather than left
to "auto"); granian its Rust implementation (on by default); hypercorn
wsproto, the only one it has. Each server's defaults otherwise (ping
intervals of 20 s and more never fire within a run; no client of the
benchmark offers permessage-deflate, so none is negotiated).
"""
import functools
import sys

import websocket_apps  # beside this file: on sys.path both as a script and in the harness
from asgi_servers import serve_with_hypercorn, serve_with_uvicorn
from servers import Server, child_main, serve_with_granian, serve_with_ursa

SERVERS = {server.name: server for server in (
    Server("ursa-ws", functools.partial(serve_with_ursa, interface="asgi"),
           "ursa.listen(interface='asgi') + ursa.run(): WebSockets framed by wslay", "ursa", required=True),
    Server("uvicorn-ws", functools.partial(serve_with_uvicorn, ws="websockets"),
           "uvicorn.Server(loop='uvloop', http='httptools', ws='websockets', workers=1).run()", "uvicorn",
           requires=("uvloop", "httptools", "websockets"), required=True),
    Server("granian-ws", functools.partial(serve_with_granian, interface="asgi"),
           "Granian(interface='asgi', workers=1, runtime_threads=1), websockets on: main + worker process",
           "granian", single_process=False),
    Server("hypercorn-ws", serve_with_hypercorn, "hypercorn.asyncio.serve() under uvloop.run(), wsproto",
           "hypercorn", requires=("uvloop", "wsproto")),
)}


if __name__ == "__main__":
    child_main(SERVERS, websocket_apps, sys.argv[1:])
