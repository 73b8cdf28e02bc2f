#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "response.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <structmember.h>
#include <sys/sendfile.h>

#include "conn.h"
#include "filewrapper.h"

/* Bytes written for one connection per event before the others get a turn:
 * a fast reader of a huge response must not starve the rest. */
#define WRITE_BUDGET (1024 * 1024)
/* write() returns once no more than this is still queued: PEP 3333 lets
 * it buffer, and the bound keeps a slow client from costing memory. */
#define WRITE_CALL_BUFFER (64 * 1024)
/* Bytes of a list body gathered before the first write. */
#define COALESCE_BYTES (64 * 1024)

static const char internal_error_body[] = "500 Internal Server Error\n";

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* the app calls it once per request: no arg tuple */
    struct conn *conn;         /* NULL once the response has ended */
    module_state *state;
} StartResponseObject;

/* ---- start_response: checking what the app gives ---- */

static int is_token_char(unsigned char ch)
{
    /* RFC 9110 tchar */
    if (ch >= '0' && ch <= '9')
        return 1;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return 1;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* The latin-1 bytes of a str, or NULL with ValueError. */
static const char *latin1_of(PyObject *text, Py_ssize_t *length, const char *what)
{
    if (PyUnicode_READY(text) < 0)
        return NULL;
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError, "%s must be latin-1 encodable: %R", what, text);
        return NULL;
    }
    *length = PyUnicode_GET_LENGTH(text);
    return (const char *)PyUnicode_1BYTE_DATA(text);
}

static int check_status(PyObject *status, int *code)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "start_response: status must be a str like '200 OK', not %.100s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *s = latin1_of(status, &n, "start_response: status");
    if (s == NULL)
        return -1;
    if (n < 5 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        s[3] != ' ') {
        PyErr_Format(PyExc_ValueError,
                     "start_response: status must be three digits, a space and a reason, like '200 OK': %R",
                     status);
        return -1;
    }
    for (Py_ssize_t i = 4; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            PyErr_Format(PyExc_ValueError, "start_response: status contains a control character: %R", status);
            return -1;
        }
    }
    *code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return 0;
}

static int check_header_name(PyObject *name, const char **bytes, Py_ssize_t *length)
{
    if (!PyUnicode_Check(name)) {
        PyErr_Format(PyExc_TypeError, "start_response: header name must be a str, not %.100s",
                     Py_TYPE(name)->tp_name);
        return -1;
    }
    *bytes = latin1_of(name, length, "start_response: header name");
    if (*bytes == NULL)
        return -1;
    if (*length == 0) {
        PyErr_SetString(PyExc_ValueError, "start_response: header name is empty");
        return -1;
    }
    for (Py_ssize_t i = 0; i < *length; i++) {
        if (!is_token_char((unsigned char)(*bytes)[i])) {
            PyErr_Format(PyExc_ValueError,
                         "start_response: header name %R contains the character 0x%02x, which is not allowed "
                         "in a field name",
                         name, (unsigned char)(*bytes)[i]);
            return -1;
        }
    }
    return 0;
}

static int check_header_value(PyObject *name, PyObject *value, const char **bytes, Py_ssize_t *length)
{
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "start_response: value of header %R must be a str, not %.100s", name,
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    *bytes = latin1_of(value, length, "start_response: header value");
    if (*bytes == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < *length; i++) {
        char ch = (*bytes)[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') {
            PyErr_Format(PyExc_ValueError,
                         "start_response: value of header %R contains CR, LF or NUL, which would break the "
                         "response: %R",
                         name, value);
            return -1;
        }
    }
    return 0;
}

static int name_is(const char *name, Py_ssize_t length, const char *lower)
{
    return (size_t)length == strlen(lower) && strncasecmp(name, lower, (size_t)length) == 0;
}

/* Hop-by-hop fields are the server's to send (PEP 3333); the app's are
 * dropped, except that "Connection: close" is honoured. */
static int is_hop_by_hop(const char *name, Py_ssize_t length)
{
    return name_is(name, length, "transfer-encoding") || name_is(name, length, "keep-alive") ||
           name_is(name, length, "te") || name_is(name, length, "trailer") ||
           name_is(name, length, "upgrade") || name_is(name, length, "proxy-connection");
}

