#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/loop.h"

#include "asgi/core.h"
#include "asgi/handles.h"
#include "asgi/libev.h"
#include "asgi/selector.h"

#define CONTAINER_OF(pointer, field) \
    ((EventLoopCoreObject *)((char *)(pointer) - offsetof(EventLoopCoreObject, field)))

/* ---- the drain ---- */

static void on_drain(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)revents;
    EventLoopCoreObject *self = CONTAINER_OF(w, drain);
    /* Python's signal handlers run here when no wake-up fd brought the
     * loop back: a signal interrupts the poll (EINTR) all the same. */
    if (PyErr_CheckSignals() < 0) {
        core_fail(self);
        return;
    }
    /* What is ready now, not what these callbacks add: that waits for the
     * next iteration, as in asyncio's _run_once. */
    double started = ev_now(loop);
    size_t ran = 0;
    for (size_t n = self->ready.count; n > 0 && self->ready.count > 0; n--, ran++) {
        PyObject *h = ready_pop(&self->ready);
        int status = handle_run(self, h);
        Py_DECREF(h);
        if (status < 0) {
            core_fail(self);
            return;
        }
    }
    if (ran > 0 && self->after_callbacks != NULL)
        self->after_callbacks(self->after_callbacks_data, started);
    if (self->stopping && self->mode == LOOP_RUNNING_ITSELF) {
        ev_break(loop, EVBREAK_ONE);
        return;
    }
    if (self->ready.count > 0)
        ev_idle_start(loop, &self->keep_polling);
    else
        ev_idle_stop(loop, &self->keep_polling);
}

static void on_before_poll(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    EventLoopCoreObject *self = CONTAINER_OF(w, before_poll);
    int stopping = self->stopping && self->mode == LOOP_RUNNING_ITSELF;
    if ((self->ready.count > 0 || stopping) && !ev_is_active(&self->keep_polling))
        ev_idle_start(loop, &self->keep_polling);
}

/* Its being active is what matters: the poll does not block. */
static void on_keep_polling(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void drain_start(EventLoopCoreObject *self)
{
    ev_check_start(self->loop, &self->drain);
    ev_prepare_start(self->loop, &self->before_poll);
}

static void drain_stop(EventLoopCoreObject *self)
{
    ev_check_stop(self->loop, &self->drain);
    ev_prepare_stop(self->loop, &self->before_poll);
    ev_idle_stop(self->loop, &self->keep_polling);
}

/* ---- opening, closing ---- */

static int check_open(EventLoopCoreObject *self)
{
    if (self->closed || self->loop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* Stop every watcher started on the ev_loop, drop what is queued and let
 * go of the ev_loop. */
static void core_detach(EventLoopCoreObject *self)
{
    self->closed = 1; /* first: a finalizer run from here queues nothing */
    if (self->loop != NULL) {
        drain_stop(self);
        timers_disarm_all(self);
    }
    ready_clear(&self->ready);
    if (self->loop != NULL)
        selector_close(self);
    self->loop = NULL;
    Py_CLEAR(self->libev);
}

/* _core_init(libev, selector_class) -> selector: run on `libev`'s
 * ev_loop, with a new `selector_class` (a subclass of EventLoopSelector) as
 * the selector, which is returned for SelectorEventLoop.__init__. */
static PyObject *core_init(EventLoopCoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_core_init(libev, selector_class)");
        return NULL;
    }
    module_state *state;
    struct ev_loop *loop = libev_loop_of(args[0], &state);
    if (loop == NULL)
        return NULL;
    if (self->libev != NULL || self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "_core_init(): this event loop was set up already");
        return NULL;
    }
    if (!PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], state->event_loop.selector)) {
        PyErr_SetString(PyExc_TypeError, "_core_init(): selector_class must derive from EventLoopSelector");
        return NULL;
    }
    if (state->event_loop.selector_key == NULL) {
        PyObject *selectors = PyImport_ImportModule("selectors");
        if (selectors == NULL)
            return NULL;
        state->event_loop.selector_key = PyObject_GetAttrString(selectors, "SelectorKey");
        Py_DECREF(selectors);
        if (state->event_loop.selector_key == NULL)
            return NULL;
    }
    PyObject *selector = PyObject_CallObject(args[1], NULL);
    if (selector == NULL)
        return NULL;
    if (selector_bind(selector, self) < 0) {
        Py_DECREF(selector);
        return NULL;
    }
    self->state = state;
    Py_INCREF(args[0]);
    self->libev = args[0];
    self->loop = loop;
    return selector;
}

