#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "response.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>

#include "conn.h"
#include "filewrapper.h"
#include "start_response.h"

/* Bytes written for one connection per event before the others get a turn:
 * a fast reader of a huge response must not starve the rest. */
#define WRITE_BUDGET (1024 * 1024)
/* write() returns once no more than this is still queued: PEP 3333 lets
 * it buffer, and the bound keeps a slow client from costing memory. */
#define WRITE_CALL_BUFFER (64 * 1024)
/* Bytes of a list body gathered before the first write. */
#define COALESCE_BYTES (64 * 1024)

static const char internal_error_body[] = "500 Internal Server Error\n";

/* ---- framing and the head ---- */

static int response_has_no_body(const conn *c)
{
    int code = c->x->resp.status_code;
    return c->x->req.method == HTTP_HEAD || code < 200 || code == 204 || code == 304;
}

/* Queue the status line and headers. `known_length` is the body's length
 * when the whole body is known now (-1 otherwise): it saves chunking. */
static int response_send_head(conn *c, int64_t known_length)
{
    response *r = &c->x->resp;
    r->no_body = response_has_no_body(c);
    int add_length = 0;
    if (r->content_length < 0) {
        int code = r->status_code;
        if (known_length >= 0 && code >= 200 && code != 204 && code != 304) {
            r->content_length = known_length;
            add_length = 1;
        } else if (r->no_body) {
            /* nothing to frame */
        } else if (c->x->req.http_minor >= 1) {
            r->chunked = 1;
        } else {
            c->keep_alive = 0; /* HTTP/1.0: the end of the body is the close */
        }
    }
    if (r->app_wants_close)
        c->keep_alive = 0;

    /* The head so far is the status line and the app's headers. */
    buffer *head = &r->head;
    if (buffer_reserve(head, 256) < 0)
        return -1;
    if (!r->has_date)
        buffer_append_str(head, server_date_header(c->server));
    if (!r->has_server)
        buffer_append_str(head, "Server: ursa\r\n");
    if (r->chunked) {
        buffer_append_str(head, "Transfer-Encoding: chunked\r\n");
    } else if (add_length) {
        char line[64];
        int n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)known_length);
        buffer_append(head, line, (size_t)n);
    }
    if (!c->keep_alive)
        buffer_append_str(head, "Connection: close\r\n");
    else if (c->x->req.http_minor == 0)
        buffer_append_str(head, "Connection: keep-alive\r\n");
    buffer_append(head, "\r\n", 2);
    r->headers_sent = 1;
    /* The head stays in r->head until the response is released. */
    return outq_push_borrowed(&c->x->out, head->data, head->len);
}

/* ---- the body ---- */

/* Queue one body item (a new reference to bytes is held by the queue).
 * Returns 0, or -1 with an exception. */
static int response_queue_body(conn *c, PyObject *bytes, const char *data, size_t length)
{
    response *r = &c->x->resp;
    if (length == 0 || r->no_body)
        return 0;
    if (r->content_length >= 0) {
        uint64_t room = (uint64_t)r->content_length - r->body_sent;
        if (length > room) {
            /* More than the app's Content-Length: never on the wire. */
            length = (size_t)room;
            c->keep_alive = 0;
            if (length == 0)
                return 0;
        }
    }
    if (r->chunked) {
        char prefix[OUTQ_INLINE_MAX];
        int n = snprintf(prefix, sizeof prefix, "%zx\r\n", length);
        if (outq_push_inline(&c->x->out, prefix, (size_t)n) < 0 || outq_push(&c->x->out, bytes, data, length) < 0 ||
            outq_push_inline(&c->x->out, "\r\n", 2) < 0)
            return -1;
    } else if (outq_push(&c->x->out, bytes, data, length) < 0) {
        return -1;
    }
    r->body_sent += length;
    return 0;
}

/* A body item as bytes: a new reference, or NULL with TypeError. */
static PyObject *as_bytes(PyObject *item)
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

