#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <string.h>

#include "asgi/call.h"
#include "asgi/ready.h"

/* Reading the connection pauses while the app has not taken this much of
 * what arrived (flow control, as for a request body), and goes on once it
 * is down to the low mark. */
#define INBOX_HIGH_WATER (64 * 1024)
#define INBOX_LOW_WATER (16 * 1024)

/* ---- what the session tells the call ---- */

static PyObject *message_of(module_state *state, PyObject *type)
{
    PyObject *message = PyDict_New();
    if (message != NULL && PyDict_SetItem(message, state->str_type, type) < 0)
        Py_CLEAR(message);
    return message;
}

static int on_session_message(PyObject *owner, int text, const char *data, size_t length)
{
    asgi_call *call = (asgi_call *)owner;
    module_state *state = call->state;
    PyObject *payload = text ? PyUnicode_DecodeUTF8(data, (Py_ssize_t)length, NULL)
                             : PyBytes_FromStringAndSize(data, (Py_ssize_t)length);
    if (payload == NULL)
        return -1;
    PyObject *message = message_of(state, state->str_websocket_receive);
    if (message == NULL || PyDict_SetItem(message, text ? state->str_text : state->str_bytes, payload) < 0) {
        Py_DECREF(payload);
        Py_XDECREF(message);
        return -1;
    }
    Py_DECREF(payload);
    int result = 0;
    if (PyList_GET_SIZE(call->inbox) == call->inbox_first && asgi_receiver_waits(call)) {
        asgi_resolve(call, &call->receive_waiter, message);
    } else if (PyList_Append(call->inbox, message) < 0) {
        result = -1;
    } else {
        call->inbox_bytes += length;
        result = call->inbox_bytes >= INBOX_HIGH_WATER;
    }
    Py_DECREF(message);
    return result;
}

static void on_session_drained(PyObject *owner)
{
    asgi_call *call = (asgi_call *)owner;
    if (call->send_waiter != NULL)
        asgi_resolve(call, &call->send_waiter, Py_None);
}

static void on_session_gone(PyObject *owner, int code, const char *reason, size_t length)
{
    asgi_call *call = (asgi_call *)owner;
    call->session = NULL;
    call->ws_gone = 1;
    call->close_code = code;
    if (length > 0 && (call->close_reason = PyUnicode_DecodeUTF8(reason, (Py_ssize_t)length, "replace")) == NULL)
        log_error(call->state, "ursa: could not keep a WebSocket close reason");
    asgi_wake_receiver(call);
    if (call->send_waiter != NULL)
        asgi_resolve(call, &call->send_waiter, Py_None);
}

static const ws_handler session_handler = {
    .on_message = on_session_message,
    .on_drained = on_session_drained,
    .on_gone = on_session_gone,
};

/* ---- the call ---- */

int asgi_websocket_init(asgi_call *call, const ws_handshake *h)
{
    call->inbox = PyList_New(0);
    if (call->inbox == NULL)
        return -1;
    call->websocket = 1;
    memcpy(call->ws_accept, h->accept, sizeof call->ws_accept);
    call->ws_deflate = h->deflate;
    return 0;
}

/* Whether the connection is over for the app: gone after the upgrade, or
 * before it (the client left, or the denial was written). */
static int connection_over(const asgi_call *call)
{
    return call->ws_gone || call->hung_up || call->disconnected || (call->exchange == NULL && call->session == NULL);
}

PyObject *asgi_websocket_disconnect(asgi_call *call)
{
    module_state *state = call->state;
    PyObject *message = message_of(state, state->str_websocket_disconnect);
    int code = call->ws_gone ? call->close_code : WS_CODE_ABNORMAL;
    PyObject *number = message != NULL ? PyLong_FromLong(code) : NULL;
    if (number == NULL || PyDict_SetItem(message, state->str_code, number) < 0)
        goto fail;
    PyObject *reason = call->close_reason != NULL ? call->close_reason : state->str_empty;
    if (PyDict_SetItem(message, state->str_reason, reason) < 0)
        goto fail;
    Py_DECREF(number);
    return message;
fail:
    Py_XDECREF(number);
    Py_XDECREF(message);
    return NULL;
}