static int parse_content_length(PyObject *name, PyObject *text, const char *value, Py_ssize_t length,
                                int64_t *out)
{
    int64_t n = 0;
    if (length == 0 || length > 18)
        goto invalid;
    for (Py_ssize_t i = 0; i < length; i++) {
        if (value[i] < '0' || value[i] > '9')
            goto invalid;
        n = n * 10 + (value[i] - '0');
    }
    *out = n;
    return 0;
invalid:
    PyErr_Format(PyExc_ValueError, "start_response: %R must be a non-negative integer, got %R", name, text);
    return -1;
}

/* Check the app's headers and serialise them into r->header_lines. */
static int set_headers(response *r, PyObject *headers)
{
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError,
                     "start_response: headers must be a list of (name, value) tuples, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    r->header_lines.len = 0;
    r->content_length = -1;
    r->has_date = r->has_server = r->app_wants_close = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "start_response: header %zd must be a (name, value) tuple, not %R", i,
                         item);
            return -1;
        }
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        const char *n, *v;
        Py_ssize_t nlen, vlen;
        if (check_header_name(name, &n, &nlen) < 0 || check_header_value(name, value, &v, &vlen) < 0)
            return -1;
        if (name_is(n, nlen, "content-length")) {
            if (parse_content_length(name, value, v, vlen, &r->content_length) < 0)
                return -1;
        } else if (name_is(n, nlen, "connection")) {
            if (vlen >= 5 && strcasestr(v, "close") != NULL)
                r->app_wants_close = 1;
            continue;
        } else if (is_hop_by_hop(n, nlen)) {
            continue;
        } else if (name_is(n, nlen, "date")) {
            r->has_date = 1;
        } else if (name_is(n, nlen, "server")) {
            r->has_server = 1;
        }
        if (buffer_reserve(&r->header_lines, (size_t)(nlen + vlen + 4)) < 0)
            return -1;
        buffer_append(&r->header_lines, n, (size_t)nlen);
        buffer_append(&r->header_lines, ": ", 2);
        buffer_append(&r->header_lines, v, (size_t)vlen);
        buffer_append(&r->header_lines, "\r\n", 2);
    }
    return 0;
}

static int reraise_exc_info(PyObject *exc_info)
{
    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError, "start_response: exc_info must be a (type, value, traceback) tuple");
        return -1;
    }
    PyObject *type = PyTuple_GET_ITEM(exc_info, 0), *value = PyTuple_GET_ITEM(exc_info, 1),
             *traceback = PyTuple_GET_ITEM(exc_info, 2);
    Py_INCREF(type);
    Py_INCREF(value);
    Py_INCREF(traceback);
    PyErr_Restore(type, value, traceback == Py_None ? (Py_DECREF(traceback), NULL) : traceback);
    return -1;
}

static PyObject *start_response_impl(StartResponseObject *self, PyObject *status, PyObject *headers,
                                     PyObject *exc_info)
{
    if (self->conn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after its response ended");
        return NULL;
    }
    response *r = &self->conn->resp;
    if (exc_info != Py_None) {
        if (r->headers_sent)
            return reraise_exc_info(exc_info), NULL;
    } else if (r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError,
                        "start_response() called a second time without exc_info (PEP 3333 allows that only "
                        "to replace the headers of an error)");
        return NULL;
    }
    int code;
    if (check_status(status, &code) < 0 || set_headers(r, headers) < 0) {
        r->headers_set = 0;
        return NULL;
    }
    Py_INCREF(status);
    Py_XSETREF(r->status, status);
    r->status_code = code;
    r->headers_set = 1;
    return PyObject_GetAttr((PyObject *)self, self->state->str_write);
}

static PyObject *start_response_call(StartResponseObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", keywords, &status, &headers, &exc_info))
        return NULL;
    return start_response_impl(self, status, headers, exc_info);
}

static PyObject *start_response_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    StartResponseObject *self = (StartResponseObject *)callable;
    if (kwnames == NULL && (nargs == 2 || nargs == 3))
        return start_response_impl(self, args[0], args[1], nargs == 3 ? args[2] : Py_None);
    /* Keywords or a wrong count: the general path says what is wrong. */
    PyObject *tuple = PyTuple_New(nargs);
    PyObject *kwargs = kwnames ? PyDict_New() : NULL;
    PyObject *result = NULL;
    if (tuple == NULL || (kwnames && kwargs == NULL))
        goto cleanup;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++)
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            goto cleanup;
    result = start_response_call(self, tuple, kwargs);
cleanup:
    Py_XDECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

/* ---- framing and the head ---- */

