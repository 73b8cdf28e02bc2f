#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/call.h"

#include <errno.h>
#include <structmember.h>
#include <unistd.h>

#include "asgi/ready.h"
#include "common/exceptions.h"

/* send() returns a future to wait on while more than this much of the
 * response waits in memory, and it is resolved once the output is down to
 * SEND_LOW_WATER: a streaming app goes at the client's pace. */
#define SEND_HIGH_WATER (64 * 1024)
#define SEND_LOW_WATER (16 * 1024)

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    asgi_call *call;
} ReceiveObject;

/* ---- futures the app waits on ---- */

static PyObject *new_future(asgi_call *call)
{
    return PyObject_CallMethodNoArgs(call->event_loop, call->state->str_create_future);
}

PyObject *asgi_new_future(asgi_call *call)
{
    return new_future(call);
}

/* Resolve `*slot` with `value` unless it is done already (the app's task
 * was cancelled while it waited), and forget it. */
static void resolve(asgi_call *call, PyObject **slot, PyObject *value)
{
    PyObject *future = *slot;
    if (future == NULL)
        return;
    *slot = NULL;
    PyObject *done = PyObject_CallMethodNoArgs(future, call->state->str_done);
    if (done == Py_False) {
        PyObject *ok = PyObject_CallMethodOneArg(future, call->state->str_set_result, value);
        Py_XDECREF(ok);
    }
    Py_XDECREF(done);
    if (PyErr_Occurred())
        log_error(call->state, "ursa: could not wake the ASGI application");
    Py_DECREF(future);
}

void asgi_resolve(asgi_call *call, PyObject **slot, PyObject *value)
{
    resolve(call, slot, value);
}

static PyObject *disconnect_message(asgi_call *call)
{
    module_state *state = call->state;
    if (call->websocket)
        return asgi_websocket_disconnect(call);
    PyObject *message = PyDict_New();
    if (message != NULL && PyDict_SetItem(message, state->str_type, state->str_http_disconnect) < 0)
        Py_CLEAR(message);
    return message;
}

void asgi_wake_receiver(asgi_call *call)
{
    if (call->receive_waiter == NULL)
        return;
    PyObject *message = disconnect_message(call);
    if (message == NULL) {
        log_error(call->state, "ursa: could not tell the ASGI application the client left");
        Py_CLEAR(call->receive_waiter);
        return;
    }
    resolve(call, &call->receive_waiter, message);
    Py_DECREF(message);
}

void asgi_wake_sender(asgi_call *call)
{
    if (call->send_waiter != NULL && (call->exchange == NULL || exchange_memory(call->exchange) <= SEND_LOW_WATER))
        resolve(call, &call->send_waiter, Py_None);
}

/* ---- receive() ---- */

/* http.request with every body byte that arrived since the last one. */
static PyObject *request_message(asgi_call *call)
{
    module_state *state = call->state;
    exchange *x = call->exchange;
    PyObject *part = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)exchange_body_waiting(x));
    if (part == NULL)
        return NULL;
    if (exchange_take_body(x, PyBytes_AS_STRING(part)) == (size_t)-1) {
        Py_DECREF(part);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int more = !exchange_body_complete(x);
    PyObject *message = PyDict_New();
    if (message == NULL || PyDict_SetItem(message, state->str_type, state->str_http_request) < 0 ||
        PyDict_SetItem(message, state->str_body, part) < 0 ||
        PyDict_SetItem(message, state->str_more_body, more ? Py_True : Py_False) < 0)
        Py_CLEAR(message);
    Py_DECREF(part);
    if (message != NULL && !more)
        call->request_read = 1;
    return message;
}

/* Whether receive() has a body message to give now. */
static int body_ready(asgi_call *call)
{
    exchange *x = call->exchange;
    return exchange_body_waiting(x) > 0 || exchange_body_complete(x);
}

/* Whether a receive() future waits; one the app cancelled is forgotten,
 * so that what it would have had goes to the next receive(). */