/* The oldest message not given yet, a new reference; the inbox shrinks
 * once half of it is given. */
static PyObject *take_message(asgi_call *call)
{
    PyObject *message = PyList_GET_ITEM(call->inbox, call->inbox_first);
    Py_INCREF(message);
    call->inbox_first++;
    PyObject *payload = PyDict_GetItemWithError(message, call->state->str_bytes);
    if (payload == NULL && !PyErr_Occurred())
        payload = PyDict_GetItemWithError(message, call->state->str_text);
    if (payload != NULL) {
        size_t length = (size_t)(PyBytes_Check(payload) ? PyBytes_GET_SIZE(payload) : PyUnicode_GET_LENGTH(payload));
        call->inbox_bytes = length < call->inbox_bytes ? call->inbox_bytes - length : 0;
    }
    PyErr_Clear();
    Py_ssize_t size = PyList_GET_SIZE(call->inbox);
    if (call->inbox_first == size) {
        if (PyList_SetSlice(call->inbox, 0, size, NULL) == 0)
            call->inbox_first = 0;
        call->inbox_bytes = 0;
    } else if (call->inbox_first > size / 2 && call->inbox_first >= 32) {
        if (PyList_SetSlice(call->inbox, 0, call->inbox_first, NULL) == 0)
            call->inbox_first = 0;
    }
    PyErr_Clear();
    if (call->session != NULL && call->inbox_bytes <= INBOX_LOW_WATER)
        ws_session_resume(call->session);
    return message;
}

PyObject *asgi_websocket_receive(asgi_call *call)
{
    module_state *state = call->state;
    if (asgi_receiver_waits(call)) { /* two tasks wait: they share what comes */
        Py_INCREF(call->receive_waiter);
        return call->receive_waiter;
    }
    PyObject *message;
    if (!call->ws_connected) {
        call->ws_connected = 1;
        message = message_of(state, state->str_websocket_connect);
    } else if (PyList_GET_SIZE(call->inbox) > call->inbox_first) {
        message = take_message(call);
    } else if (connection_over(call)) {
        message = asgi_websocket_disconnect(call);
    } else {
        if ((call->receive_waiter = asgi_new_future(call)) == NULL)
            return NULL;
        Py_INCREF(call->receive_waiter);
        return call->receive_waiter;
    }
    if (message == NULL)
        return NULL;
    PyObject *ready = ready_new(state, message);
    Py_DECREF(message);
    return ready;
}

/* ---- send() ---- */

static PyObject *done(asgi_call *call)
{
    Py_INCREF(call->state->ready_none);
    return call->state->ready_none;
}

static void kick(asgi_call *call)
{
    if (call->exchange != NULL && !call->dispatching)
        exchange_kick(call->exchange);
}

static PyObject *disconnected(asgi_call *call)
{
    PyErr_SetString(call->state->client_disconnected, "the WebSocket client disconnected");
    return NULL;
}

/* An optional str of the message: NULL (absent or None), or its UTF-8.
 * *failed is set with an exception. */
static const char *optional_text(asgi_call *call, PyObject *message, PyObject *key, const char *type,
                                 Py_ssize_t *length, int *failed)
{
    (void)call;
    *failed = 0;
    PyObject *value = PyDict_GetItemWithError(message, key);
    if (value == NULL || value == Py_None) {
        *failed = PyErr_Occurred() != NULL;
        return NULL;
    }
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s: '%U' must be a str, not %.100s", type, key, Py_TYPE(value)->tp_name);
        *failed = 1;
        return NULL;
    }
    const char *text = PyUnicode_AsUTF8AndSize(value, length);
    *failed = text == NULL;
    return text;
}

/* websocket.accept: the 101, written once the app's task yields (the
 * connection's own event), then the connection is the session's. */
