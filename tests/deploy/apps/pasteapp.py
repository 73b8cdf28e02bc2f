"""A PasteDeploy app factory: answers with its greeting and where it is mounted."""


def make_app(global_conf, greeting="hello", **local_conf):
    def app(environ, start_response):
        body = f"{greeting} at {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return app
