#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/handles.h"

#include <string.h>

/* ---- making ---- */

/* A handle of `type` with every field empty, not yet tracked by the GC:
 * the caller fills it, then tracks it. */
static handle *handle_alloc(PyTypeObject *type, PyObject *callback, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *context)
{
    if (!PyCallable_Check(callback)) {
        PyErr_Format(PyExc_TypeError, "a callable object was expected, got %R", callback);
        return NULL;
    }
    handle *h = PyObject_GC_New(handle, type);
    if (h == NULL)
        return NULL;
    memset((char *)h + sizeof(PyObject), 0, (size_t)type->tp_basicsize - sizeof(PyObject));
    if (nargs == 1) {
        Py_INCREF(args[0]);
        h->arg = args[0];
    } else if (nargs > 1) {
        h->args = PyTuple_New(nargs);
        if (h->args == NULL)
            goto error;
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(h->args, i, args[i]);
        }
    }
    if (context == NULL || context == Py_None) {
        h->context = PyContext_CopyCurrent();
        if (h->context == NULL)
            goto error;
    } else {
        Py_INCREF(context);
        h->context = context;
    }
    Py_INCREF(callback);
    h->callback = callback;
    return h;
error:
    Py_DECREF(h);
    return NULL;
}

PyObject *handle_new(module_state *state, PyObject *callback, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *context)
{
    handle *h = handle_alloc(state->event_loop.handle, callback, args, nargs, context);
    if (h == NULL)
        return NULL;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

/* ---- timers ---- */

static void timer_link(EventLoopCoreObject *core, timer_handle *t)
{
    t->prev = NULL;
    t->next = core->timers;
    if (core->timers != NULL)
        core->timers->prev = t;
    core->timers = t;
    t->armed = 1;
}

static void timer_unlink(timer_handle *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        t->core->timers = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->armed = 0;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    timer_handle *t = (timer_handle *)((char *)w - offsetof(timer_handle, timer));
    /* libev counts a delay from the time it cached at the start of the
     * iteration, so a timer can come due a little early; asyncio never runs
     * one before its time. */
    double left = t->when - monotonic_now();
    if (left > 0) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    EventLoopCoreObject *core = t->core;
    timer_unlink(t);
    if (ready_push(&core->ready, (PyObject *)t) < 0)
        core_fail(core);
    Py_DECREF(t); /* libev's */
}

PyObject *timer_handle_new(EventLoopCoreObject *core, double when, PyObject *callback, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *context)
{
    timer_handle *t = (timer_handle *)handle_alloc(core->state->event_loop.timer, callback, args, nargs, context);
    if (t == NULL)
        return NULL;
    Py_INCREF(core);
    t->core = core;
    t->when = when;
    double after = when - monotonic_now();
    ev_timer_init(&t->timer, on_timer, after > 0 ? after : 0., 0.);
    ev_timer_start(core->loop, &t->timer);
    timer_link(core, t);
    Py_INCREF(t); /* libev's, while armed */
    PyObject_GC_Track(t);
    return (PyObject *)t;
}

void timers_disarm_all(EventLoopCoreObject *core)
{
    while (core->timers != NULL) {
        timer_handle *t = core->timers;
        ev_timer_stop(core->loop, &t->timer);
        timer_unlink(t);
        Py_DECREF(t);
    }
}

int timers_traverse(EventLoopCoreObject *core, visitproc visit, void *arg)
{
    for (timer_handle *t = core->timers; t != NULL; t = t->next)
        Py_VISIT((PyObject *)t);
    return 0;
}

/* ---- running ---- */

int handle_is_cancelled(module_state *state, PyObject *h)
{
    if (Py_IS_TYPE(h, state->event_loop.handle) || Py_IS_TYPE(h, state->event_loop.timer))
        return ((handle *)h)->cancelled;
    PyObject *cancelled = PyObject_GetAttr(h, state->str__cancelled);
    if (cancelled == NULL)
        return -1;
    int result = PyObject_IsTrue(cancelled);
    Py_DECREF(cancelled);
    return result;
}

static int is_fatal(void)
{
    return PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
}

/* `callback` of `h` raised: to the loop's exception handler, as asyncio's
 * Handle._run does. -1 (the exception set) when it must end the run. */
static int report_exception(EventLoopCoreObject *core, PyObject *h, PyObject *callback)
{
    if (is_fatal())
        return -1;
    PyObject *exception = exception_take();
    PyObject *context = NULL, *result = NULL;
    PyObject *message = PyUnicode_FromFormat("Exception in callback %R", callback);
    if (message == NULL)
        goto cleanup;
    context = Py_BuildValue("{sOsOsO}", "message", message, "exception", exception, "handle", h);
    if (context == NULL)
        goto cleanup;
    result = PyObject_CallMethod((PyObject *)core, "call_exception_handler", "O", context);
cleanup:;
    int status = 0;
    if (result == NULL) {
        if (is_fatal())
            status = -1;
        else
            PyErr_WriteUnraisable((PyObject *)core);
    }
    Py_XDECREF(result);
    Py_XDECREF(context);
    Py_XDECREF(message);
    Py_DECREF(exception);
    return status;
}

/* An asyncio.Handle (an io watcher's reader or writer): its _run() reports
 * exceptions itself and raises only what must end the run. */
static int run_asyncio_handle(EventLoopCoreObject *core, PyObject *h)
{
    int cancelled = handle_is_cancelled(core->state, h);
    if (cancelled != 0)
        return cancelled < 0 ? -1 : 0;
    PyObject *result = PyObject_CallMethodNoArgs(h, core->state->str__run);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

int handle_run(EventLoopCoreObject *core, PyObject *o)
{
    if (!Py_IS_TYPE(o, core->state->event_loop.handle) && !Py_IS_TYPE(o, core->state->event_loop.timer))
        return run_asyncio_handle(core, o);
    handle *h = (handle *)o;
    if (h->cancelled || h->callback == NULL)
        return 0;
    /* The callback may cancel its own handle, which drops these. */
    PyObject *callback = h->callback, *arg = h->arg, *args = h->args, *context = h->context;
    Py_INCREF(callback);
    Py_XINCREF(arg);
    Py_XINCREF(args);
    Py_INCREF(context);
    PyObject *result = NULL;
    if (PyContext_Enter(context) == 0) {
        if (arg != NULL)
            result = PyObject_Vectorcall(callback, &arg, 1, NULL);
        else if (args != NULL)
            result = PyObject_Vectorcall(callback, ((PyTupleObject *)args)->ob_item, PyTuple_GET_SIZE(args), NULL);
        else
            result = PyObject_Vectorcall(callback, NULL, 0, NULL);
        if (PyContext_Exit(context) < 0)
            Py_CLEAR(result);
    }
    int status = 0;
    if (result != NULL)
        Py_DECREF(result);
    else
        status = report_exception(core, o, callback);
    Py_DECREF(context);
    Py_XDECREF(args);
    Py_XDECREF(arg);
    Py_DECREF(callback);
    return status;
}

/* ---- the Python types ---- */

static PyObject *handle_refuse_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: the event loop makes them", type->tp_name);
    return NULL;
}

static void handle_drop_call(handle *h)
{
    Py_CLEAR(h->callback);
    Py_CLEAR(h->arg);
    Py_CLEAR(h->args);
}

static PyObject *handle_cancel(handle *h, PyObject *unused)
{
    (void)unused;
    if (!h->cancelled) {
        h->cancelled = 1;
        handle_drop_call(h); /* as asyncio does: what it refers to can go now */
    }
    Py_RETURN_NONE;
}

static PyObject *timer_cancel(timer_handle *t, PyObject *unused)
{
    if (t->armed) {
        ev_timer_stop(t->core->loop, &t->timer);
        timer_unlink(t);
        Py_DECREF(t); /* libev's; the caller holds another */
    }
    return handle_cancel(&t->base, unused);
}

static PyObject *handle_cancelled(handle *h, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(h->cancelled);
}

static PyObject *handle_get_context(handle *h, PyObject *unused)
{
    (void)unused;
    Py_INCREF(h->context);
    return h->context;
}

static PyObject *timer_when(timer_handle *t, PyObject *unused)
{
    (void)unused;
    return PyFloat_FromDouble(t->when);
}

/* asyncio's call_soon_threadsafe reads it; only asyncio's debug mode keeps one. */
static PyObject *handle_source_traceback(handle *h, void *closure)
{
    (void)h;
    (void)closure;
    Py_RETURN_NONE;
}

static PyObject *handle_repr(handle *h)
{
    const char *name = Py_TYPE(h)->tp_name;
    if (h->cancelled)
        return PyUnicode_FromFormat("<%s cancelled>", name);
    return PyUnicode_FromFormat("<%s %R>", name, h->callback);
}

static PyObject *timer_repr(timer_handle *t)
{
    PyObject *when = PyFloat_FromDouble(t->when);
    if (when == NULL)
        return NULL;
    PyObject *repr = t->base.cancelled
                         ? PyUnicode_FromFormat("<%s when=%R cancelled>", Py_TYPE(t)->tp_name, when)
                         : PyUnicode_FromFormat("<%s when=%R %R>", Py_TYPE(t)->tp_name, when, t->base.callback);
    Py_DECREF(when);
    return repr;
}

static int handle_traverse(handle *h, visitproc visit, void *arg)
{
#if PY_VERSION_HEX >= 0x03090000
    Py_VISIT(Py_TYPE(h));
#endif
    Py_VISIT(h->callback);
    Py_VISIT(h->arg);
    Py_VISIT(h->args);
    Py_VISIT(h->context);
    return 0;
}

static int timer_traverse(timer_handle *t, visitproc visit, void *arg)
{
    Py_VISIT((PyObject *)t->core);
    return handle_traverse(&t->base, visit, arg);
}

/* An armed timer keeps its loop: the loop's clear disarms it. */
static int handle_clear(handle *h)
{
    handle_drop_call(h);
    Py_CLEAR(h->context);
    return 0;
}

static void handle_dealloc(handle *h)
{
    PyTypeObject *type = Py_TYPE(h);
    PyObject_GC_UnTrack(h);
    handle_clear(h);
    type->tp_free((PyObject *)h);
    Py_DECREF(type);
}

static void timer_dealloc(timer_handle *t)
{
    PyObject_GC_UnTrack(t);
    Py_CLEAR(t->core); /* never armed here: libev's reference would be held */
    handle_dealloc(&t->base);
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)handle_cancel, METH_NOARGS, "cancel()\n\nDo not run the callback."},
    {"cancelled", (PyCFunction)handle_cancelled, METH_NOARGS, "cancelled() -> bool"},
    {"get_context", (PyCFunction)handle_get_context, METH_NOARGS, "get_context()\n\nThe context it runs in."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef timer_methods[] = {
    {"cancel", (PyCFunction)timer_cancel, METH_NOARGS, "cancel()\n\nStop the timer; do not run the callback."},
    {"when", (PyCFunction)timer_when, METH_NOARGS, "when() -> float\n\nWhen it runs, on loop.time()'s clock."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"_source_traceback", (getter)handle_source_traceback, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_new, handle_refuse_new},
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, handle_repr},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_doc, "A callback the event loop runs soon (asyncio.Handle's API)."},
    {0, NULL},
};

static PyType_Spec handle_spec = {
    .name = "ursa._core.Handle",
    .basicsize = sizeof(handle),
    /* BASETYPE only so that TimerHandle can derive from it. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = handle_slots,
};

static PyType_Slot timer_slots[] = {
    {Py_tp_dealloc, timer_dealloc},
    {Py_tp_traverse, timer_traverse},
    {Py_tp_repr, timer_repr},
    {Py_tp_methods, timer_methods},
    {Py_tp_doc, "A callback the event loop runs at a time (asyncio.TimerHandle's API): an ev_timer."},
    {0, NULL},
};

static PyType_Spec timer_spec = {
    .name = "ursa._core.TimerHandle",
    .basicsize = sizeof(timer_handle),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = timer_slots,
};

PyType_Spec *handle_type_spec(void)
{
    return &handle_spec;
}

PyType_Spec *timer_handle_type_spec(void)
{
    return &timer_spec;
}
