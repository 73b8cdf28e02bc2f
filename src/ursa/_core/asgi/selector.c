#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/selector.h"

#include <string.h>

#include "asgi/handles.h"

/* selectors.EVENT_READ and EVENT_WRITE */
#define EVENT_READ 1
#define EVENT_WRITE 2
#define FD_FIRST_SLOTS 64

typedef struct {
    PyObject_HEAD
    EventLoopCoreObject *core; /* NULL until the core makes it its selector */
} EventLoopSelectorObject;

/* ---- the watchers ---- */

/* The fd is ready: queue its reader and writer handles, or drop a
 * cancelled one, as asyncio's _process_events does. */
static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    fd_watch *watch = (fd_watch *)w;
    EventLoopCoreObject *core = watch->core;
    /* Removing a cancelled reader below replaces (or frees) the key. */
    PyObject *key = watch->key;
    Py_INCREF(key);
    PyObject *fileobj = PyTuple_GET_ITEM(key, 0), *data = PyTuple_GET_ITEM(key, 3);
    if (PyTuple_Check(data) && PyTuple_GET_SIZE(data) == 2) {
        for (int i = 0; i < 2; i++) {
            PyObject *h = PyTuple_GET_ITEM(data, i);
            if (!(revents & (i == 0 ? EV_READ : EV_WRITE)) || h == Py_None)
                continue;
            int cancelled = handle_is_cancelled(core->state, h);
            if (cancelled > 0) {
                PyObject *done = PyObject_CallMethod((PyObject *)core, i == 0 ? "_remove_reader" : "_remove_writer",
                                                     "O", fileobj);
                Py_XDECREF(done);
                if (done == NULL)
                    cancelled = -1;
            }
            if (cancelled < 0 || (cancelled == 0 && ready_push(&core->ready, h) < 0)) {
                core_fail(core);
                break;
            }
        }
    }
    Py_DECREF(key);
}

static int ev_events_of(int events)
{
    return ((events & EVENT_READ) ? EV_READ : 0) | ((events & EVENT_WRITE) ? EV_WRITE : 0);
}

void selector_close(EventLoopCoreObject *core)
{
    for (int fd = 0; fd < core->fd_slots; fd++) {
        fd_watch *watch = core->fds[fd];
        if (watch == NULL)
            continue;
        core->fds[fd] = NULL;
        ev_io_stop(core->loop, &watch->io);
        Py_DECREF(watch->key);
        PyMem_Free(watch);
    }
}

int selector_traverse(EventLoopCoreObject *core, visitproc visit, void *arg)
{
    for (int fd = 0; fd < core->fd_slots; fd++)
        if (core->fds[fd] != NULL)
            Py_VISIT(core->fds[fd]->key);
    return 0;
}

/* ---- lookups ---- */

static EventLoopCoreObject *open_core(EventLoopSelectorObject *self)
{
    if (self->core == NULL || self->core->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, self->core == NULL ? "this selector belongs to no event loop"
                                                                : "the selector's event loop is closed");
        return NULL;
    }
    return self->core;
}

static int check_events(int events)
{
    if (events == 0 || (events & ~(EVENT_READ | EVENT_WRITE))) {
        PyErr_Format(PyExc_ValueError, "Invalid events: %d", events);
        return -1;
    }
    return 0;
}

/* The fd `fileobj` is registered under, or -1 with KeyError (or the
 * error of its fileno()). A file object closed since (fileno() fails) is
 * found among the keys by identity, as selectors does. */
static int registered_fd(EventLoopCoreObject *core, PyObject *fileobj)
{
    int fd = PyObject_AsFileDescriptor(fileobj);
    if (fd < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_TypeError))
            return -1;
        PyErr_Clear();
        for (int i = 0; i < core->fd_slots; i++)
            if (core->fds[i] != NULL && PyTuple_GET_ITEM(core->fds[i]->key, 0) == fileobj)
                return i;
    } else if (fd < core->fd_slots && core->fds[fd] != NULL) {
        return fd;
    }
    PyErr_Format(PyExc_KeyError, "%R is not registered", fileobj);
    return -1;
}

