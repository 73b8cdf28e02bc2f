"""Kills its own process at import while the file named by
$CRASHAPP_MARKER exists: a worker that dies right after it starts."""
import os
import signal

if os.path.exists(os.environ["CRASHAPP_MARKER"]):
    os.kill(os.getpid(), signal.SIGKILL)


def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"alive"]