static PyObject *accept_connection(asgi_call *call, PyObject *message)
{
    exchange *x = call->exchange;
    if (call->ws_accepted || call->started || call->ws_closed) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: websocket.accept after the handshake was answered");
        return NULL;
    }
    if (x == NULL || connection_over(call))
        return disconnected(call);
    Py_ssize_t length = 0;
    int failed;
    const char *subprotocol = optional_text(call, message, call->state->str_subprotocol, "websocket.accept", &length,
                                            &failed);
    if (failed)
        return NULL;
    buffer *head = exchange_head(x);
    response_head_init(&call->response, 101);
    if (ws_handshake_accept_head(head, call->ws_accept, subprotocol, (size_t)length, &call->ws_deflate) < 0 ||
        asgi_add_headers(call, head, message, "websocket.accept", ws_handshake_writes_field) < 0)
        return NULL;
    ws_session *session = ws_session_new(exchange_server(x), &session_handler, (PyObject *)call, &call->ws_deflate);
    if (session == NULL)
        return NULL;
    if (exchange_switch_protocols(x, &ws_protocol, session) < 0) {
        ws_session_free(session);
        return NULL;
    }
    call->session = session;
    call->ws_accepted = call->started = call->complete = 1;
    kick(call);
    return done(call);
}

/* Closing before accepting: the handshake is denied with a 403. */
static int deny(asgi_call *call)
{
    exchange *x = call->exchange;
    response_head_init(&call->response, 403);
    exchange_refuse_keep_alive(x);
    if (head_begin(exchange_head(x), "403 Forbidden", 13) < 0 || exchange_send_head(x, &call->response, 0) < 0 ||
        exchange_end_body(x) < 0)
        return -1;
    call->started = call->complete = call->ws_closed = 1;
    kick(call);
    return 0;
}

static PyObject *close_connection(asgi_call *call, PyObject *message)
{
    module_state *state = call->state;
    if (!call->ws_accepted) {
        if (call->started || call->ws_closed) {
            PyErr_SetString(PyExc_RuntimeError, "ASGI: websocket.close after the handshake was answered");
            return NULL;
        }
        if (call->exchange == NULL || connection_over(call))
            return disconnected(call);
        return deny(call) < 0 ? NULL : done(call);
    }
    long code = 1000;
    PyObject *given = PyDict_GetItemWithError(message, state->str_code);
    if (given == NULL && PyErr_Occurred())
        return NULL;
    if (given != NULL && given != Py_None) {
        code = PyLong_Check(given) ? PyLong_AsLong(given) : -1;
        if (code == -1 && PyErr_Occurred())
            return NULL;
        if (!PyLong_Check(given) || !ws_close_code_valid((int)code)) {
            PyErr_Format(PyExc_ValueError,
                         "websocket.close: code must be an int a close frame may carry (1000-1003, 1007-1014, "
                         "3000-4999), not %R",
                         given);
            return NULL;
        }
    }
    Py_ssize_t length = 0;
    int failed;
    const char *reason = optional_text(call, message, state->str_reason, "websocket.close", &length, &failed);
    if (failed)
        return NULL;
    if (call->ws_closed)
        return done(call); /* said already */
    if (call->session == NULL)
        return disconnected(call);
    if (ws_session_closing(call->session)) {
        call->ws_closed = 1; /* the peer closed first: its close is answered */
        return done(call);
    }
    if (ws_session_close(call->session, (int)code, reason, (size_t)length) < 0)
        return NULL;
    call->ws_closed = 1;
    return done(call);
}

