#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/wsgi.h"

#include <string.h>

#include "transport/serve.h"
#include "wsgi/call.h"
#include "wsgi/environ.h"
#include "wsgi/filewrapper.h"
#include "wsgi/start_response.h"

/* Bytes written for one connection per event before the others get a turn:
 * a fast reader of a huge response must not starve the rest. */
#define WRITE_BUDGET (1024 * 1024)
/* Bytes of a list body gathered before the first write. */
#define COALESCE_BYTES (64 * 1024)
/* Items pulled from the iterable per event at most: an iterable of empty
 * items, or one whose bytes a HEAD response drops, must still give the
 * loop (signals, timers, other clients) its turn. */
#define PULLS_PER_EVENT 1024

/* ---- the environ ---- */

static environ_source environ_source_of(exchange *x)
{
    server *s = exchange_server(x);
    environ_source source = {
        .state = s->state,
        .template = wsgi_server_of(s)->templates[exchange_listener(x)],
        .req = exchange_request(x),
        .bytes = exchange_request_bytes(x),
        .method = exchange_method_seen(x),
        .remote_addr = exchange_remote_addr(x),
        .remote_port = exchange_remote_port(x),
        .forwarded = exchange_forwarded(x),
        .script_name = wsgi_server_of(s)->script_name,
        .script_name_length = wsgi_server_of(s)->script_name_length,
    };
    return source;
}

/* ---- the head ---- */

int wsgi_send_head(exchange *x, int64_t known_length)
{
    return exchange_send_head(x, &wsgi_call_of(x)->response, known_length);
}

int wsgi_fail(exchange *x, const char *message)
{
    wsgi_call *call = wsgi_call_of(x);
    server_report_exception(exchange_server(x), message);
    if (exchange_is_gone(x))
        return -1; /* the report stopped the server at once (a second Ctrl-C) */
    call->exhausted = 1;
    Py_CLEAR(call->iterator);
    return exchange_fail(x);
}

/* ---- the body ---- */

PyObject *wsgi_body_bytes(PyObject *item)
{
    if (PyBytes_CheckExact(item)) {
        Py_INCREF(item);
        return item;
    }
    if (!PyUnicode_Check(item) && PyObject_CheckBuffer(item))
        return PyBytes_FromObject(item);
    PyErr_Format(PyExc_TypeError, "the application's iterable yielded a %.100s; WSGI body items must be bytes",
                 Py_TYPE(item)->tp_name);
    return NULL;
}

/* Queue one piece of the body, the head first if it has not gone. */
static int send_body(exchange *x, PyObject *data)
{
    PyObject *bytes = wsgi_body_bytes(data);
    if (bytes == NULL)
        return -1;
    int result = 0;
    if (PyBytes_GET_SIZE(bytes) == 0)
        goto done;
    if (!wsgi_call_of(x)->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "the application yielded body data before calling start_response()");
        result = -1;
        goto done;
    }
    if (!x->head_sent && wsgi_send_head(x, -1) < 0) {
        result = -1;
        goto done;
    }
    result = exchange_send_body(x, bytes, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes));
done:
    Py_DECREF(bytes);
    return result;
}

/* The iterable is exhausted: finish the head and the framing. */
static int end_body(exchange *x)
{
    wsgi_call *call = wsgi_call_of(x);
    call->exhausted = 1;
    if (!call->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
        return -1;
    }
    if (!x->head_sent && wsgi_send_head(x, (int64_t)x->body_given) < 0)
        return -1;
    return exchange_end_body(x);
}

/* The next item, a new reference; NULL at the end or with an exception.
 * A list or tuple is read in place, without an iterator. */
static PyObject *next_item(exchange *x)
{
    wsgi_call *call = wsgi_call_of(x);
    if (call->iterator != NULL) {
        server *s = exchange_server(x);
        double called_at = ev_now(s->loop);
        PyObject *item = PyIter_Next(call->iterator);
        server_app_returned(s, called_at);
        return item;
    }
    if (call->next_index >= PySequence_Fast_GET_SIZE(call->result))
        return NULL;
    PyObject *item = PySequence_Fast_ITEMS(call->result)[call->next_index++];
    Py_INCREF(item);
    return item;
}

/* Pull the next item of the iterable. Returns 0, or -1: close now. */
static int pull(exchange *x)
{
    wsgi_call *call = wsgi_call_of(x);
    if (exchange_length_reached(x)) {
        /* Content-Length is complete: the rest of the iterable is never
         * asked for; on_done closes it. */
        Py_CLEAR(call->iterator);
        if (end_body(x) < 0)
            return wsgi_fail(x, "ursa: the application's response is not valid");
        return 0;
    }
    PyObject *item = next_item(x);
    if (item == NULL) {
        if (PyErr_Occurred())
            return wsgi_fail(x, "ursa: the application's iterable raised");
        if (end_body(x) < 0)
            return wsgi_fail(x, "ursa: the application's response is not valid");
        return 0;
    }
    int result = send_body(x, item);
    Py_DECREF(item);
    if (result < 0)
        return wsgi_fail(x, "ursa: the application's response is not valid");
    return 0;
}

