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
    X(type, "type")                                      \
    X(asgi, "asgi")                                      \
    X(version, "version")                                \
    X(spec_version, "spec_version")                      \
    X(http_version, "http_version")                      \
    X(method, "method")                                  \
    X(scheme, "scheme")                                  \
    X(path, "path")                                      \
    X(raw_path, "raw_path")                              \
    X(query_string, "query_string")                      \
    X(root_path, "root_path")                            \
    X(headers, "headers")                                \
    X(client, "client")                                  \
    X(server, "server")                                  \
    X(state, "state")                                    \
    X(extensions, "extensions")                          \
    X(status, "status")                                  \
    X(body, "body")                                      \
    X(more_body, "more_body")                            \
    X(trailers, "trailers")                              \
    X(http_request, "http.request")                      \
    X(http_disconnect, "http.disconnect")                \
    X(http_response_start, "http.response.start")        \
    X(http_response_body, "http.response.body")          \
    X(http_response_pathsend, "http.response.pathsend")  \
    X(v1_0, "1.0")                                       \
    X(v1_1, "1.1")                                       \
    X(done, "done")                                      \
    X(set_result, "set_result")                          \
    X(create_future, "create_future")                    \
    X(add_done_callback, "add_done_callback")            \
    X(cancel, "cancel")                                  \
    X(_cancelled, "_cancelled")                          \
    X(context, "context")                                \
    X(_run, "_run")                                      \
    X(websocket, "websocket")                            \
    X(ws, "ws")                                          \
    X(wss, "wss")                                        \
    X(subprotocols, "subprotocols")                      \
    X(subprotocol, "subprotocol")                        \
    X(bytes, "bytes")                                    \
    X(text, "text")                                      \
    X(code, "code")                                      \
    X(reason, "reason")                                  \
    X(websocket_connect, "websocket.connect")            \
    X(websocket_accept, "websocket.accept")              \
    X(websocket_receive, "websocket.receive")            \
    X(websocket_send, "websocket.send")                  \
    X(websocket_close, "websocket.close")                \
    X(websocket_disconnect, "websocket.disconnect")      \
    X(websocket_http_response, "websocket.http.response") \
    X(websocket_http_response_start, "websocket.http.response.start") \
    X(websocket_http_response_body, "websocket.http.response.body") \
    X(throw, "throw")                                    \
    X(result, "result")                                  \
    X(get_loop, "get_loop")                              \
    X(call_soon, "call_soon")                            \
    X(msg, "msg")                                        \
    X(_asyncio_future_blocking, "_asyncio_future_blocking") \
    X(_log_traceback, "_log_traceback")                  \
    X(_state, "_state")

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

/* What the ASGI request task (asgi/task.c) takes from asyncio, on the
 * first ASGI serve(). */
typedef struct request_task_kit {
    PyTypeObject *type;            /* RequestTask, a subclass of asyncio.Future */
    PyTypeObject *future_type;     /* asyncio.Future */
    PyObject *future_set_result;   /* asyncio.Future's own methods, unbound */
    PyObject *future_set_exception;
    PyObject *future_cancel;
    PyObject *swap_current_task;   /* 3.12+; enter_task and leave_task before */
    PyObject *enter_task;
    PyObject *leave_task;
    PyObject *register_task;       /* into all_tasks() */
    PyObject *eager_tasks;         /* 3.12+: the set all_tasks() reads tasks in their first step from */
    PyObject *cancelled_error;
    PyObject *iscoroutine;         /* asyncio.iscoroutine */
    PyObject *base_tasks;          /* asyncio.base_tasks: get_stack() and print_stack() */
    PyObject *context_keyword;     /* ("context",) */
    PyObject *msg_keyword;         /* ("msg",) */
    PyObject *default_name;
} request_task_kit;

typedef struct module_state {
    PyTypeObject *start_response_type;
    PyTypeObject *write_type;
    PyTypeObject *input_type;
    PyTypeObject *file_wrapper_type;
    PyTypeObject *asgi_send_type;    /* asgi/channel.c */
    PyTypeObject *asgi_receive_type;
    PyTypeObject *ready_type;        /* asgi/ready.c */
    PyObject *ready_none;            /* an awaitable that is done, with None */
    PyObject *client_disconnected;   /* ursa.ClientDisconnected, an OSError */
    PyObject *empty_input;  /* the shared wsgi.input of bodiless requests */
    PyObject *wsgi_version; /* (1, 0) */
    PyObject *error_logger; /* logging.getLogger("ursa.error"), made on first use */
    PyObject *method_names[URSA_METHOD_NAMES];    /* llhttp method number -> str */
    PyObject *header_keys[URSA_COMMON_HEADERS];   /* environ keys of common headers */
    struct server *running; /* the server inside serve(), for stop(): only a pointer */
    event_loop_types event_loop;
    request_task_kit task_kit;
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