static int response_take_item(conn *c, PyObject *item)
{
    response *r = &c->x->resp;
    PyObject *bytes = as_bytes(item);
    if (bytes == NULL)
        return -1;
    int result = 0;
    if (PyBytes_GET_SIZE(bytes) == 0)
        goto done;
    if (!r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "the application yielded body data before calling start_response()");
        result = -1;
        goto done;
    }
    if (!r->headers_sent && response_send_head(c, -1) < 0) {
        result = -1;
        goto done;
    }
    result = response_queue_body(c, bytes, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes));
done:
    Py_DECREF(bytes);
    return result;
}

/* The iterable is exhausted: finish the head and the framing. */
static int response_end_body(conn *c)
{
    response *r = &c->x->resp;
    r->exhausted = 1;
    if (!r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
        return -1;
    }
    if (!r->headers_sent && response_send_head(c, (int64_t)r->body_sent) < 0)
        return -1;
    if (r->chunked)
        return outq_push_borrowed(&c->x->out, "0\r\n\r\n", 5);
    if (!r->no_body && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length)
        c->keep_alive = 0; /* short of its Content-Length: only a close ends it */
    return 0;
}

/* The app failed (the exception is set). Before the head is sent the
 * client gets a 500; after, the connection is closed (returns -1). */