static int response_has_no_body(const conn *c)
{
    int code = c->resp.status_code;
    return c->req.method == HTTP_HEAD || code < 200 || code == 204 || code == 304;
}

/* Queue the status line and headers. `known_length` is the body's length
 * when the whole body is known now (-1 otherwise): it saves chunking. */
static int response_send_head(conn *c, int64_t known_length)
{
    response *r = &c->resp;
    buffer head = {0};
    char line[64];
    r->no_body = response_has_no_body(c);
    int add_length = 0;
    if (r->content_length < 0) {
        int code = r->status_code;
        if (known_length >= 0 && code >= 200 && code != 204 && code != 304) {
            r->content_length = known_length;
            add_length = 1;
        } else if (r->no_body) {
            /* nothing to frame */
        } else if (c->req.http_minor >= 1) {
            r->chunked = 1;
        } else {
            c->keep_alive = 0; /* HTTP/1.0: the end of the body is the close */
        }
    }
    if (r->app_wants_close)
        c->keep_alive = 0;

    Py_ssize_t status_length;
    const char *status = latin1_of(r->status, &status_length, "status");
    if (status == NULL || buffer_reserve(&head, r->header_lines.len + (size_t)status_length + 256) < 0)
        goto error;
    buffer_append(&head, "HTTP/1.1 ", 9);
    buffer_append(&head, status, (size_t)status_length);
    buffer_append(&head, "\r\n", 2);
    buffer_append(&head, r->header_lines.data, r->header_lines.len);
    if (!r->has_date)
        buffer_append_str(&head, server_date_header(c->server));
    if (!r->has_server)
        buffer_append_str(&head, "Server: ursa\r\n");
    if (r->chunked) {
        buffer_append_str(&head, "Transfer-Encoding: chunked\r\n");
    } else if (add_length) {
        int n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)known_length);
        buffer_append(&head, line, (size_t)n);
    }
    if (!c->keep_alive)
        buffer_append_str(&head, "Connection: close\r\n");
    else if (c->req.http_minor == 0)
        buffer_append_str(&head, "Connection: keep-alive\r\n");
    buffer_append(&head, "\r\n", 2);

    /* The head lives in header_lines until the response is released. */
    buffer_free(&r->header_lines);
    r->header_lines = head;
    r->headers_sent = 1;
    return outq_push_borrowed(&c->out, head.data, head.len);
error:
    buffer_free(&head);
    return -1;
}

/* ---- the body ---- */

/* Queue one body item (a new reference to bytes is held by the queue).
 * Returns 0, or -1 with an exception. */
static int response_queue_body(conn *c, PyObject *bytes, const char *data, size_t length)
{
    response *r = &c->resp;
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
        if (outq_push_inline(&c->out, prefix, (size_t)n) < 0 || outq_push(&c->out, bytes, data, length) < 0 ||
            outq_push_inline(&c->out, "\r\n", 2) < 0)
            return -1;
    } else if (outq_push(&c->out, bytes, data, length) < 0) {
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
    response *r = &c->resp;
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
    response *r = &c->resp;
    r->exhausted = 1;
    if (!r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
        return -1;
    }
    if (!r->headers_sent && response_send_head(c, (int64_t)r->body_sent) < 0)
        return -1;
    if (r->chunked)
        return outq_push_borrowed(&c->out, "0\r\n\r\n", 5);
    if (!r->no_body && r->content_length >= 0 && r->body_sent < (uint64_t)r->content_length)
        c->keep_alive = 0; /* short of its Content-Length: only a close ends it */
    return 0;
}

/* The app failed (the exception is set). Before the head is sent the
 * client gets a 500; after, the connection is closed (returns -1). */