static PyObject *send_message(asgi_call *call, PyObject *message)
{
    module_state *state = call->state;
    if (!call->ws_accepted) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: websocket.send before websocket.accept");
        return NULL;
    }
    if (call->ws_closed) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: websocket.send after websocket.close");
        return NULL;
    }
    if (call->session == NULL || ws_session_closing(call->session))
        return disconnected(call);
    PyObject *bytes = PyDict_GetItemWithError(message, state->str_bytes);
    if (bytes == NULL && PyErr_Occurred())
        return NULL;
    PyObject *text = PyDict_GetItemWithError(message, state->str_text);
    if (text == NULL && PyErr_Occurred())
        return NULL;
    int has_bytes = bytes != NULL && bytes != Py_None, has_text = text != NULL && text != Py_None;
    if (has_bytes == has_text) {
        PyErr_SetString(PyExc_ValueError, "websocket.send: give exactly one of 'bytes' and 'text'");
        return NULL;
    }
    int result;
    if (has_text) {
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "websocket.send: 'text' must be a str, not %.100s", Py_TYPE(text)->tp_name);
            return NULL;
        }
        Py_ssize_t length;
        const char *data = PyUnicode_AsUTF8AndSize(text, &length);
        if (data == NULL)
            return NULL;
        result = ws_session_send(call->session, 1, data, (size_t)length);
    } else {
        Py_buffer view;
        if (PyUnicode_Check(bytes) || PyObject_GetBuffer(bytes, &view, PyBUF_SIMPLE) < 0) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "websocket.send: 'bytes' must be bytes, not %.100s",
                         Py_TYPE(bytes)->tp_name);
            return NULL;
        }
        result = ws_session_send(call->session, 0, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
    }
    if (result < 0)
        return NULL;
    /* Backpressure: the app waits while the client is behind. */
    if (ws_session_pending(call->session) > WS_SEND_HIGH_WATER) {
        if (call->send_waiter == NULL && (call->send_waiter = asgi_new_future(call)) == NULL)
            return NULL;
        Py_INCREF(call->send_waiter);
        return call->send_waiter;
    }
    return done(call);
}

PyObject *asgi_websocket_send(asgi_call *call, PyObject *message)
{
    module_state *state = call->state;
    if (!PyDict_Check(message)) {
        PyErr_Format(PyExc_TypeError, "send(): an ASGI message is a dict, not %.100s", Py_TYPE(message)->tp_name);
        return NULL;
    }
    PyObject *type = PyDict_GetItemWithError(message, state->str_type);
    if (type == NULL || !PyUnicode_Check(type)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "send(): the message has no 'type' str: %R", message);
        return NULL;
    }
    if (PyUnicode_Compare(type, state->str_websocket_send) == 0)
        return send_message(call, message);
    if (PyUnicode_Compare(type, state->str_websocket_accept) == 0)
        return accept_connection(call, message);
    if (PyUnicode_Compare(type, state->str_websocket_close) == 0)
        return close_connection(call, message);
    if (PyUnicode_Compare(type, state->str_websocket_http_response_start) == 0 ||
        PyUnicode_Compare(type, state->str_websocket_http_response_body) == 0) {
        if (call->ws_accepted || call->ws_closed) {
            PyErr_Format(PyExc_RuntimeError, "ASGI: %U after the handshake was answered", type);
            return NULL;
        }
        if (call->exchange == NULL || connection_over(call))
            return disconnected(call);
        return asgi_response_message(call, message) < 0 ? NULL : done(call);
    }
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "send(): %R is not an ASGI WebSocket message type", type);
    return NULL;
}

/* ---- the ends ---- */

void asgi_websocket_app_done(asgi_call *call, int failed)
{
    exchange *x = call->exchange;
    if (x != NULL && !call->started && !exchange_ended(x) && !failed) {
        /* Returned without answering the handshake: denied (a failure
         * gets its 500 from the interface). */
        if (deny(call) < 0)
            log_error(call->state, "ursa: could not deny the WebSocket handshake");
        return;
    }
    if (call->session != NULL && !call->ws_closed && !ws_session_closing(call->session)) {
        call->ws_closed = 1;
        if (ws_session_close(call->session, failed ? 1011 : 1000, NULL, 0) < 0)
            PyErr_Clear();
    }
}

void asgi_websocket_exchange_done(asgi_call *call, int completed)
{
    if (!completed && call->session != NULL) {
        /* The client left before the 101 was written: the session never
         * had the connection. */
        ws_session *session = call->session;
        call->session = NULL;
        ws_session_free(session);
    }
}