static int response_fail(conn *c, const char *message)
{
    response *r = &c->x->resp;
    server_report_exception(c->server, message);
    if (c->closed)
        return -1; /* the report stopped the server at once (a second Ctrl-C) */
    r->exhausted = 1;
    Py_CLEAR(r->iterator);
    if (r->headers_sent) {
        r->failed = 1;
        return -1;
    }
    static const char head_keep_alive[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                          "Content-Type: text/plain; charset=utf-8\r\n"
                                          "Content-Length: 26\r\n";
    outq_clear(&c->x->out);
    r->status_code = 500;
    r->headers_sent = 1;
    r->body_sent = 0;
    r->head.len = 0;
    if (buffer_append_str(&r->head, head_keep_alive) < 0 ||
        buffer_append_str(&r->head, server_date_header(c->server)) < 0 ||
        buffer_append_str(&r->head, c->keep_alive ? "Server: ursa\r\n\r\n"
                                                          : "Server: ursa\r\nConnection: close\r\n\r\n") < 0 ||
        (c->x->req.method != HTTP_HEAD &&
         buffer_append(&r->head, internal_error_body, sizeof internal_error_body - 1) < 0)) {
        PyErr_Clear();
        return -1;
    }
    if (outq_push_borrowed(&c->x->out, r->head.data, r->head.len) < 0) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

/* Pull the next item of the iterable. Returns 0, or -1: close now. */
/* The next item, a new reference; NULL at the end or with an exception.
 * A list or tuple is read in place, without an iterator. */
static PyObject *response_next_item(response *r)
{
    if (r->iterator != NULL)
        return PyIter_Next(r->iterator);
    if (r->next_index >= PySequence_Fast_GET_SIZE(r->result))
        return NULL;
    PyObject *item = PySequence_Fast_ITEMS(r->result)[r->next_index++];
    Py_INCREF(item);
    return item;
}

static int response_pull(conn *c)
{
    response *r = &c->x->resp;
    PyObject *item = response_next_item(r);
    if (item == NULL) {
        if (PyErr_Occurred())
            return response_fail(c, "ursa: the application's iterable raised");
        if (response_end_body(c) < 0)
            return response_fail(c, "ursa: the application's response is not valid");
        return 0;
    }
    int result = response_take_item(c, item);
    Py_DECREF(item);
    if (result < 0)
        return response_fail(c, "ursa: the application's response is not valid");
    return 0;
}

typedef enum { SEND_DONE, SEND_BLOCKED, SEND_ERROR } send_result;

static send_result response_send_file(conn *c, size_t *budget)
{
    response *r = &c->x->resp;
    while (r->file_remaining > 0 && *budget > 0) {
        size_t want = r->file_remaining < *budget ? (size_t)r->file_remaining : *budget;
        ssize_t n = sendfile(c->fd, r->file_fd, &r->file_offset, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? SEND_BLOCKED : SEND_ERROR;
        }
        if (n == 0) {
            /* The file shrank under us: the response is short. */
            r->file_remaining = 0;
            c->keep_alive = 0;
            break;
        }
        r->file_remaining -= (uint64_t)n;
        r->body_sent += (uint64_t)n;
        *budget -= (size_t)n;
        c->last_progress = ev_now(c->server->loop);
    }
    return r->file_remaining > 0 ? SEND_BLOCKED : SEND_DONE;
}

pump_result response_pump(conn *c)
{
    response *r = &c->x->resp;
    size_t budget = WRITE_BUDGET;
    for (;;) {
        if (r->items_ready && !r->exhausted && c->x->out.pending < COALESCE_BYTES) {
            /* Every item of a list is there already: gather them (up to a
             * bound) so that head and body leave in one writev. */
            if (response_pull(c) < 0)
                return PUMP_ABORT;
            continue;
        }
        if (c->x->out.pending > 0) {
            size_t written = 0;
            flush_result f = outq_flush(&c->x->out, c->fd, budget, &written);
            if (written > 0)
                c->last_progress = ev_now(c->server->loop);
            budget -= written < budget ? written : budget;
            if (f == FLUSH_ERROR)
                return PUMP_ABORT;
            if (f == FLUSH_BLOCKED)
                return PUMP_BLOCKED;
        }
        if (r->file_remaining > 0) {
            send_result sent = response_send_file(c, &budget);
            if (sent == SEND_ERROR)
                return PUMP_ABORT;
            if (sent == SEND_BLOCKED)
                return PUMP_BLOCKED;
        }
        if (r->failed)
            return PUMP_ABORT;
        if (r->exhausted)
            return PUMP_DONE;
        if (budget == 0)
            return PUMP_BLOCKED; /* the socket is writable: back soon */
        if (response_pull(c) < 0)
            return PUMP_ABORT;
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

static int response_start_file(conn *c, PyObject *result)
{
    response *r = &c->x->resp;
    int fd;
    off_t offset;
    uint64_t remaining;
    int usable = file_wrapper_sendfile_source(c->server->state, result, &fd, &offset, &remaining);
    if (usable <= 0)
        return usable;
    if (r->content_length >= 0 && (uint64_t)r->content_length < remaining)
        remaining = (uint64_t)r->content_length;
    if (response_send_head(c, r->content_length >= 0 ? -1 : (int64_t)remaining) < 0)
        return -1;
    r->file_fd = fd;
    r->file_offset = offset;
    r->file_remaining = r->no_body ? 0 : remaining;
    if (r->chunked) {
        /* Cannot happen with a known length, but keep the framing honest. */
        r->file_remaining = 0;
        c->keep_alive = 0;
    }
    r->exhausted = 1;
    if (!r->no_body && r->content_length >= 0 && remaining < (uint64_t)r->content_length)
        c->keep_alive = 0;
    return 1;
}

pump_result response_start(conn *c, PyObject *environ)
{
    response *r = &c->x->resp;
    module_state *state = c->server->state;
    r->environ = environ;
    /* Read the clock only for the access log, which reports durations. */
    r->started_at = c->server->opts.access_log ? ev_time() : 0;
    PyObject *start_response = start_response_attach(c);
    if (start_response == NULL)
        return response_fail(c, "ursa: out of memory") < 0 ? PUMP_ABORT : response_pump(c);
    r->start_response = start_response;

    PyObject *args[2] = {environ, start_response};
    PyObject *result = PyObject_Vectorcall(c->server->app, args, 2, NULL);
    if (result == NULL)
        return response_fail(c, "ursa: the application raised") < 0 ? PUMP_ABORT : response_pump(c);
    r->result = result;
    /* A generator's next item may take a while (a stream of events): what
     * it yielded goes out at once. A list's items are all there now. */
    r->items_ready = PyList_CheckExact(result) || PyTuple_CheckExact(result);

    if (Py_IS_TYPE(result, state->file_wrapper_type) && r->headers_set) {
        int started = response_start_file(c, result);
        if (started < 0)
            return response_fail(c, "ursa: cannot send the file_wrapper's file") < 0 ? PUMP_ABORT
                                                                                      : response_pump(c);
        if (started > 0)
            return response_pump(c);
    }
    if (r->headers_set && !r->headers_sent) {
        int64_t length = known_body_length(result);
        if (length >= 0 && response_send_head(c, length) < 0)
            return response_fail(c, "ursa: cannot send the response head") < 0 ? PUMP_ABORT : response_pump(c);
    }
    if (r->items_ready)
        return response_pump(c); /* read in place by response_next_item */
    r->iterator = PyObject_GetIter(result);
    if (r->iterator == NULL)
        return response_fail(c, "ursa: the application returned a value that is not iterable") < 0
                   ? PUMP_ABORT
                   : response_pump(c);
    return response_pump(c);
}

/* ---- the end ---- */

static void close_iterable(conn *c, PyObject *result)
{
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result) || PyBytes_CheckExact(result))
        return;
    PyObject *close = PyObject_GetAttr(result, c->server->state->str_close);
    if (close == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            server_report_exception(c->server, "ursa: looking up close() of the application's iterable failed");
        return;
    }
    PyObject *ok = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (ok == NULL)
        server_report_exception(c->server, "ursa: close() of the application's iterable raised");
    Py_XDECREF(ok);
}

void response_release(conn *c)
{
    response *r = &c->x->resp;
    outq_clear(&c->x->out); /* it may borrow r->head */
    if (r->start_response != NULL) {
        start_response_detach(c->server, r->start_response);
        r->start_response = NULL;
    }
    Py_CLEAR(r->iterator);
    if (r->result != NULL) {
        PyObject *result = r->result;
        r->result = NULL;
        close_iterable(c, result);
        Py_DECREF(result);
    }
    Py_CLEAR(r->environ);
    buffer head = r->head;
    head.len = 0;
    memset(r, 0, sizeof *r);
    r->head = head;
    r->content_length = -1;
    r->file_fd = -1;
}

/* ---- write(): the legacy imperative API ---- */

static int wait_writable(int fd, double seconds)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int ready;
    Py_BEGIN_ALLOW_THREADS
    ready = poll(&p, 1, (int)(seconds * 1000));
    Py_END_ALLOW_THREADS
    return ready;
}

int response_write(conn *c, PyObject *data)
{
    response *r = &c->x->resp;
    if (!r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return -1;
    }
    if (r->failed) {
        PyErr_SetString(PyExc_OSError, "write(): the client has gone away");
        return -1;
    }
    PyObject *bytes = as_bytes(data);
    if (bytes == NULL)
        return -1;
    int queued = (r->headers_sent || response_send_head(c, -1) == 0) &&
                 response_queue_body(c, bytes, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes)) == 0;
    Py_DECREF(bytes);
    if (!queued)
        return -1;
    for (;;) {
        size_t written = 0;
        flush_result f = outq_flush(&c->x->out, c->fd, SIZE_MAX, &written);
        if (f == FLUSH_ERROR)
            break;
        if (f == FLUSH_DONE || c->x->out.pending <= WRITE_CALL_BUFFER)
            return 0;
        if (wait_writable(c->fd, c->server->opts.write_timeout) <= 0)
            break;
    }
    r->failed = 1;
    PyErr_SetString(PyExc_OSError, "write(): the client has gone away or stopped reading");
    return -1;
}