static PyObject *key_new(EventLoopCoreObject *core, PyObject *fileobj, int fd, int events, PyObject *data)
{
    return PyObject_CallFunction(core->state->event_loop.selector_key, "OiiO", fileobj, fd, events, data);
}

static int grow_slots(EventLoopCoreObject *core, int fd)
{
    int slots = core->fd_slots ? core->fd_slots : FD_FIRST_SLOTS;
    while (slots <= fd)
        slots *= 2;
    fd_watch **fds = PyMem_Realloc(core->fds, (size_t)slots * sizeof *fds);
    if (fds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(fds + core->fd_slots, 0, (size_t)(slots - core->fd_slots) * sizeof *fds);
    core->fds = fds;
    core->fd_slots = slots;
    return 0;
}

/* ---- BaseSelector's methods ---- */

static PyObject *selector_register(EventLoopSelectorObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fileobj, *data = Py_None;
    int events;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi|O:register", (char *[]){"fileobj", "events", "data", NULL},
                                     &fileobj, &events, &data))
        return NULL;
    EventLoopCoreObject *core = open_core(self);
    if (core == NULL || check_events(events) < 0)
        return NULL;
    int fd = PyObject_AsFileDescriptor(fileobj);
    if (fd < 0)
        return NULL;
    if (fd < core->fd_slots && core->fds[fd] != NULL)
        return PyErr_Format(PyExc_KeyError, "%R (FD %d) is already registered", fileobj, fd);
    if (fd >= core->fd_slots && grow_slots(core, fd) < 0)
        return NULL;
    fd_watch *watch = PyMem_Malloc(sizeof *watch);
    if (watch == NULL)
        return PyErr_NoMemory();
    watch->key = key_new(core, fileobj, fd, events, data);
    if (watch->key == NULL) {
        PyMem_Free(watch);
        return NULL;
    }
    watch->core = core;
    ev_io_init(&watch->io, on_io, fd, ev_events_of(events));
    ev_io_start(core->loop, &watch->io);
    core->fds[fd] = watch;
    Py_INCREF(watch->key);
    return watch->key;
}

static PyObject *selector_unregister(EventLoopSelectorObject *self, PyObject *fileobj)
{
    EventLoopCoreObject *core = open_core(self);
    int fd = core ? registered_fd(core, fileobj) : -1;
    if (fd < 0)
        return NULL;
    fd_watch *watch = core->fds[fd];
    core->fds[fd] = NULL;
    ev_io_stop(core->loop, &watch->io);
    PyObject *key = watch->key; /* the watcher's reference, now the caller's */
    PyMem_Free(watch);
    return key;
}

static PyObject *selector_modify(EventLoopSelectorObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *fileobj, *data = Py_None;
    int events;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi|O:modify", (char *[]){"fileobj", "events", "data", NULL},
                                     &fileobj, &events, &data))
        return NULL;
    EventLoopCoreObject *core = open_core(self);
    if (core == NULL || check_events(events) < 0)
        return NULL;
    int fd = registered_fd(core, fileobj);
    if (fd < 0)
        return NULL;
    fd_watch *watch = core->fds[fd];
    PyObject *key = key_new(core, PyTuple_GET_ITEM(watch->key, 0), fd, events, data);
    if (key == NULL)
        return NULL;
    int ev_events = ev_events_of(events);
    if (ev_events != (watch->io.events & (EV_READ | EV_WRITE))) {
        /* libev's watchers cannot change while started */
        ev_io_stop(core->loop, &watch->io);
        ev_io_set(&watch->io, fd, ev_events);
        ev_io_start(core->loop, &watch->io);
    }
    Py_SETREF(watch->key, key);
    Py_INCREF(key);
    return key;
}

static PyObject *selector_select(EventLoopSelectorObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    (void)args;
    (void)kwargs;
    PyErr_SetString(PyExc_RuntimeError,
                    "select(): this selector's watchers put their callbacks on the event loop's queue themselves");
    return NULL;
}

