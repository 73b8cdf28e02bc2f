#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/probe.h"

#include <errno.h>
#include <unistd.h>

#include "asgi/core.h"
#include "asgi/libev.h"
#include "asgi/loop.h"

typedef struct {
    PyObject_HEAD
    PyObject *event_loop;
    PyObject *libev;    /* keeps the ev_loop the watcher is on */
    PyObject *callback; /* called with what the watcher read, b"" at the end */
    PyObject *fatal;    /* what the on_fatal handler took while serving */
    ev_io watcher;
} LoopProbeObject;

/* What a server would do with it: stop (here at once) and raise it later. */
static void on_fatal(void *data)
{
    LoopProbeObject *self = data;
    PyObject *exception = exception_take();
    if (self->fatal == NULL)
        self->fatal = exception;
    else
        Py_DECREF(exception);
    ev_break(((EventLoopCoreObject *)self->event_loop)->loop, EVBREAK_ALL);
}

/* As a socket of the server does: read in C, hand the rest to the loop. */
static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    LoopProbeObject *self = (LoopProbeObject *)((char *)w - offsetof(LoopProbeObject, watcher));
    char data[4096];
    ssize_t got = read(w->fd, data, sizeof data);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0)
        ev_io_stop(loop, w);
    PyObject *bytes = PyBytes_FromStringAndSize(data, got > 0 ? got : 0);
    if (bytes == NULL || event_loop_call_soon(self->event_loop, self->callback, bytes) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(bytes);
}

static PyObject *probe_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *event_loop, *callback;
    int fd;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OiO:_LoopProbe", (char *[]){"event_loop", "fd", "callback", NULL},
                                     &event_loop, &fd, &callback))
        return NULL;
    module_state *state = event_loop_type_state(type);
    if (state == NULL)
        return NULL;
    if (!PyObject_TypeCheck(event_loop, state->event_loop.core) ||
        ((EventLoopCoreObject *)event_loop)->loop == NULL) {
        PyErr_SetString(PyExc_TypeError, "_LoopProbe: an open ursa.eventloop.EventLoop was expected");
        return NULL;
    }
    LoopProbeObject *self = (LoopProbeObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(event_loop);
    self->event_loop = event_loop;
    self->libev = ((EventLoopCoreObject *)event_loop)->libev;
    Py_INCREF(self->libev);
    Py_INCREF(callback);
    self->callback = callback;
    ev_io_init(&self->watcher, on_readable, fd, EV_READ);
    ev_io_start(((EventLoopCoreObject *)event_loop)->loop, &self->watcher);
    return (PyObject *)self;
}

/* serve() -> the exception on_fatal took, or None: the server's part. */
static PyObject *probe_serve(LoopProbeObject *self, PyObject *unused)
{
    (void)unused;
    EventLoopCoreObject *core = (EventLoopCoreObject *)self->event_loop;
    if (core->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return NULL;
    }
    event_loop_on_fatal(self->event_loop, on_fatal, self);
    int status = event_loop_enter(self->event_loop);
    if (status == 0) {
        ev_run(core->loop, 0);
        status = event_loop_exit(self->event_loop);
    }
    event_loop_on_fatal(self->event_loop, NULL, NULL);
    if (status < 0)
        return NULL;
    PyObject *fatal = self->fatal ? self->fatal : Py_None;
    Py_INCREF(fatal);
    Py_CLEAR(self->fatal);
    return fatal;
}

static PyObject *probe_end_serving(LoopProbeObject *self, PyObject *unused)
{
    (void)unused;
    EventLoopCoreObject *core = (EventLoopCoreObject *)self->event_loop;
    if (core->loop != NULL)
        ev_break(core->loop, EVBREAK_ALL);
    Py_RETURN_NONE;
}

static int probe_traverse(LoopProbeObject *self, visitproc visit, void *arg)
{
#if PY_VERSION_HEX >= 0x03090000
    Py_VISIT(Py_TYPE(self));
#endif
    Py_VISIT(self->event_loop);
    Py_VISIT(self->callback);
    Py_VISIT(self->fatal);
    return 0;
}

static int probe_clear(LoopProbeObject *self)
{
    Py_CLEAR(self->event_loop);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->fatal);
    return 0;
}

static void probe_dealloc(LoopProbeObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->libev != NULL) {
        module_state *state;
        ev_io_stop(libev_loop_of(self->libev, &state), &self->watcher);
        Py_CLEAR(self->libev);
    }
    probe_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef probe_methods[] = {
    {"serve", (PyCFunction)probe_serve, METH_NOARGS,
     "serve() -> exception or None\n\nevent_loop_enter(), ev_run, event_loop_exit(), with an on_fatal handler\n"
     "that stops and returns what it took."},
    {"end_serving", (PyCFunction)probe_end_serving, METH_NOARGS, "end_serving()\n\nev_break(EVBREAK_ALL)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot probe_slots[] = {
    {Py_tp_new, probe_new},
    {Py_tp_dealloc, probe_dealloc},
    {Py_tp_traverse, probe_traverse},
    {Py_tp_clear, probe_clear},
    {Py_tp_methods, probe_methods},
    {Py_tp_doc, "_LoopProbe(event_loop, fd, callback): for tests, a C ev_io on fd that hands\n"
                "what it reads to callback through event_loop_call_soon()."},
    {0, NULL},
};

static PyType_Spec probe_spec = {
    .name = "ursa._core._LoopProbe",
    .basicsize = sizeof(LoopProbeObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = probe_slots,
};

PyType_Spec *loop_probe_type_spec(void)
{
    return &probe_spec;
}
