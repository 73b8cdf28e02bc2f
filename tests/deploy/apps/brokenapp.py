"""Fails while being imported, as an app with a bug at module level does."""
SETTINGS = {"debug": True}
TIMEOUT = SETTINGS["timeout"]


def app(environ, start_response):  # never reached
    start_response("200 OK", [])
    return [b""]