static PyObject *selector_get_key(EventLoopSelectorObject *self, PyObject *fileobj)
{
    EventLoopCoreObject *core = open_core(self);
    int fd = core ? registered_fd(core, fileobj) : -1;
    if (fd < 0)
        return NULL;
    Py_INCREF(core->fds[fd]->key);
    return core->fds[fd]->key;
}

/* A read-only snapshot {fd: key}: asyncio never asks for it on a path
 * that matters, so no dict is kept up to date for it. */
static PyObject *selector_get_map(EventLoopSelectorObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *map = PyDict_New(), *proxy = NULL;
    if (map == NULL)
        return NULL;
    EventLoopCoreObject *core = self->core;
    for (int fd = 0; core != NULL && fd < core->fd_slots; fd++) {
        if (core->fds[fd] == NULL)
            continue;
        PyObject *number = PyLong_FromLong(fd);
        int stored = number ? PyDict_SetItem(map, number, core->fds[fd]->key) : -1;
        Py_XDECREF(number);
        if (stored < 0)
            goto cleanup;
    }
    proxy = PyDictProxy_New(map);
cleanup:
    Py_DECREF(map);
    return proxy;
}

static PyObject *selector_close_method(EventLoopSelectorObject *self, PyObject *unused)
{
    (void)unused;
    if (self->core != NULL && self->core->loop != NULL)
        selector_close(self->core);
    Py_RETURN_NONE;
}

/* ---- the type ---- */

static int selector_traverse_object(EventLoopSelectorObject *self, visitproc visit, void *arg)
{
#if PY_VERSION_HEX >= 0x03090000
    Py_VISIT(Py_TYPE(self));
#endif
    Py_VISIT((PyObject *)self->core);
    return 0;
}

static int selector_clear(EventLoopSelectorObject *self)
{
    Py_CLEAR(self->core);
    return 0;
}

static void selector_dealloc(EventLoopSelectorObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    selector_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMethodDef selector_methods[] = {
    {"register", (PyCFunction)(void (*)(void))selector_register, METH_VARARGS | METH_KEYWORDS,
     "register(fileobj, events, data=None) -> SelectorKey\n\nStart an ev_io on the file's fd."},
    {"unregister", (PyCFunction)selector_unregister, METH_O, "unregister(fileobj) -> SelectorKey\n\nStop its ev_io."},
    {"modify", (PyCFunction)(void (*)(void))selector_modify, METH_VARARGS | METH_KEYWORDS,
     "modify(fileobj, events, data=None) -> SelectorKey"},
    {"select", (PyCFunction)(void (*)(void))selector_select, METH_VARARGS | METH_KEYWORDS,
     "Not used: the watchers queue their callbacks themselves."},
    {"get_key", (PyCFunction)selector_get_key, METH_O, "get_key(fileobj) -> SelectorKey"},
    {"get_map", (PyCFunction)selector_get_map, METH_NOARGS, "get_map() -> a read-only {fd: SelectorKey}"},
    {"close", (PyCFunction)selector_close_method, METH_NOARGS, "close()\n\nStop every ev_io."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot selector_slots[] = {
    {Py_tp_dealloc, selector_dealloc},
    {Py_tp_traverse, selector_traverse_object},
    {Py_tp_clear, selector_clear},
    {Py_tp_methods, selector_methods},
    {Py_tp_doc, "The event loop's selectors.BaseSelector: one ev_io per fd. EventLoopCore._core_init() makes it."},
    {0, NULL},
};

static PyType_Spec selector_spec = {
    .name = "ursa._core.EventLoopSelector",
    .basicsize = sizeof(EventLoopSelectorObject),
    /* BASETYPE: ursa.eventloop derives it from selectors.BaseSelector too. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = selector_slots,
};

PyType_Spec *selector_type_spec(void)
{
    return &selector_spec;
}

int selector_bind(PyObject *selector, EventLoopCoreObject *core)
{
    EventLoopSelectorObject *self = (EventLoopSelectorObject *)selector;
    if (self->core != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this selector belongs to an event loop already");
        return -1;
    }
    Py_INCREF(core);
    self->core = core;
    return 0;
}