static PyObject *core_close(EventLoopCoreObject *self, PyObject *unused)
{
    (void)unused;
    if (self->mode != LOOP_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError, "Cannot close a running event loop");
        return NULL;
    }
    core_detach(self);
    Py_RETURN_NONE;
}

/* ---- running ---- */

static PyObject *raise_failure(EventLoopCoreObject *self)
{
    PyObject *failure = self->failure;
    self->failure = NULL;
    exception_raise(failure);
    return NULL;
}

/* _run(): what run_forever() does between asyncio's set-up and clean-up:
 * ev_run on the given loop until stop() or an exception that must end the
 * run, which is raised. */
static PyObject *core_run(EventLoopCoreObject *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    if (self->mode != LOOP_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return NULL;
    }
    if (self->failure != NULL) /* kept since a run it could not end */
        return raise_failure(self);
    self->mode = LOOP_RUNNING_ITSELF;
    drain_start(self);
    ev_run(self->loop, 0);
    drain_stop(self);
    self->mode = LOOP_STOPPED;
    self->stopping = 0;
    if (self->failure != NULL)
        return raise_failure(self);
    Py_RETURN_NONE;
}

static PyObject *core_stop(EventLoopCoreObject *self, PyObject *unused)
{
    (void)unused;
    if (self->mode == LOOP_ENTERED) {
        PyErr_SetString(PyExc_RuntimeError, "loop.stop(): ursa's server runs this event loop and stops with it "
                                            "(ursa.stop(), SIGTERM), not with the loop");
        return NULL;
    }
    self->stopping = 1;
    Py_RETURN_NONE;
}

/* ---- scheduling ---- */

/* The only keyword of call_soon, call_later and call_at: context=. */
static int context_keyword(const char *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                           module_state *state, PyObject **context)
{
    *context = NULL;
    Py_ssize_t count = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        if (key != state->str_context && PyUnicode_Compare(key, state->str_context) != 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", name, key);
            return -1;
        }
        *context = args[nargs + i];
    }
    return 0;
}

/* Checks common to the scheduling methods: open, context=, at least
 * `needed` positional arguments. */
static int schedule_arguments(EventLoopCoreObject *self, const char *name, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames, Py_ssize_t needed, PyObject **context)
{
    if (check_open(self) < 0 || context_keyword(name, args, nargs, kwnames, self->state, context) < 0)
        return -1;
    if (nargs < needed) {
        PyErr_Format(PyExc_TypeError, "%s() takes at least %zd positional arguments (%zd given)", name, needed, nargs);
        return -1;
    }
    return 0;
}

static PyObject *queued(EventLoopCoreObject *self, PyObject *h)
{
    if (h != NULL && ready_push(&self->ready, h) < 0)
        Py_CLEAR(h);
    return h;
}

static PyObject *core_call_soon(EventLoopCoreObject *self, PyObject *const *args, Py_ssize_t nargs,
                                PyObject *kwnames)
{
    PyObject *context;
    if (schedule_arguments(self, "call_soon", args, nargs, kwnames, 1, &context) < 0)
        return NULL;
    return queued(self, handle_new(self->state, args[0], args + 1, nargs - 1, context));
}

/* _call_soon(callback, args, context): what call_soon_threadsafe() calls,
 * from any thread. It touches only the queue, under the GIL, never libev;
 * call_soon_threadsafe() then wakes the loop through its self-pipe. */
static PyObject *core_call_soon_args(EventLoopCoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_open(self) < 0)
        return NULL;
    if (nargs != 3 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_call_soon(callback, args, context): args is a tuple");
        return NULL;
    }
    PyObject *h = handle_new(self->state, args[0], ((PyTupleObject *)args[1])->ob_item, PyTuple_GET_SIZE(args[1]),
                             args[2]);
    return queued(self, h);
}

static PyObject *core_call_at(EventLoopCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *context;
    if (schedule_arguments(self, "call_at", args, nargs, kwnames, 2, &context) < 0)
        return NULL;
    double when = PyFloat_AsDouble(args[0]);
    if (when == -1.0 && PyErr_Occurred())
        return NULL;
    return timer_handle_new(self, when, args[1], args + 2, nargs - 2, context);
}

static PyObject *core_call_later(EventLoopCoreObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    PyObject *context;
    if (schedule_arguments(self, "call_later", args, nargs, kwnames, 2, &context) < 0)
        return NULL;
    double delay = PyFloat_AsDouble(args[0]);
    if (delay == -1.0 && PyErr_Occurred())
        return NULL;
    return timer_handle_new(self, monotonic_now() + delay, args[1], args + 2, nargs - 2, context);
}

static PyObject *core_time(EventLoopCoreObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyFloat_FromDouble(monotonic_now());
}