/* Write what is queued and pull the iterable only as the socket drains. */
static conn_progress pump(exchange *x)
{
    wsgi_call *call = wsgi_call_of(x);
    size_t budget = WRITE_BUDGET;
    for (int pulls = 0;; pulls++) {
        if (pulls == PULLS_PER_EVENT)
            return CONN_BLOCKED; /* the socket is writable: back soon */
        if (PyErr_CheckSignals() < 0) {
            /* A handler raised (KeyboardInterrupt): it stops the server. */
            server_report_exception(exchange_server(x), "ursa: a signal handler raised");
            if (exchange_is_gone(x))
                return CONN_ABORT;
        }
        if (call->items_ready && !call->exhausted && exchange_memory(x) < COALESCE_BYTES) {
            /* Every item of a list is there already: gather them (up to a
             * bound) so that head and body leave in one writev. */
            if (pull(x) < 0)
                return CONN_ABORT;
            continue;
        }
        conn_progress flushed = exchange_flush(x, &budget);
        if (flushed != CONN_DONE || call->exhausted)
            return flushed;
        if (budget == 0)
            return CONN_BLOCKED; /* the socket is writable: back soon */
        if (pull(x) < 0)
            return CONN_ABORT;
    }
}

/* ---- starting ---- */

/* The length of a list or tuple of bytes, or -1: such a body can go out
 * with a Content-Length (and with its head, in one write) unchunked. */
static int64_t known_body_length(PyObject *result)
{
    if (!PyList_CheckExact(result) && !PyTuple_CheckExact(result))
        return -1;
    PyObject **items = PySequence_Fast_ITEMS(result);
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(result); i++) {
        if (!PyBytes_CheckExact(items[i]))
            return -1;
        total += PyBytes_GET_SIZE(items[i]);
    }
    return total;
}

/* A file_wrapper around a regular file goes out with sendfile(2). 1 when
 * it does, 0 when it must be iterated, -1 with an exception. */
static int start_file(exchange *x, PyObject *result)
{
    wsgi_call *call = wsgi_call_of(x);
    int fd;
    off_t offset;
    uint64_t remaining;
    int usable = file_wrapper_sendfile_source(exchange_server(x)->state, result, &fd, &offset, &remaining);
    if (usable <= 0)
        return usable;
    int64_t declared = call->response.content_length;
    if (declared >= 0 && (uint64_t)declared < remaining)
        remaining = (uint64_t)declared;
    if (wsgi_send_head(x, declared >= 0 ? -1 : (int64_t)remaining) < 0)
        return -1;
    exchange_send_file(x, fd, offset, remaining);
    call->exhausted = 1;
    if (exchange_end_body(x) < 0)
        return -1;
    return 1;
}

/* bjoern serves one bytes object returned by the app as the body, and
 * apps written for it do that: a body of one item. */
static PyObject *as_body(PyObject *result)
{
    if (!PyBytes_Check(result) && !PyByteArray_Check(result))
        return result;
    PyObject *body = PyBytes_CheckExact(result) ? (Py_INCREF(result), result) : PyBytes_FromObject(result);
    Py_DECREF(result);
    result = body ? PyTuple_Pack(1, body) : NULL;
    Py_XDECREF(body);
    return result;
}

static conn_progress fail_then_pump(exchange *x, const char *message)
{
    return wsgi_fail(x, message) < 0 ? CONN_ABORT : pump(x);
}

static conn_progress wsgi_on_request(exchange *x)
{
    wsgi_call *call = wsgi_call_of(x);
    server *s = exchange_server(x);
    module_state *state = s->state;
    call->response.content_length = -1;
    environ_source source = environ_source_of(x);
    call->environ = environ_build(&source, &x->req.body);
    if (call->environ == NULL)
        return fail_then_pump(x, "ursa: cannot build the WSGI environ");
    /* Read the clock only for the access log, which reports durations. */
    call->started_at = s->opts.access_log ? ev_time() : 0;
    call->start_response = start_response_attach(x);
    if (call->start_response == NULL)
        return fail_then_pump(x, "ursa: out of memory");

    PyObject *args[2] = {call->environ, call->start_response};
    double called_at = ev_now(s->loop);
    PyObject *result = PyObject_Vectorcall(s->app, args, 2, NULL);
    server_app_returned(s, called_at);
    if (result == NULL)
        return fail_then_pump(x, "ursa: the application raised");
    result = as_body(result);
    if (result == NULL)
        return fail_then_pump(x, "ursa: out of memory");
    call->result = result;
    /* A generator's next item may take a while (a stream of events): what
     * it yielded goes out at once. A list's items are all there now. */
    call->items_ready = PyList_CheckExact(result) || PyTuple_CheckExact(result);

    if (Py_IS_TYPE(result, state->file_wrapper_type) && call->headers_set) {
        int started = start_file(x, result);
        if (started < 0)
            return fail_then_pump(x, "ursa: cannot send the file_wrapper's file");
        if (started > 0)
            return pump(x);
    }
    if (call->headers_set && !x->head_sent) {
        int64_t length = known_body_length(result);
        if (length >= 0 && wsgi_send_head(x, length) < 0)
            return fail_then_pump(x, "ursa: cannot send the response head");
    }
    if (call->items_ready)
        return pump(x); /* read in place by next_item */
    call->iterator = PyObject_GetIter(result);
    if (call->iterator == NULL)
        return fail_then_pump(x, "ursa: the application returned a value that is not iterable");
    return pump(x);
}

