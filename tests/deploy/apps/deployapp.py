"""The app most deployment tests serve. Routes:

  /               b"hello"
  /pid            the worker's pid
  /version        contents of $DEPLOYAPP_VERSION_FILE read at import (reload tests)
  /echo           the request body (POST)
  /slow?SECONDS   sleeps, then b"slow done"; first creates a file in
                  $DEPLOYAPP_MARKER_DIR (if set) so tests know it is in flight
  /stream?N       N chunks "chunk i\n", no Content-Length (chunked on HTTP/1.1)
  /environ        selected environ entries as JSON
  /header         sets X-Test: yes, body b"header"
  /raise          raises ValueError("deployapp failure") (a 500 and a logged traceback)
  /listen-env     LISTEN_PID, LISTEN_FDS of os.environ as JSON (systemd tests)
  /spin           never answers: loops forever in Python (--timeout tests)
  /block          never answers: sleeps an hour in one C call (--timeout tests)
  /getenv?NAME    os.environ[NAME] of the worker, or b"unset" (-e/--env tests)
  /wsgi-errors?T  writes "T" and a newline to environ["wsgi.errors"]
  /print?T        print()s "stdout T" and writes "stderr T" to sys.stderr (--capture-output)

With $DEPLOYAPP_IMPORT_TOKENS set (a folder), each import of this module
waits until it can take (delete) one file of that folder: an app that
loads as slowly as a test wants (reload tests).
"""
import json
import os
import sys
import time

IMPORT_TOKENS = os.environ.get("DEPLOYAPP_IMPORT_TOKENS")


def take_an_import_token(folder):
    while True:
        for name in sorted(os.listdir(folder)):
            try:
                os.unlink(os.path.join(folder, name))
                return
            except FileNotFoundError:  # another worker took it first
                pass
        time.sleep(0.02)


if IMPORT_TOKENS:
    take_an_import_token(IMPORT_TOKENS)

VERSION_FILE = os.environ.get("DEPLOYAPP_VERSION_FILE")
MARKER_DIR = os.environ.get("DEPLOYAPP_MARKER_DIR")
VERSION = open(VERSION_FILE).read().strip() if VERSION_FILE else "none"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/pid":
        return respond(start_response, str(os.getpid()).encode())
    if path == "/version":
        return respond(start_response, VERSION.encode())
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return respond(start_response, environ["wsgi.input"].read(length))
    if path == "/slow":
        if MARKER_DIR:
            open(os.path.join(MARKER_DIR, f"slow-{os.getpid()}-{time.monotonic_ns()}"), "w").close()
        time.sleep(float(query or 1))
        return respond(start_response, b"slow done")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {i}\n".encode() for i in range(int(query or 5)))
    if path == "/environ":
        keys = ["wsgi.multiprocess", "wsgi.url_scheme", "REMOTE_ADDR", "REMOTE_PORT", "SERVER_PROTOCOL",
                "HTTP_CONNECTION", "HTTP_HOST", "ursa.peer"]
        return respond(start_response, json.dumps({k: environ.get(k) for k in keys}).encode(),
                       "application/json")
    if path == "/raise":
        raise ValueError("deployapp failure")
    if path == "/listen-env":
        body = json.dumps([os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")]).encode()
        return respond(start_response, body, "application/json")
    if path == "/spin":
        spin_forever()
    if path == "/block":
        block_forever()
    if path == "/getenv":
        return respond(start_response, os.environ.get(query, "unset").encode())
    if path == "/wsgi-errors":
        environ["wsgi.errors"].write(query + "\n")
        return respond(start_response, b"written")
    if path == "/print":
        print("stdout", query)
        sys.stderr.write(f"stderr {query}\n")
        return respond(start_response, b"printed")
    if path == "/header":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6"), ("X-Test", "yes")])
        return [b"header"]
    return respond(start_response, b"hello")


def spin_forever():
    count = 0
    while True:
        count += 1


def block_forever():
    time.sleep(3600)


def respond(start_response, body, content_type="text/plain"):
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


application = app