static int receiver_waits(asgi_call *call)
{
    if (call->receive_waiter == NULL)
        return 0;
    PyObject *done = PyObject_CallMethodNoArgs(call->receive_waiter, call->state->str_done);
    if (done == NULL) {
        PyErr_Clear();
        return 1;
    }
    int waits = done == Py_False;
    Py_DECREF(done);
    if (!waits)
        Py_CLEAR(call->receive_waiter);
    return waits;
}

int asgi_receiver_waits(asgi_call *call)
{
    return receiver_waits(call);
}

void asgi_body_arrived(asgi_call *call)
{
    if (call->request_read || !body_ready(call) || !receiver_waits(call))
        return;
    PyObject *message = request_message(call);
    if (message == NULL) {
        log_error(call->state, "ursa: could not give the ASGI application its request body");
        return; /* it waits on: the connection's end wakes it */
    }
    resolve(call, &call->receive_waiter, message);
    Py_DECREF(message);
}

/* The body as it arrives; then, once the client is gone or the app has
 * sent its whole response, http.disconnect; in between, a future. */
static PyObject *receive_impl(asgi_call *call)
{
    PyObject *message = NULL;
    if (call->websocket)
        return asgi_websocket_receive(call);
    if (receiver_waits(call)) { /* two tasks wait: they share what comes */
        Py_INCREF(call->receive_waiter);
        return call->receive_waiter;
    }
    if (call->exchange == NULL || call->complete || call->hung_up || call->disconnected) {
        message = disconnect_message(call);
    } else if (!call->request_read && body_ready(call)) {
        message = request_message(call);
    } else {
        if (!call->request_read)
            exchange_want_body(call->exchange);
        if ((call->receive_waiter = new_future(call)) == NULL)
            return NULL;
        Py_INCREF(call->receive_waiter);
        return call->receive_waiter;
    }
    if (message == NULL)
        return NULL;
    PyObject *ready = ready_new(call->state, message);
    Py_DECREF(message);
    return ready;
}

static PyObject *receive_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)args;
    if (PyVectorcall_NARGS(nargsf) != 0 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "receive() takes no arguments");
        return NULL;
    }
    return receive_impl(((ReceiveObject *)callable)->call);
}

PyObject *asgi_receive_new(asgi_call *call)
{
    ReceiveObject *self = PyObject_GC_New(ReceiveObject, call->state->asgi_receive_type);
    if (self == NULL)
        return NULL;
    self->vectorcall = receive_vectorcall;
    Py_INCREF(call);
    self->call = call;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int receive_traverse(ReceiveObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->call);
    return 0;
}

static int receive_clear(ReceiveObject *self)
{
    Py_CLEAR(self->call);
    return 0;
}

static void receive_dealloc(ReceiveObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    receive_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

/* ---- send() ---- */

/* The app sent a message that is not valid here (its fault, said once in
 * the log): the client gets a 500 if nothing went out yet, else the
 * connection closes mid-response, so it never takes a wrong message for a
 * whole one. The exception is raised on to the app. */
static void abandon_response(asgi_call *call)
{
    PyObject *error = exception_take();
    Py_INCREF(error);
    exception_raise(error);
    log_error(call->state, "ursa: the ASGI application sent an invalid message");
    Py_INCREF(error);
    Py_XSETREF(call->send_error, error);
    exchange *x = call->exchange;
    if (x != NULL && !exchange_ended(x)) {
        call->abandoned = 1;
        exchange_refuse_keep_alive(x);
        if (!call->dispatching)
            exchange_kick(x);
    }
    exception_raise(error);
}

static PyObject *send_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    asgi_call *call = (asgi_call *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "send() takes one argument, the message");
        return NULL;
    }
    if (call->websocket)
        return asgi_websocket_send(call, args[0]);
    if (call->abandoned) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: the response was abandoned after an invalid message");
        return NULL;
    }
    if (asgi_response_message(call, args[0]) < 0) {
        if (!PyErr_ExceptionMatches(call->state->client_disconnected))
            abandon_response(call);
        return NULL;
    }
    exchange *x = call->exchange;
    if (x != NULL && !call->complete && exchange_memory(x) > SEND_HIGH_WATER) {
        if (call->send_waiter == NULL && (call->send_waiter = new_future(call)) == NULL)
            return NULL;
        Py_INCREF(call->send_waiter);
        return call->send_waiter;
    }
    Py_INCREF(call->state->ready_none);
    return call->state->ready_none;
}