static int response_fail(conn *c, const char *message)
{
    response *r = &c->resp;
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
    outq_clear(&c->out);
    r->status_code = 500;
    r->headers_sent = 1;
    r->body_sent = 0;
    buffer_free(&r->header_lines);
    if (buffer_append_str(&r->header_lines, head_keep_alive) < 0 ||
        buffer_append_str(&r->header_lines, server_date_header(c->server)) < 0 ||
        buffer_append_str(&r->header_lines, c->keep_alive ? "Server: ursa\r\n\r\n"
                                                          : "Server: ursa\r\nConnection: close\r\n\r\n") < 0 ||
        (c->req.method != HTTP_HEAD &&
         buffer_append(&r->header_lines, internal_error_body, sizeof internal_error_body - 1) < 0)) {
        PyErr_Clear();
        return -1;
    }
    if (outq_push_borrowed(&c->out, r->header_lines.data, r->header_lines.len) < 0) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

/* Pull the next item of the iterable. Returns 0, or -1: close now. */
static int response_pull(conn *c)
{
    response *r = &c->resp;
    PyObject *item = PyIter_Next(r->iterator);
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
    response *r = &c->resp;
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
    response *r = &c->resp;
    size_t budget = WRITE_BUDGET;
    for (;;) {
        if (r->items_ready && !r->exhausted && c->out.pending < COALESCE_BYTES) {
            /* Every item of a list is there already: gather them (up to a
             * bound) so that head and body leave in one writev. */
            if (response_pull(c) < 0)
                return PUMP_ABORT;
            continue;
        }
        if (c->out.pending > 0) {
            size_t written = 0;
            flush_result f = outq_flush(&c->out, c->fd, budget, &written);
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
    response *r = &c->resp;
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
    response *r = &c->resp;
    module_state *state = c->server->state;
    r->environ = environ;
    /* Read the clock only for the access log, which reports durations. */
    r->started_at = c->server->opts.access_log ? ev_time() : 0;
    StartResponseObject *sr = PyObject_New(StartResponseObject, state->start_response_type);
    if (sr == NULL)
        return response_fail(c, "ursa: out of memory") < 0 ? PUMP_ABORT : response_pump(c);
    Py_INCREF(state->start_response_type);
    sr->vectorcall = start_response_vectorcall;
    sr->conn = c;
    sr->state = state;
    r->start_response = (PyObject *)sr;

    PyObject *args[2] = {environ, (PyObject *)sr};
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
    response *r = &c->resp;
    outq_clear(&c->out); /* it may borrow r->header_lines */
    if (r->start_response != NULL) {
        ((StartResponseObject *)r->start_response)->conn = NULL;
        Py_CLEAR(r->start_response);
    }
    Py_CLEAR(r->iterator);
    if (r->result != NULL) {
        PyObject *result = r->result;
        r->result = NULL;
        close_iterable(c, result);
        Py_DECREF(result);
    }
    Py_CLEAR(r->environ);
    Py_CLEAR(r->status);
    buffer lines = r->header_lines;
    lines.len = 0;
    memset(r, 0, sizeof *r);
    r->header_lines = lines;
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

static PyObject *start_response_write(StartResponseObject *self, PyObject *data)
{
    conn *c = self->conn;
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after its response ended");
        return NULL;
    }
    response *r = &c->resp;
    if (!r->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return NULL;
    }
    if (r->failed) {
        PyErr_SetString(PyExc_OSError, "write(): the client has gone away");
        return NULL;
    }
    PyObject *bytes = as_bytes(data);
    if (bytes == NULL)
        return NULL;
    int queued = (r->headers_sent || response_send_head(c, -1) == 0) &&
                 response_queue_body(c, bytes, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes)) == 0;
    Py_DECREF(bytes);
    if (!queued)
        return NULL;
    for (;;) {
        size_t written = 0;
        flush_result f = outq_flush(&c->out, c->fd, SIZE_MAX, &written);
        if (f == FLUSH_ERROR)
            break;
        if (f == FLUSH_DONE || c->out.pending <= WRITE_CALL_BUFFER)
            Py_RETURN_NONE;
        if (wait_writable(c->fd, c->server->opts.write_timeout) <= 0)
            break;
    }
    r->failed = 1;
    PyErr_SetString(PyExc_OSError, "write(): the client has gone away or stopped reading");
    return NULL;
}

/* ---- the type ---- */

static void start_response_dealloc(StartResponseObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyMethodDef start_response_methods[] = {
    {"write", (PyCFunction)start_response_write, METH_O, "write(data): send body bytes (PEP 3333 legacy)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef start_response_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(StartResponseObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot start_response_slots[] = {
    {Py_tp_members, start_response_members},
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, start_response_dealloc},
    {Py_tp_call, start_response_call},
    {Py_tp_methods, start_response_methods},
    {Py_tp_doc, "start_response(status, headers, exc_info=None) -> write"},
    {0, NULL},
};

static PyType_Spec start_response_spec = {
    .name = "ursa._core.StartResponse",
    .basicsize = sizeof(StartResponseObject),
    .flags = Py_TPFLAGS_DEFAULT | URSA_TPFLAGS_HEAPTYPE_VECTORCALL,
    .slots = start_response_slots,
};

PyType_Spec *start_response_type_spec(void)
{
    return &start_response_spec;
}
