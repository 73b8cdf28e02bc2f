#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/libev.h"

typedef struct {
    PyObject_HEAD
    struct ev_loop *loop;
    module_state *state;
    int owned;                /* made here, destroyed with this object */
    PyThreadState *released;  /* while an owned loop polls */
    unsigned long long polls; /* times an owned loop released the GIL to poll */
} LibevLoopObject;

module_state *event_loop_type_state(PyTypeObject *type)
{
#if PY_VERSION_HEX >= 0x03090000
    return PyType_GetModuleState(type);
#else
    (void)type;
    PyErr_SetString(PyExc_RuntimeError, EVENT_LOOP_NEEDS_PYTHON);
    return NULL;
#endif
}

/* ---- the GIL is released while an owned loop waits for events ---- */

static void release_gil(struct ev_loop *loop)
{
    LibevLoopObject *self = ev_userdata(loop);
    self->polls++;
    self->released = PyEval_SaveThread();
}

static void acquire_gil(struct ev_loop *loop)
{
    LibevLoopObject *self = ev_userdata(loop);
    PyEval_RestoreThread(self->released);
    self->released = NULL;
}

static PyObject *libev_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "LibevLoop() takes no arguments");
        return NULL;
    }
    module_state *state = event_loop_type_state(type);
    if (state == NULL)
        return NULL;
    LibevLoopObject *self = PyObject_New(LibevLoopObject, type);
    if (self == NULL)
        return NULL;
    self->state = state;
    self->owned = 1;
    self->released = NULL;
    self->polls = 0;
    /* As the server makes its loop: no environment, no signal mask games
     * (Python's signal handlers stay Python's). */
    self->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (self->loop == NULL) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_OSError, "ursa: libev could not create an event loop");
        return NULL;
    }
    ev_set_userdata(self->loop, self);
    ev_set_loop_release_cb(self->loop, release_gil, acquire_gil);
    return (PyObject *)self;
}

PyObject *libev_loop_wrap(module_state *state, struct ev_loop *loop)
{
    LibevLoopObject *self = PyObject_New(LibevLoopObject, state->event_loop.libev);
    if (self == NULL)
        return NULL;
    self->loop = loop;
    self->state = state;
    self->owned = 0;
    self->released = NULL;
    self->polls = 0;
    return (PyObject *)self;
}

static void libev_dealloc(LibevLoopObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (self->owned && self->loop != NULL)
        ev_loop_destroy(self->loop);
    PyObject_Free(self);
    Py_DECREF(type);
}

struct ev_loop *libev_loop_of(PyObject *object, module_state **state)
{
    /* The type is told by its destructor: no state is at hand to compare
     * types with before this answers which one it is. */
    if (Py_TYPE(object)->tp_dealloc != (destructor)libev_dealloc) {
        PyErr_Format(PyExc_TypeError, "a LibevLoop was expected, got %.100s", Py_TYPE(object)->tp_name);
        return NULL;
    }
    *state = ((LibevLoopObject *)object)->state;
    return ((LibevLoopObject *)object)->loop;
}

/* ---- for tests ---- */

static PyObject *libev_polls(LibevLoopObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->polls);
}

static PyObject *libev_active_watchers(LibevLoopObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLong(ev_run(self->loop, EVRUN_NOWAIT));
}

static PyMethodDef libev_methods[] = {
    {"_active_watchers", (PyCFunction)libev_active_watchers, METH_NOARGS,
     "_active_watchers() -> int\n\nFor tests: run one iteration without waiting, and return how many watchers\n"
     "are active on the loop (what ev_run returns)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef libev_getset[] = {
    {"polls", (getter)libev_polls, NULL, "How many times a loop of its own released the GIL to poll.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot libev_slots[] = {
    {Py_tp_new, libev_new},
    {Py_tp_dealloc, libev_dealloc},
    {Py_tp_methods, libev_methods},
    {Py_tp_getset, libev_getset},
    {Py_tp_doc, "LibevLoop(): a libev loop of its own, for an event loop used without a server.\n"
                "It releases the GIL around its poll and counts those polls."},
    {0, NULL},
};

static PyType_Spec libev_spec = {
    .name = "ursa._core.LibevLoop",
    .basicsize = sizeof(LibevLoopObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = libev_slots,
};

PyType_Spec *libev_loop_type_spec(void)
{
    return &libev_spec;
}