asgi_call *asgi_call_new(module_state *state, exchange *x, PyObject *event_loop)
{
    asgi_call *call = PyObject_GC_New(asgi_call, state->asgi_send_type);
    if (call == NULL)
        return NULL;
    call->vectorcall = send_vectorcall;
    call->state = state;
    call->exchange = x;
    Py_INCREF(event_loop);
    call->event_loop = event_loop;
    call->task = call->receive_waiter = call->send_waiter = call->scope = call->send_error = NULL;
    call->started_at = 0;
    call->file = -1;
    response_head_init(&call->response, 0);
    call->started = call->complete = call->request_read = call->dispatching = 0;
    call->hung_up = call->disconnected = call->app_done = call->abandoned = 0;
    call->session = NULL;
    call->inbox = NULL;
    call->inbox_first = 0;
    call->inbox_bytes = 0;
    call->close_code = 0;
    call->close_reason = NULL;
    call->ws_accept[0] = '\0';
    call->websocket = call->ws_connected = call->ws_accepted = call->ws_closed = call->ws_gone = 0;
    PyObject_GC_Track(call);
    return call;
}

static int send_traverse(asgi_call *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->event_loop);
    Py_VISIT(self->task);
    Py_VISIT(self->receive_waiter);
    Py_VISIT(self->send_waiter);
    Py_VISIT(self->scope);
    Py_VISIT(self->send_error);
    Py_VISIT(self->inbox);
    return 0;
}

static int send_clear(asgi_call *self)
{
    Py_CLEAR(self->task);
    Py_CLEAR(self->receive_waiter);
    Py_CLEAR(self->send_waiter);
    Py_CLEAR(self->scope);
    Py_CLEAR(self->send_error);
    Py_CLEAR(self->inbox);
    Py_CLEAR(self->close_reason);
    Py_CLEAR(self->event_loop);
    return 0;
}

static void send_dealloc(asgi_call *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    send_clear(self);
    if (self->file >= 0)
        close(self->file);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

static PyMemberDef send_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(asgi_call, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot send_slots[] = {
    {Py_tp_members, send_members},
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, send_dealloc},
    {Py_tp_traverse, send_traverse},
    {Py_tp_clear, send_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_doc, "send(message) -> awaitable: an ASGI HTTP response message"},
    {0, NULL},
};

static PyType_Spec send_spec = {
    .name = "ursa._core.ASGISend",
    .basicsize = sizeof(asgi_call),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | URSA_TPFLAGS_HEAPTYPE_VECTORCALL,
    .slots = send_slots,
};

PyType_Spec *asgi_send_type_spec(void)
{
    return &send_spec;
}

static PyMemberDef receive_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(ReceiveObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot receive_slots[] = {
    {Py_tp_members, receive_members},
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, receive_dealloc},
    {Py_tp_traverse, receive_traverse},
    {Py_tp_clear, receive_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_doc, "receive() -> awaitable: the next ASGI HTTP request message"},
    {0, NULL},
};

static PyType_Spec receive_spec = {
    .name = "ursa._core.ASGIReceive",
    .basicsize = sizeof(ReceiveObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | URSA_TPFLAGS_HEAPTYPE_VECTORCALL,
    .slots = receive_slots,
};

PyType_Spec *asgi_receive_type_spec(void)
{
    return &receive_spec;
}
