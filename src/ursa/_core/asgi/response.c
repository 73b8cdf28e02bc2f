#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asgi/call.h"
#include "common/digits.h"
#include "http/fields.h"
#include "http/head.h"

/* ---- http.response.start ---- */

/* The bytes of a header name or value: bytes, or another bytes-like object
 * read in place (it is copied into the head at once). Bytes themselves,
 * nearly always, are read without the buffer protocol (a view without an
 * object: PyBuffer_Release leaves it alone). */
static int bytes_of(PyObject *object, Py_buffer *view, Py_ssize_t index, const char *what, const char *message)
{
    if (PyBytes_CheckExact(object)) {
        view->obj = NULL;
        view->buf = PyBytes_AS_STRING(object);
        view->len = PyBytes_GET_SIZE(object);
        return 0;
    }
    if (PyUnicode_Check(object) || PyObject_GetBuffer(object, view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: the %s of header %zd must be bytes, not %.100s", message, what, index,
                     Py_TYPE(object)->tp_name);
        return -1;
    }
    return 0;
}

static int add_header(asgi_call *call, buffer *head, PyObject *pair, Py_ssize_t index, const char *message,
                      server_field_test servers)
{
    PyObject *fast = PySequence_Fast(pair, "");
    if (fast == NULL || PySequence_Fast_GET_SIZE(fast) != 2) {
        Py_XDECREF(fast);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: header %zd must be a [name, value] pair of bytes, not %R", message, index,
                     pair);
        return -1;
    }
    PyObject *name = PySequence_Fast_GET_ITEM(fast, 0), *value = PySequence_Fast_GET_ITEM(fast, 1);
    Py_buffer n, v;
    int result = -1;
    if (bytes_of(name, &n, index, "name", message) < 0)
        goto done;
    if (bytes_of(value, &v, index, "value", message) < 0) {
        PyBuffer_Release(&n);
        goto done;
    }
    if (servers != NULL && servers(n.buf, (size_t)n.len)) {
        PyErr_Format(PyExc_ValueError,
                     "%s: header %R is the server's to send (it answers the handshake and permessage-deflate "
                     "itself; a subprotocol goes in \"subprotocol\")",
                     message, name);
        PyBuffer_Release(&v);
        PyBuffer_Release(&n);
        goto done;
    }
    unsigned char bad_byte = 0;
    field_check check = response_field_add(&call->response, head, n.buf, (size_t)n.len, v.buf, (size_t)v.len,
                                           &bad_byte);
    if (check == FIELD_OK) {
        result = 0;
    } else if (check == FIELD_NAME_CHARACTER || check == FIELD_VALUE_BREAK || check == FIELD_VALUE_CONTROL) {
        PyErr_Format(PyExc_ValueError, "%s: header %R %s (0x%02x): %R", message, name, field_check_text(check),
                     bad_byte, value);
    } else if (check != FIELD_NO_MEMORY) {
        PyErr_Format(PyExc_ValueError, "%s: header %R %s: %R", message, name, field_check_text(check), value);
    }
    PyBuffer_Release(&v);
    PyBuffer_Release(&n);
done:
    Py_DECREF(fast);
    return result;
}

int asgi_add_headers(asgi_call *call, buffer *head, PyObject *message, const char *message_type,
                     server_field_test servers)
{
    PyObject *headers = PyDict_GetItemWithError(message, call->state->str_headers);
    if (headers == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyList_CheckExact(headers) || PyTuple_CheckExact(headers)) {
        /* By index, without an iterator. Each pair is held while it is
         * read, and the length read again: a bytes-like object's buffer
         * may run code that changes the list. */
        for (Py_ssize_t index = 0; index < PySequence_Fast_GET_SIZE(headers); index++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(headers, index);
            Py_INCREF(pair);
            int added = add_header(call, head, pair, index, message_type, servers);
            Py_DECREF(pair);
            if (added < 0)
                return -1;
        }
        return 0;
    }
    PyObject *iterator = PyObject_GetIter(headers);
    if (iterator == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: headers must be an iterable of [name, value], not %.100s", message_type,
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    PyObject *pair;
    Py_ssize_t index = 0;
    while ((pair = PyIter_Next(iterator)) != NULL) {
        int added = add_header(call, head, pair, index++, message_type, servers);
        Py_DECREF(pair);
        if (added < 0) {
            Py_DECREF(iterator);
            return -1;
        }
    }
    Py_DECREF(iterator);
    return PyErr_Occurred() ? -1 : 0;
}

static int start_response(asgi_call *call, exchange *x, PyObject *message)
{
    module_state *state = call->state;
    if (call->started) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: http.response.start sent twice");
        return -1;
    }
    PyObject *status = PyDict_GetItemWithError(message, state->str_status);
    if (status == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "http.response.start: the message has no 'status'");
        return -1;
    }
    long code = PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    if (code == -1 && PyErr_Occurred())
        return -1;
    if (!PyLong_Check(status) || code < 200 || code > 999) {
        /* Interim responses are not the app's to send: 100 Continue is
         * the server's, and 101 belongs to a protocol upgrade. */
        PyErr_Format(PyExc_ValueError, "http.response.start: status must be an int from 200 to 999, not %R", status);
        return -1;
    }
    PyObject *trailers = PyDict_GetItemWithError(message, state->str_trailers);
    if (trailers != NULL && PyObject_IsTrue(trailers) == 1) {
        PyErr_SetString(PyExc_ValueError,
                        "http.response.start: trailers are not supported (the server does not offer "
                        "the http.response.trailers extension)");
        return -1;
    }
    if (PyErr_Occurred())
        return -1;
    char line[64];
    const char *reason = head_reason_phrase((int)code);
    size_t reason_length = strlen(reason);
    if (reason_length > sizeof line - 4)
        reason_length = sizeof line - 4;
    size_t line_length = digits_decimal(line, (uint64_t)code); /* 200..999: three digits */
    line[line_length++] = ' ';
    memcpy(line + line_length, reason, reason_length);
    line_length += reason_length;
    buffer *head = exchange_head(x);
    response_head_init(&call->response, (int)code);
    if (head_begin(head, line, line_length) < 0)
        return -1;
    if (asgi_add_headers(call, head, message, "http.response.start", NULL) < 0)
        return -1;
    call->started = 1;
    return 0;
}

