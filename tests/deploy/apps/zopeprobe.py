"""A PasteDeploy filter the Zope tests put in front of Zope's pipeline:

  every response     gets X-Worker-Pid, the pid of the worker that served it
  /__hold__/NAME     writes NAME.held (holding the pid) in $ZOPEPROBE_DIR,
                     then keeps its worker busy until NAME.release appears
                     there: while it waits, the other worker serves
"""
import os
import time


def make_filter(global_conf):
    return lambda app: probe_filter(app, os.environ["ZOPEPROBE_DIR"])


def probe_filter(app, directory):
    def probe(environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith("/__hold__/"):
            name = path[len("/__hold__/"):]
            with open(os.path.join(directory, name + ".held"), "w") as held:
                held.write(str(os.getpid()))
            while not os.path.exists(os.path.join(directory, name + ".release")):
                time.sleep(0.01)
            body = str(os.getpid()).encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]

        def start_with_pid(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Worker-Pid", str(os.getpid()))], exc_info)
        return app(environ, start_with_pid)
    return probe
