/* Module state: the types and the interned strings every request uses.
 * One instance per module object; everything else hangs off a server. It
 * sits below every layer (they all read it); module.c, above them all,
 * makes and fills it. */
#ifndef URSA_STATE_H
#define URSA_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/compat.h"

struct server;

#define URSA_METHOD_NAMES 64    /* llhttp's method numbers stay below this */
#define URSA_COMMON_HEADERS 24  /* see wsgi/environ.c */

/* Interned str constants: X(field, text). */
#define URSA_INTERNED_STRINGS(X)                         \
    X(REQUEST_METHOD, "REQUEST_METHOD")                  \
    X(SCRIPT_NAME, "SCRIPT_NAME")                        \
    X(PATH_INFO, "PATH_INFO")                            \
    X(QUERY_STRING, "QUERY_STRING")                      \
    X(CONTENT_TYPE, "CONTENT_TYPE")                      \
    X(CONTENT_LENGTH, "CONTENT_LENGTH")                  \
    X(SERVER_NAME, "SERVER_NAME")                        \
    X(SERVER_PORT, "SERVER_PORT")                        \
    X(SERVER_PROTOCOL, "SERVER_PROTOCOL")                \
    X(REMOTE_ADDR, "REMOTE_ADDR")                        \
    X(REMOTE_PORT, "REMOTE_PORT")                        \
    X(RAW_URI, "RAW_URI")                                \
    X(REQUEST_URI, "REQUEST_URI")                        \
    X(wsgi_version, "wsgi.version")                      \
    X(wsgi_url_scheme, "wsgi.url_scheme")                \
    X(wsgi_input, "wsgi.input")                          \
    X(wsgi_errors, "wsgi.errors")                        \
    X(wsgi_multithread, "wsgi.multithread")              \
    X(wsgi_multiprocess, "wsgi.multiprocess")            \
    X(wsgi_run_once, "wsgi.run_once")                    \
    X(wsgi_file_wrapper, "wsgi.file_wrapper")            \
    X(wsgi_input_terminated, "wsgi.input_terminated")    \
    X(HTTP_1_0, "HTTP/1.0")                              \
    X(HTTP_1_1, "HTTP/1.1")                              \
    X(empty, "")                                         \
    X(http, "http")                                      \
    X(https, "https")                                    \
    X(ursa_peer, "ursa.peer")                            \
    X(close, "close")                                    \
    X(tell, "tell")                                      \
    X(fileno, "fileno")                                  \
    X(read, "read")                                      \
    X(write, "write")                                    \
    X(error, "error")                                    \
    X(exc_info, "exc_info")                              \
    X(_cancelled, "_cancelled")                          \
    X(context, "context")                                \
    X(_run, "_run")

/* The asyncio event loop's types (asgi/register.c makes them) and what it
 * imports on first use. */
typedef struct event_loop_types {
    PyTypeObject *core;      /* EventLoopCore, the C base of ursa.eventloop.EventLoop */
    PyTypeObject *selector;  /* EventLoopSelector */
    PyTypeObject *handle;    /* Handle */
    PyTypeObject *timer;     /* TimerHandle */
    PyTypeObject *libev;     /* LibevLoop */
    PyTypeObject *probe;     /* _LoopProbe, for tests */
    PyObject *loop_class;    /* ursa.eventloop.EventLoop */
    PyObject *selector_key;  /* selectors.SelectorKey */
} event_loop_types;

typedef struct module_state {
    PyTypeObject *start_response_type;
    PyTypeObject *write_type;
    PyTypeObject *input_type;
    PyTypeObject *file_wrapper_type;
    PyObject *empty_input;  /* the shared wsgi.input of bodiless requests */
    PyObject *wsgi_version; /* (1, 0) */
    PyObject *error_logger; /* logging.getLogger("ursa.error"), made on first use */
    PyObject *method_names[URSA_METHOD_NAMES];    /* llhttp method number -> str */
    PyObject *header_keys[URSA_COMMON_HEADERS];   /* environ keys of common headers */
    struct server *running; /* the server inside serve(), for stop(): only a pointer */
    event_loop_types event_loop;
#define URSA_DECLARE_STR(field, text) PyObject *str_##field;
    URSA_INTERNED_STRINGS(URSA_DECLARE_STR)
#undef URSA_DECLARE_STR
} module_state;

/* tp_new of the types only the server makes (StartResponse, Write, Input). */
PyObject *refuse_instantiation(PyTypeObject *type, PyObject *args, PyObject *kwargs);

/* Log the current exception (which is cleared) or, without one, just the
 * message, through logging.getLogger("ursa.error"). Never fails. */
void log_error(module_state *state, const char *message);

#endif