/* _add_callback(handle): asyncio's signal handling queues its handles so. */
static PyObject *core_add_callback(EventLoopCoreObject *self, PyObject *h)
{
    if (check_open(self) < 0)
        return NULL;
    int cancelled = handle_is_cancelled(self->state, h);
    if (cancelled < 0 || (cancelled == 0 && ready_push(&self->ready, h) < 0))
        return NULL;
    Py_RETURN_NONE;
}

/* ---- attributes asyncio's own code reads and writes ---- */

static PyObject *get_flag(EventLoopCoreObject *self, void *closure)
{
    return PyBool_FromLong(*(int *)((char *)self + (size_t)closure));
}

static int set_flag(EventLoopCoreObject *self, PyObject *value, void *closure)
{
    int truth = value == NULL ? 0 : PyObject_IsTrue(value);
    if (truth < 0)
        return -1;
    *(int *)((char *)self + (size_t)closure) = truth;
    return 0;
}

static PyObject *core_get_debug(EventLoopCoreObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->debug);
}

/* ---- the type ---- */

static PyObject *core_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    EventLoopCoreObject *self = (EventLoopCoreObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    ev_check_init(&self->drain, on_drain);
    ev_set_priority(&self->drain, EV_MINPRI);
    ev_prepare_init(&self->before_poll, on_before_poll);
    ev_set_priority(&self->before_poll, EV_MINPRI);
    ev_idle_init(&self->keep_polling, on_keep_polling);
    ev_set_priority(&self->keep_polling, EV_MINPRI);
    return (PyObject *)self;
}

static int core_traverse(EventLoopCoreObject *self, visitproc visit, void *arg)
{
#if PY_VERSION_HEX >= 0x03090000
    Py_VISIT(Py_TYPE(self));
#endif
    Py_VISIT(self->failure);
    int status = ready_traverse(&self->ready, visit, arg);
    if (status == 0)
        status = timers_traverse(self, visit, arg);
    if (status == 0)
        status = selector_traverse(self, visit, arg);
    return status;
}

static int core_clear(EventLoopCoreObject *self)
{
    core_detach(self);
    Py_CLEAR(self->failure);
    return 0;
}

