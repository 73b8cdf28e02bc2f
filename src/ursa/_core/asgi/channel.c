#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/call.h"

#include <errno.h>
#include <structmember.h>
#include <unistd.h>

#include "asgi/ready.h"

/* send() returns a future to wait on while more than this much of the
 * response waits in memory, and it is resolved once the output is down to
 * SEND_LOW_WATER: a streaming app goes at the client's pace. */
#define SEND_HIGH_WATER (64 * 1024)
#define SEND_LOW_WATER (16 * 1024)
/* A body kept in a file is given to receive() in parts of this size. */
#define RECEIVE_FILE_PART (1024 * 1024)

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    asgi_call *call;
} ReceiveObject;

/* ---- futures the app waits on ---- */

static PyObject *new_future(asgi_call *call)
{
    return PyObject_CallMethodObjArgs(call->event_loop, call->state->str_create_future, NULL);
}

/* Resolve `*slot` with `value` unless it is done already (the app's task
 * was cancelled while it waited), and forget it. */
static void resolve(asgi_call *call, PyObject **slot, PyObject *value)
{
    PyObject *future = *slot;
    if (future == NULL)
        return;
    *slot = NULL;
    PyObject *done = PyObject_CallMethodObjArgs(future, call->state->str_done, NULL);
    if (done == Py_False) {
        PyObject *ok = PyObject_CallMethodObjArgs(future, call->state->str_set_result, value, NULL);
        Py_XDECREF(ok);
    }
    Py_XDECREF(done);
    if (PyErr_Occurred())
        log_error(call->state, "ursa: could not wake the ASGI application");
    Py_DECREF(future);
}

static PyObject *disconnect_message(module_state *state)
{
    PyObject *message = PyDict_New();
    if (message != NULL && PyDict_SetItem(message, state->str_type, state->str_http_disconnect) < 0)
        Py_CLEAR(message);
    return message;
}

void asgi_wake_receiver(asgi_call *call)
{
    if (call->receive_waiter == NULL)
        return;
    PyObject *message = disconnect_message(call->state);
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

/* The next part of the request body, as bytes: all of it from memory, a
 * part at a time from a file. */
static PyObject *next_body_part(asgi_call *call, int *more)
{
    const body *b = &exchange_request(call->exchange)->body;
    uint64_t left = b->size - call->body_given;
    if (b->file < 0) {
        *more = 0;
        call->body_given = b->size;
        return PyBytes_FromStringAndSize(b->memory ? b->memory + (b->size - left) : "", (Py_ssize_t)left);
    }
    size_t want = left < RECEIVE_FILE_PART ? (size_t)left : RECEIVE_FILE_PART;
    PyObject *part = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
    if (part == NULL)
        return NULL;
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(b->file, PyBytes_AS_STRING(part) + got, want - got, (off_t)(call->body_given + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            Py_DECREF(part);
            if (n == 0)
                errno = EIO; /* the spill file is shorter than what was written to it */
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        got += (size_t)n;
    }
    call->body_given += want;
    *more = call->body_given < b->size;
    return part;
}

static PyObject *request_message(asgi_call *call)
{
    module_state *state = call->state;
    int more = 0;
    PyObject *part = next_body_part(call, &more);
    if (part == NULL)
        return NULL;
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

/* The request's parts first; then, once the client is gone or the app
 * has sent its whole response, http.disconnect; in between, a future. */
static PyObject *receive_impl(asgi_call *call)
{
    PyObject *message = NULL;
    if (call->exchange != NULL && !call->complete && !call->request_read)
        message = request_message(call);
    else if (call->exchange == NULL || call->complete || call->hung_up || call->disconnected)
        message = disconnect_message(call->state);
    else {
        if (call->receive_waiter == NULL && (call->receive_waiter = new_future(call)) == NULL)
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

static PyObject *send_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    asgi_call *call = (asgi_call *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "send() takes one argument, the message");
        return NULL;
    }
    if (asgi_response_message(call, args[0]) < 0)
        return NULL;
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
    call->task = call->receive_waiter = call->send_waiter = call->scope = NULL;
    call->started_at = 0;
    call->body_given = 0;
    call->file = -1;
    response_head_init(&call->response, 0);
    call->started = call->complete = call->request_read = call->dispatching = 0;
    call->hung_up = call->disconnected = call->app_done = 0;
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
    return 0;
}

static int send_clear(asgi_call *self)
{
    Py_CLEAR(self->task);
    Py_CLEAR(self->receive_waiter);
    Py_CLEAR(self->send_waiter);
    Py_CLEAR(self->scope);
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