/* ---- http.response.body ---- */

static int check_started(asgi_call *call, PyObject *type)
{
    if (!call->started) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %U sent before http.response.start", type);
        return -1;
    }
    return 0;
}

static int more_body_of(asgi_call *call, PyObject *message)
{
    PyObject *more = PyDict_GetItemWithError(message, call->state->str_more_body);
    if (more == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return PyObject_IsTrue(more);
}

/* The message's body as bytes, a new reference (b"" when absent). */
static PyObject *body_of(asgi_call *call, PyObject *message)
{
    PyObject *body = PyDict_GetItemWithError(message, call->state->str_body);
    if (body == NULL) {
        if (PyErr_Occurred())
            return NULL;
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    if (PyBytes_CheckExact(body)) {
        Py_INCREF(body);
        return body;
    }
    if (PyUnicode_Check(body) || !PyObject_CheckBuffer(body)) {
        PyErr_Format(PyExc_TypeError, "http.response.body: body must be bytes, not %.100s", Py_TYPE(body)->tp_name);
        return NULL;
    }
    /* A bytearray or memoryview may change after send() returns: copied. */
    return PyBytes_FromObject(body);
}

static int send_body(asgi_call *call, exchange *x, PyObject *message)
{
    int more = more_body_of(call, message);
    if (more < 0)
        return -1;
    PyObject *body = body_of(call, message);
    if (body == NULL)
        return -1;
    size_t length = (size_t)PyBytes_GET_SIZE(body);
    int result = -1;
    /* A response given whole in one message gets a Content-Length. */
    if (!exchange_head_sent(x) && exchange_send_head(x, &call->response, more ? -1 : (int64_t)length) < 0)
        goto done;
    if (exchange_send_body(x, body, PyBytes_AS_STRING(body), length) < 0)
        goto done;
    if (!more) {
        if (exchange_end_body(x) < 0)
            goto done;
        call->complete = 1;
    }
    result = 0;
done:
    Py_DECREF(body);
    return result;
}

/* ---- http.response.pathsend ---- */

/* The file at the message's path goes out with sendfile(2). */
static int send_path(asgi_call *call, exchange *x, PyObject *message)
{
    PyObject *path = PyDict_GetItemWithError(message, call->state->str_path);
    if (path == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "http.response.pathsend: the message has no 'path'");
        return -1;
    }
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(path, &encoded))
        return -1;
    int fd = open(PyBytes_AS_STRING(encoded), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        goto error;
    }
    if (!S_ISREG(st.st_mode)) {
        PyErr_Format(PyExc_ValueError, "http.response.pathsend: %R is not a regular file", path);
        goto error;
    }
    if (!exchange_head_sent(x) && exchange_send_head(x, &call->response, (int64_t)st.st_size) < 0)
        goto error;
    uint64_t length = (uint64_t)st.st_size;
    if (call->response.content_length >= 0 && (uint64_t)call->response.content_length < length)
        length = (uint64_t)call->response.content_length;
    call->file = fd;
    exchange_send_file(x, fd, 0, length);
    Py_DECREF(encoded);
    if (exchange_end_body(x) < 0)
        return -1;
    call->complete = 1;
    return 0;
error:
    if (fd >= 0)
        close(fd);
    Py_DECREF(encoded);
    return -1;
}

/* ---- one message ---- */

int asgi_response_message(asgi_call *call, PyObject *message)
{
    module_state *state = call->state;
    if (!PyDict_Check(message)) {
        PyErr_Format(PyExc_TypeError, "send(): an ASGI message is a dict, not %.100s", Py_TYPE(message)->tp_name);
        return -1;
    }
    PyObject *type = PyDict_GetItemWithError(message, state->str_type);
    if (type == NULL || !PyUnicode_Check(type)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "send(): the message has no 'type' str: %R", message);
        return -1;
    }
    exchange *x = call->exchange;
    if (x == NULL && call->disconnected) {
        PyErr_SetString(state->client_disconnected, "the client disconnected before the response was sent");
        return -1;
    }
    if (x == NULL || call->complete) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %U sent after the response was complete", type);
        return -1;
    }
    int result;
    /* A WebSocket app denies the handshake with the same messages, by the
     * websocket.http.response extension's names. */
    if (PyUnicode_Compare(type, state->str_http_response_body) == 0 ||
        (call->websocket && PyUnicode_Compare(type, state->str_websocket_http_response_body) == 0))
        result = check_started(call, type) < 0 ? -1 : send_body(call, x, message);
    else if (PyUnicode_Compare(type, state->str_http_response_start) == 0 ||
             (call->websocket && PyUnicode_Compare(type, state->str_websocket_http_response_start) == 0))
        return start_response(call, x, message);
    else if (PyUnicode_Compare(type, state->str_http_response_pathsend) == 0)
        result = check_started(call, type) < 0 ? -1 : send_path(call, x, message);
    else {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "send(): %R is not an ASGI HTTP response message type", type);
        return -1;
    }
    if (result == 0 && !call->dispatching)
        exchange_kick(x);
    return result;
}
