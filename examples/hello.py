"""The smallest ursa deployment: `make serve`, then curl http://127.0.0.1:8000/"""
import sys

import ursa


def app(environ, start_response):
    body = b"Hello, World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    print(f"ursa {ursa.__version__} serving examples/hello.py on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        ursa.run(app, host, port)
    except KeyboardInterrupt:
        pass
