#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/probe.h"

#include <string.h>
#include <unistd.h>

/* A header or a target as the app would see its bytes. */
static PyObject *span_bytes(const char *base, span s)
{
    return PyBytes_FromStringAndSize(base + s.offset, s.length);
}

/* The body, wherever it was stored. */
static PyObject *body_bytes(const body *b)
{
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)b->size);
    if (bytes == NULL || b->size == 0)
        return bytes;
    if (b->file < 0) {
        memcpy(PyBytes_AS_STRING(bytes), b->memory, (size_t)b->size);
        return bytes;
    }
    char *out = PyBytes_AS_STRING(bytes);
    uint64_t done = 0;
    while (done < b->size) {
        ssize_t n = pread(b->file, out + done, (size_t)(b->size - done), (off_t)done);
        if (n <= 0) {
            Py_DECREF(bytes);
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        done += (uint64_t)n;
    }
    return bytes;
}

static PyObject *describe_request(const request *req, const char *base)
{
    PyObject *headers = PyList_New(req->header_count);
    if (headers == NULL)
        return NULL;
    for (uint32_t i = 0; i < req->header_count; i++) {
        PyObject *pair = Py_BuildValue("(NN)", span_bytes(base, req->headers[i].name),
                                       span_bytes(base, req->headers[i].value));
        if (pair == NULL) {
            Py_DECREF(headers);
            return NULL;
        }
        PyList_SET_ITEM(headers, i, pair);
    }
    return Py_BuildValue("{s:s,s:N,s:(ii),s:N,s:N,s:O,s:O,s:O}", "method",
                         llhttp_method_name((llhttp_method_t)req->method), "target", span_bytes(base, req->url),
                         "version", req->http_major, req->http_minor, "headers", headers, "body",
                         body_bytes(&req->body), "keep_alive", req->keep_alive ? Py_True : Py_False, "chunked",
                         req->chunked ? Py_True : Py_False, "in_file", req->body.file >= 0 ? Py_True : Py_False);
}

static PyObject *describe_refusal(const request *req)
{
    return Py_BuildValue("{s:i,s:s}", "refused", req->error_status, "reason", req->error_reason);
}

static int record_event(http_reader *r, parse_result result, void *events)
{
    PyObject *event = result == PARSE_ERROR ? describe_refusal(&r->req) : describe_request(&r->req, r->in.data);
    if (event == NULL || PyList_Append(events, event) < 0) {
        Py_XDECREF(event);
        return -1;
    }
    Py_DECREF(event);
    return 1;
}

PyObject *http_probe(const server_options *limits, const char *data, size_t length, const size_t *cuts,
                     size_t cut_count)
{
    PyObject *events = PyList_New(0);
    if (events == NULL)
        return NULL;
    http_reader reader;
    http_reader_init(&reader, limits, record_event, events);
    size_t from = 0;
    int going = 1;
    for (size_t i = 0; i <= cut_count && going > 0; i++) {
        size_t to = i < cut_count && cuts[i] < length ? cuts[i] : length;
        if (to <= from)
            continue;
        going = http_reader_read(&reader, data + from, to - from);
        from = to;
    }
    int incomplete = going > 0 && http_reader_pending(&reader);
    http_reader_free(&reader);
    if (going < 0) {
        Py_DECREF(events);
        return NULL;
    }
    if (incomplete) {
        PyObject *event = Py_BuildValue("{s:O}", "incomplete", Py_True);
        if (event == NULL || PyList_Append(events, event) < 0)
            Py_CLEAR(events);
        Py_XDECREF(event);
    }
    return events;
}