static void core_dealloc(EventLoopCoreObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    core_clear(self);
    PyMem_Free(self->ready.items);
    PyMem_Free(self->fds);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

#define FASTCALL(function) ((PyCFunction)(void (*)(void))(function))

static PyMethodDef core_methods[] = {
    {"_core_init", FASTCALL(core_init), METH_FASTCALL,
     "_core_init(libev, selector_class) -> selector\n\nRun on the LibevLoop `libev`."},
    {"_core_close", (PyCFunction)core_close, METH_NOARGS,
     "_core_close()\n\nStop every watcher started on the ev_loop and let go of it."},
    {"_run", (PyCFunction)core_run, METH_NOARGS, "_run()\n\nev_run until stop(); run_forever() calls it."},
    {"stop", (PyCFunction)core_stop, METH_NOARGS, "stop()\n\nStop running after this iteration."},
    {"call_soon", FASTCALL(core_call_soon), METH_FASTCALL | METH_KEYWORDS,
     "call_soon(callback, *args, context=None) -> Handle"},
    {"_call_soon", FASTCALL(core_call_soon_args), METH_FASTCALL, "_call_soon(callback, args, context) -> Handle"},
    {"call_at", FASTCALL(core_call_at), METH_FASTCALL | METH_KEYWORDS,
     "call_at(when, callback, *args, context=None) -> TimerHandle"},
    {"call_later", FASTCALL(core_call_later), METH_FASTCALL | METH_KEYWORDS,
     "call_later(delay, callback, *args, context=None) -> TimerHandle"},
    {"time", (PyCFunction)core_time, METH_NOARGS, "time() -> float\n\ntime.monotonic()'s clock."},
    {"get_debug", (PyCFunction)core_get_debug, METH_NOARGS, "get_debug() -> bool"},
    {"_add_callback", (PyCFunction)core_add_callback, METH_O, "_add_callback(handle)\n\nQueue a handle."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef core_getset[] = {
    {"_stopping", (getter)get_flag, (setter)set_flag, NULL, (void *)offsetof(EventLoopCoreObject, stopping)},
    {"_closed", (getter)get_flag, (setter)set_flag, NULL, (void *)offsetof(EventLoopCoreObject, closed)},
    /* asyncio keeps its debug flag in self._debug: here, it is read by a C
     * get_debug() (a Python-level call cost every Task and Future ~1,000
     * instructions). */
    {"_debug", (getter)get_flag, (setter)set_flag, NULL, (void *)offsetof(EventLoopCoreObject, debug)},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_new, core_new},
    {Py_tp_dealloc, core_dealloc},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_methods, core_methods},
    {Py_tp_getset, core_getset},
    {Py_tp_doc, "The C base of ursa.eventloop.EventLoop: its ready queue, timers and io watchers on a libev loop."},
    {0, NULL},
};

static PyType_Spec core_spec = {
    .name = "ursa._core.EventLoopCore",
    .basicsize = sizeof(EventLoopCoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = core_slots,
};

PyType_Spec *event_loop_core_type_spec(void)
{
    return &core_spec;
}

/* ---- the C API (loop.h) ---- */

PyObject *event_loop_new(module_state *state, struct ev_loop *loop)
{
#if PY_VERSION_HEX < 0x030B0000
    (void)state;
    (void)loop;
    PyErr_SetString(PyExc_RuntimeError, EVENT_LOOP_NEEDS_PYTHON);
    return NULL;
#else
    if (state->event_loop.loop_class == NULL) {
        PyObject *module = PyImport_ImportModule("ursa.eventloop");
        if (module == NULL)
            return NULL;
        PyObject *loop_class = PyObject_GetAttrString(module, "EventLoop");
        Py_DECREF(module);
        if (loop_class == NULL)
            return NULL;
        if (!PyType_Check(loop_class) || !PyType_IsSubtype((PyTypeObject *)loop_class, state->event_loop.core)) {
            PyErr_SetString(PyExc_TypeError, "ursa.eventloop.EventLoop does not derive from EventLoopCore");
            Py_DECREF(loop_class);
            return NULL;
        }
        state->event_loop.loop_class = loop_class;
    }
    PyObject *libev = libev_loop_wrap(state, loop);
    if (libev == NULL)
        return NULL;
    PyObject *event_loop = PyObject_CallFunctionObjArgs(state->event_loop.loop_class, libev, NULL);
    Py_DECREF(libev);
    return event_loop;
#endif
}

int event_loop_enter(PyObject *event_loop)
{
    EventLoopCoreObject *self = (EventLoopCoreObject *)event_loop;
    if (check_open(self) < 0)
        return -1;
    if (self->mode != LOOP_STOPPED) {
        PyErr_SetString(PyExc_RuntimeError, "This event loop is already running");
        return -1;
    }
    PyObject *done = PyObject_CallMethod(event_loop, "_run_forever_setup", NULL);
    if (done == NULL)
        return -1;
    Py_DECREF(done);
    self->mode = LOOP_ENTERED;
    self->stopping = 0; /* a stop() from before would end a run of its own, not the caller's */
    drain_start(self);
    return 0;
}

int event_loop_exit(PyObject *event_loop)
{
    EventLoopCoreObject *self = (EventLoopCoreObject *)event_loop;
    if (self->mode != LOOP_ENTERED) {
        PyErr_SetString(PyExc_RuntimeError, "event_loop_exit() without event_loop_enter()");
        return -1;
    }
    drain_stop(self);
    self->mode = LOOP_STOPPED;
    PyObject *done = PyObject_CallMethod(event_loop, "_run_forever_cleanup", NULL);
    Py_XDECREF(done);
    if (self->failure == NULL)
        return done == NULL ? -1 : 0;
    if (done == NULL) /* what ended the run is the one to raise */
        PyErr_WriteUnraisable(event_loop);
    raise_failure(self);
    return -1;
}

void event_loop_on_fatal(PyObject *event_loop, void (*handler)(void *data), void *data)
{
    EventLoopCoreObject *self = (EventLoopCoreObject *)event_loop;
    self->on_fatal = handler;
    self->on_fatal_data = data;
}

void event_loop_after_callbacks(PyObject *event_loop, void (*hook)(void *data, double started), void *data)
{
    EventLoopCoreObject *self = (EventLoopCoreObject *)event_loop;
    self->after_callbacks = hook;
    self->after_callbacks_data = data;
}

int event_loop_call_soon(PyObject *event_loop, PyObject *callable, PyObject *arg)
{
    EventLoopCoreObject *self = (EventLoopCoreObject *)event_loop;
    if (check_open(self) < 0)
        return -1;
    PyObject *h = handle_new(self->state, callable, arg != NULL ? &arg : NULL, arg != NULL ? 1 : 0, NULL);
    if (h == NULL)
        return -1;
    int status = ready_push(&self->ready, h);
    Py_DECREF(h);
    return status;
}

int event_loop_close(PyObject *event_loop)
{
    PyObject *done = PyObject_CallMethod(event_loop, "close", NULL);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}
