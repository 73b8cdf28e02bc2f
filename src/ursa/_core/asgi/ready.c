#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/ready.h"

typedef struct {
    PyObject_HEAD
    PyObject *value;
} ReadyObject;

PyObject *ready_new(module_state *state, PyObject *value)
{
    ReadyObject *self = PyObject_New(ReadyObject, state->ready_type);
    if (self == NULL)
        return NULL;
    Py_INCREF(value);
    self->value = value;
    return (PyObject *)self;
}

static void ready_dealloc(ReadyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_DECREF(self->value);
    PyObject_Free(self);
    Py_DECREF(type);
}

/* `await ready` iterates the object itself. */
static PyObject *ready_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

#if PY_VERSION_HEX >= 0x030A0000
/* The coroutine's SEND takes this path: the value, at once. */
static PySendResult ready_send(ReadyObject *self, PyObject *arg, PyObject **result)
{
    (void)arg;
    Py_INCREF(self->value);
    *result = self->value;
    return PYGEN_RETURN;
}
#endif

/* The end, with the value: StopIteration(value). */
static PyObject *ready_stop(ReadyObject *self)
{
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, self->value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

/* For `yield from`, code that iterates by hand, and `await` itself from
 * Python 3.12 on (its SEND calls tp_iternext when it sends None). An
 * iterator may end without an exception: None, the value of most awaits
 * here (every send()), costs no StopIteration. */
static PyObject *ready_next(ReadyObject *self)
{
    if (self->value == Py_None)
        return NULL;
    return ready_stop(self);
}

/* A method must say how it ended: always the exception. */
static PyObject *ready_send_method(ReadyObject *self, PyObject *arg)
{
    (void)arg;
    return ready_stop(self);
}

static PyObject *ready_throw(ReadyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "throw() takes at least 1 argument");
        return NULL;
    }
    PyObject *exception = args[0];
    if (PyExceptionClass_Check(exception)) {
        PyErr_SetObject(exception, nargs > 1 && args[1] != Py_None ? args[1] : NULL);
    } else if (PyExceptionInstance_Check(exception)) {
        PyErr_SetObject((PyObject *)Py_TYPE(exception), exception);
    } else {
        PyErr_SetString(PyExc_TypeError, "throw() needs an exception");
    }
    return NULL;
}

static PyObject *ready_close(ReadyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction)ready_send_method, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))ready_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)ready_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ready_slots[] = {
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, ready_dealloc},
    {Py_am_await, ready_await},
#if PY_VERSION_HEX >= 0x030A0000
    {Py_am_send, ready_send},
#endif
    {Py_tp_iter, ready_await},
    {Py_tp_iternext, ready_next},
    {Py_tp_methods, ready_methods},
    {Py_tp_doc, "An awaitable that is already done (what receive() and send() return when they need not wait)."},
    {0, NULL},
};

static PyType_Spec ready_spec = {
    .name = "ursa._core.Ready",
    .basicsize = sizeof(ReadyObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = ready_slots,
};

PyType_Spec *ready_type_spec(void)
{
    return &ready_spec;
}
