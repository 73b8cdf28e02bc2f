#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "response.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>

#include "conn.h"
#include "filewrapper.h"
#include "heartbeat.h"
#include "start_response.h"

/* Bytes written for one connection per event before the others get a turn:
 * a fast reader of a huge response must not starve the rest. */
#define WRITE_BUDGET (1024 * 1024)
/* Bytes of a list body gathered before the first write. */
#define COALESCE_BYTES (64 * 1024)
/* Items pulled from the iterable per event at most: an iterable of empty
 * items, or one whose bytes a HEAD response drops, must still give the
 * loop (signals, timers, other clients) its turn. */
#define PULLS_PER_EVENT 1024

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

static int spool_failed(void)
{
    if (errno == ENOSPC)
        PyErr_SetString(PyExc_OSError, "write(): the worker's room for responses clients have not taken "
                                       "yet (max_spill_bytes) is full");
    else
        PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Queue bytes behind whatever is queued already: in memory, or on disk
 * once a write() backlog went there (see response_write). */
static int response_emit(conn *c, PyObject *owner, const char *data, size_t n)
{
    spool *sp = &c->x->resp.spool;
    if (spool_pending(sp) > 0)
        return spool_append(sp, data, n, &c->server->budget) < 0 ? spool_failed() : 0;
    return outq_push(&c->x->out, owner, data, n);
}

static int response_emit_inline(conn *c, const char *data, size_t n)
{
    spool *sp = &c->x->resp.spool;
    if (spool_pending(sp) > 0)
        return spool_append(sp, data, n, &c->server->budget) < 0 ? spool_failed() : 0;
    return outq_push_inline(&c->x->out, data, n);
}

/* Queue one body item (a new reference to bytes is held by the queue).
 * Returns 0, or -1 with an exception. */
static int response_queue_body(conn *c, PyObject *bytes, const char *data, size_t length)
{
    response *r = &c->x->resp;
    if (length == 0)
        return 0;
    if (r->content_length >= 0) {
        /* PEP 3333: no more than Content-Length goes out, and the iterable
         * is not asked for more once it has given that much. */
        uint64_t room = (uint64_t)r->content_length - r->body_given;
        if (length >= room) {
            r->length_reached = 1;
            if (length > room) {
                length = (size_t)room;
                c->keep_alive = 0; /* the app's body and its header disagree */
            }
        }
    }
    r->body_given += length;
    if (length == 0 || r->no_body)
        return 0;
    if (r->chunked) {
        char prefix[OUTQ_INLINE_MAX];
        int n = snprintf(prefix, sizeof prefix, "%zx\r\n", length);
        if (response_emit_inline(c, prefix, (size_t)n) < 0 || response_emit(c, bytes, data, length) < 0 ||
            response_emit_inline(c, "\r\n", 2) < 0)
            return -1;
    } else if (response_emit(c, bytes, data, length) < 0) {
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
        return response_emit(c, NULL, "0\r\n\r\n", 5);
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

/* The next item, a new reference; NULL at the end or with an exception.
 * A list or tuple is read in place, without an iterator. */
static PyObject *response_next_item(conn *c)
{
    response *r = &c->x->resp;
    if (r->iterator != NULL) {
        server *s = c->server;
        double called_at = ev_now(s->loop);
        PyObject *item = PyIter_Next(r->iterator);
        server_app_returned(s, called_at);
        return item;
    }
    if (r->next_index >= PySequence_Fast_GET_SIZE(r->result))
        return NULL;
    PyObject *item = PySequence_Fast_ITEMS(r->result)[r->next_index++];
    Py_INCREF(item);
    return item;
}

/* Pull the next item of the iterable. Returns 0, or -1: close now. */
static int response_pull(conn *c)
{
    response *r = &c->x->resp;
    if (r->length_reached) {
        /* Content-Length is complete: the rest of the iterable is never
         * asked for; release() closes it. */
        Py_CLEAR(r->iterator);
        if (response_end_body(c) < 0)
            return response_fail(c, "ursa: the application's response is not valid");
        return 0;
    }
    PyObject *item = response_next_item(c);
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
        c->last_progress = server_network_time(c->server);
    }
    return r->file_remaining > 0 ? SEND_BLOCKED : SEND_DONE;
}

/* Write what is queued, memory first, then the spool behind it, as far as
 * the socket and the budget go. */
static pump_result response_flush(conn *c, size_t *budget)
{
    response *r = &c->x->resp;
    size_t written = 0;
    pump_result result = PUMP_DONE;
    if (c->x->out.pending > 0) {
        flush_result f = outq_flush(&c->x->out, c->fd, *budget, &written);
        if (f == FLUSH_ERROR)
            result = PUMP_ABORT;
        else if (f == FLUSH_BLOCKED)
            result = PUMP_BLOCKED;
        *budget -= written < *budget ? written : *budget;
    }
    if (result == PUMP_DONE && spool_pending(&r->spool) > 0) {
        spool_result f = spool_send(&r->spool, c->fd, budget, &written);
        if (f == SPOOL_ERROR)
            result = PUMP_ABORT;
        else if (f == SPOOL_BLOCKED)
            result = PUMP_BLOCKED;
    }
    if (written > 0)
        c->last_progress = server_network_time(c->server);
    return result;
}

pump_result response_pump(conn *c)
{
    response *r = &c->x->resp;
    size_t budget = WRITE_BUDGET;
    for (int pulls = 0;; pulls++) {
        if (pulls == PULLS_PER_EVENT)
            return PUMP_BLOCKED; /* the socket is writable: back soon */
        if (PyErr_CheckSignals() < 0) {
            /* A handler raised (KeyboardInterrupt): it stops the server. */
            server_report_exception(c->server, "ursa: a signal handler raised");
            if (c->closed)
                return PUMP_ABORT;
        }
        if (r->items_ready && !r->exhausted && c->x->out.pending < COALESCE_BYTES) {
            /* Every item of a list is there already: gather them (up to a
             * bound) so that head and body leave in one writev. */
            if (response_pull(c) < 0)
                return PUMP_ABORT;
            continue;
        }
        pump_result flushed = response_flush(c, &budget);
        if (flushed != PUMP_DONE)
            return flushed;
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

/* Tell the master which request the app is about to run, for its log
 * should the worker get stuck in it. */
static void heartbeat_describe_request(conn *c, heartbeat *h)
{
    const request *req = &c->x->req;
    heartbeat_request(h, llhttp_method_name((llhttp_method_t)req->method), c->in.data + req->url.offset,
                      req->url.length);
}

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

    server *s = c->server;
    if (s->heartbeat != NULL)
        heartbeat_describe_request(c, s->heartbeat);
    PyObject *args[2] = {environ, start_response};
    double called_at = ev_now(s->loop);
    PyObject *result = PyObject_Vectorcall(s->app, args, 2, NULL);
    server_app_returned(s, called_at);
    if (result == NULL)
        return response_fail(c, "ursa: the application raised") < 0 ? PUMP_ABORT : response_pump(c);
    if (PyBytes_Check(result) || PyByteArray_Check(result)) {
        /* bjoern serves one bytes object returned by the app as the body,
         * and apps written for it do that: a body of one item. */
        PyObject *body = PyBytes_CheckExact(result) ? (Py_INCREF(result), result) : PyBytes_FromObject(result);
        Py_DECREF(result);
        result = body ? PyTuple_Pack(1, body) : NULL;
        Py_XDECREF(body);
        if (result == NULL)
            return response_fail(c, "ursa: out of memory") < 0 ? PUMP_ABORT : response_pump(c);
    }
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
    double called_at = ev_now(c->server->loop);
    PyObject *ok = PyObject_CallNoArgs(close);
    server_app_returned(c->server, called_at);
    Py_DECREF(close);
    if (ok == NULL)
        server_report_exception(c->server, "ursa: close() of the application's iterable raised");
    Py_XDECREF(ok);
}

void response_release(conn *c)
{
    response *r = &c->x->resp;
    outq_clear(&c->x->out); /* it may borrow r->head */
    spool_free(&r->spool);
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
    spool_init(&r->spool);
}

/* ---- write(): the legacy imperative API ---- */

/* The unsent part of the memory queue moves to the spool: the bytes of
 * write() a slow client has not taken stay bounded in memory. */
static int response_spill(conn *c)
{
    outq *q = &c->x->out;
    spool *sp = &c->x->resp.spool;
    for (size_t i = 0; i < q->count; i++) {
        const out_segment *seg = &q->segments[q->first + i];
        if (spool_append(sp, outq_segment_bytes(seg), seg->length, &c->server->budget) < 0)
            return spool_failed();
    }
    outq_clear(q);
    return 0;
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
    /* Never wait for this client here: the loop and every other
     * connection wait with us. What the socket takes now goes; the rest
     * waits in memory up to body_buffer_size, then on disk, and leaves as
     * the client reads once the app has returned. */
    size_t budget = SIZE_MAX;
    if (response_flush(c, &budget) == PUMP_ABORT) {
        r->failed = 1;
        PyErr_SetString(PyExc_OSError, "write(): the client has gone away");
        return -1;
    }
    if (c->x->out.pending > c->server->opts.body_buffer_size && response_spill(c) < 0)
        return -1;
    return 0;
}
