"""An app made by a factory, as Flask's create_app() pattern."""


def create_app(greeting="hi", punctuation="!"):
    body = f"{greeting}{punctuation}".encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return app


not_an_app = 42