static conn_progress wsgi_on_writable(exchange *x)
{
    return pump(x);
}

/* ---- the end ---- */

/* `duration` is in seconds. The hook is app code: its time is the app's. */
static void log_access(server *s, PyObject *environ, int status, uint64_t body_bytes, double duration)
{
    double called_at = ev_now(s->loop);
    PyObject *ok = PyObject_CallFunction(s->opts.access_log, "OiKL", environ, status,
                                         (unsigned long long)body_bytes, (long long)(duration * 1e6));
    if (ok == NULL)
        server_report_exception(s, "ursa: the access_log callable raised");
    Py_XDECREF(ok);
    server_app_returned(s, called_at);
}

static void close_iterable(server *s, PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
        return;
    PyObject *close = PyObject_GetAttr(result, s->state->str_close);
    if (close == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            server_report_exception(s, "ursa: looking up close() of the application's iterable failed");
        return;
    }
    double called_at = ev_now(s->loop);
    PyObject *ok = PyObject_CallNoArgs(close);
    server_app_returned(s, called_at);
    Py_DECREF(close);
    if (ok == NULL)
        server_report_exception(s, "ursa: close() of the application's iterable raised");
    Py_XDECREF(ok);
}

/* Log the response if it was all written, then let go of it: close() the
 * iterable exactly once, detach start_response, drop every reference. */
static void wsgi_on_done(exchange *x, int completed)
{
    wsgi_call *call = wsgi_call_of(x);
    server *s = exchange_server(x);
    if (completed && s->opts.access_log != NULL && call->environ != NULL)
        log_access(s, call->environ, x->response.status_code, exchange_body_bytes(x), ev_time() - call->started_at);
    if (call->start_response != NULL) {
        start_response_detach(s, call->start_response);
        call->start_response = NULL;
    }
    Py_CLEAR(call->iterator);
    if (call->result != NULL) {
        PyObject *result = call->result;
        call->result = NULL;
        close_iterable(s, result);
        Py_DECREF(result);
    }
    Py_CLEAR(call->environ);
    memset(call, 0, sizeof *call);
}

static void wsgi_on_refused(exchange *x, int status, size_t body_bytes)
{
    server *s = exchange_server(x);
    if (s->opts.access_log == NULL)
        return;
    environ_source source = environ_source_of(x);
    PyObject *environ = environ_build_partial(&source);
    if (environ == NULL) {
        server_report_exception(s, "ursa: cannot describe a refused request for the access log");
        return;
    }
    log_access(s, environ, status, body_bytes, exchange_elapsed(x));
    Py_DECREF(environ);
}

/* ---- one server ---- */

static void wsgi_server_end(server *s);

static int wsgi_server_start(server *s)
{
    wsgi_server *w = wsgi_server_of(s);
    w->spare_start_response = NULL;
    w->template_count = 0;
    Py_ssize_t prefix_length;
    w->script_name = PyUnicode_AsUTF8AndSize(s->opts.script_name, &prefix_length);
    if (w->script_name == NULL)
        return -1;
    w->script_name_length = (size_t)prefix_length;
    w->templates = PyMem_Calloc(s->listener_count, sizeof *w->templates);
    if (w->templates == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < s->listener_count; i++) {
        const listener *l = &s->listeners[i];
        environ_defaults defaults = {l, s->opts.url_scheme, s->opts.script_name, s->opts.wsgi_errors,
                                     s->opts.multiprocess};
        w->templates[i] = environ_template_new(s->state, &defaults);
        if (w->templates[i] == NULL) {
            wsgi_server_end(s);
            return -1;
        }
        w->template_count++;
    }
    return 0;
}

static void wsgi_server_end(server *s)
{
    wsgi_server *w = wsgi_server_of(s);
    for (size_t i = 0; i < w->template_count; i++)
        Py_XDECREF(w->templates[i]);
    PyMem_Free(w->templates);
    w->templates = NULL;
    w->template_count = 0;
    Py_CLEAR(w->spare_start_response);
}

const interface wsgi_interface = {
    .state_size = sizeof(wsgi_call),
    .server_start = wsgi_server_start,
    .server_end = wsgi_server_end,
    .on_request = wsgi_on_request,
    .on_writable = wsgi_on_writable,
    .on_done = wsgi_on_done,
    .on_refused = wsgi_on_refused,
};
