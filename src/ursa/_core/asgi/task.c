#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/task.h"

#include "asgi/asgi.h"
#include "common/compat.h"
#include "common/exceptions.h"

#if ASGI_SUPPORTED

/* asyncio.Future's C struct is private: the task's own fields follow it,
 * at the base's size rounded up to a pointer's alignment. */
typedef struct task_fields {
    module_state *state;
    PyObject *loop;
    PyObject *coro;
    PyObject *context;        /* the copy every step runs in */
    PyObject *name;           /* NULL: the default */
    PyObject *fut_waiter;     /* what the coroutine waits on */
    PyObject *cancel_message;
    PyObject *wakeup;         /* this task's _wakeup, bound the first time it waits */
    PyObject *step;           /* its _step, bound the first time a step is scheduled */
    PyObject *owner;          /* until the end, told through done_hook */
    task_done_hook done_hook;
    Py_ssize_t cancels_requested;
    unsigned must_cancel : 1;
    unsigned done : 1;
} task_fields;

static Py_ssize_t fields_offset(const PyTypeObject *base)
{
    Py_ssize_t align = (Py_ssize_t)sizeof(void *);
    return (base->tp_basicsize + align - 1) / align * align;
}

static inline task_fields *fields_of(PyObject *task)
{
    return (task_fields *)((char *)task + fields_offset(Py_TYPE(task)->tp_base));
}

static inline request_task_kit *kit_of(task_fields *f)
{
    return &f->state->task_kit;
}

static int task_step(PyObject *self, PyObject *exc);

/* `*failure` stays the first exception; a later one is dropped. */
static void keep_first_failure(PyObject **failure)
{
    if (*failure == NULL)
        *failure = exception_take();
    else
        PyErr_Clear();
}

/* ---- current_task() and all_tasks() ---- */

/* Make the task current for its loop; `*previous` is what was (3.12's
 * swap lets eager tasks nest), to give back to leave(). */
static int enter(PyObject *self, task_fields *f, PyObject **previous)
{
    request_task_kit *kit = kit_of(f);
    PyObject *args[2] = {f->loop, self};
    if (kit->swap_current_task != NULL) {
        *previous = PyObject_Vectorcall(kit->swap_current_task, args, 2, NULL);
        return *previous == NULL ? -1 : 0;
    }
    *previous = NULL;
    PyObject *ok = PyObject_Vectorcall(kit->enter_task, args, 2, NULL);
    Py_XDECREF(ok);
    return ok == NULL ? -1 : 0;
}

/* Steals `previous`. */
static int leave(PyObject *self, task_fields *f, PyObject *previous)
{
    request_task_kit *kit = kit_of(f);
    PyObject *was;
    if (kit->swap_current_task != NULL) {
        PyObject *args[2] = {f->loop, previous};
        was = PyObject_Vectorcall(kit->swap_current_task, args, 2, NULL);
        Py_DECREF(previous);
    } else {
        PyObject *args[2] = {f->loop, self};
        was = PyObject_Vectorcall(kit->leave_task, args, 2, NULL);
    }
    Py_XDECREF(was);
    return was == NULL ? -1 : 0;
}

static int call_registry(PyObject *function, PyObject *self)
{
    if (function == NULL)
        return 0;
    PyObject *ok = PyObject_CallOneArg(function, self);
    Py_XDECREF(ok);
    return ok == NULL ? -1 : 0;
}

/* all_tasks() lists a task in its first step from 3.12's set of eager
 * tasks: _register_eager_task() adds to that set, which _asyncio shares;
 * added here without the two calls. */
static int list_as_eager(request_task_kit *kit, PyObject *self)
{
    if (kit->eager_tasks != NULL)
        return PySet_Add(kit->eager_tasks, self);
    return call_registry(kit->register_task, self);
}

static int unlist_as_eager(request_task_kit *kit, PyObject *self)
{
    if (kit->eager_tasks == NULL)
        return 0; /* before 3.12 it was listed as any task, for good */
    if (PySet_Discard(kit->eager_tasks, self) < 0)
        return -1;
    /* A task that waits now is listed as asyncio lists its tasks. */
    return request_task_is_done(self) ? 0 : call_registry(kit->register_task, self);
}

/* ---- the end ---- */

/* Settle the future as the coroutine ended, then tell the owner. `value`
 * is the result, the exception, or the cancel message (NULL for none). */
static int finish(PyObject *self, task_fields *f, task_outcome outcome, PyObject *value)
{
    request_task_kit *kit = kit_of(f);
    PyObject *args[2] = {self, value};
    PyObject *ok;
    if (outcome == TASK_RETURNED)
        ok = PyObject_Vectorcall(kit->future_set_result, args, 2, NULL);
    else if (outcome == TASK_RAISED)
        ok = PyObject_Vectorcall(kit->future_set_exception, args, 2, NULL);
    else
        ok = PyObject_Vectorcall(kit->future_cancel, args, value != NULL ? 2 : 1, NULL);
    /* Settling fails only when code outside settled the future through
     * asyncio.Future's own methods: the coroutine has ended all the same,
     * and its owner is told so. */
    PyObject *failure = ok == NULL ? exception_take() : NULL;
    Py_XDECREF(ok);
    f->done = 1;
    Py_CLEAR(f->fut_waiter);
    Py_CLEAR(f->wakeup);
    Py_CLEAR(f->step);
    PyObject *owner = f->owner;
    f->owner = NULL;
    if (owner != NULL) {
        /* The owner reports an exception: the future need not log it as never retrieved. */
        if (outcome == TASK_RAISED && failure == NULL &&
            PyObject_SetAttr(self, f->state->str__log_traceback, Py_False) < 0)
            PyErr_Clear();
        f->done_hook(owner, self, outcome, outcome == TASK_RAISED ? value : NULL);
        Py_DECREF(owner);
    }
    if (failure == NULL)
        return 0;
    exception_raise(failure);
    return -1;
}

/* The message of a CancelledError, as Future.cancel(msg) takes it: its
 * single argument, or NULL. Borrowed. */
static PyObject *cancel_message_of(PyObject *error)
{
    PyObject *args = ((PyBaseExceptionObject *)error)->args;
    if (args != NULL && PyTuple_Check(args) && PyTuple_GET_SIZE(args) == 1)
        return PyTuple_GET_ITEM(args, 0);
    return NULL;
}

/* ---- stepping ---- */

/* loop.call_soon(self._step[, exc], context=self's context). */
static int schedule_step(PyObject *self, task_fields *f, PyObject *exc)
{
    if (f->step == NULL) {
        PyObject *bound = PyObject_GetAttrString(self, "_step");
        if (bound == NULL)
            return -1;
        f->step = bound;
    }
    PyObject *args[4] = {f->loop, f->step, exc, f->context};
    size_t nargs = exc != NULL ? 3 : 2;
    if (exc == NULL)
        args[2] = f->context;
    PyObject *handle = PyObject_VectorcallMethod(f->state->str_call_soon, args, nargs, kit_of(f)->context_keyword);
    Py_XDECREF(handle);
    return handle == NULL ? -1 : 0;
}

/* A RuntimeError(`format` % (self, result)) thrown into the coroutine at
 * its next step, as asyncio does with what it cannot wait on. */
static int refuse_yield(PyObject *self, task_fields *f, const char *format, PyObject *result)
{
    PyObject *message = PyUnicode_FromFormat(format, self, result);
    PyObject *error = message != NULL ? PyObject_CallOneArg(PyExc_RuntimeError, message) : NULL;
    Py_XDECREF(message);
    if (error == NULL)
        return -1;
    int status = schedule_step(self, f, error);
    Py_DECREF(error);
    return status;
}

/* `*value` is the attribute, or NULL when it has none. 0, or -1. */
static int optional_attribute(PyObject *object, PyObject *name, PyObject **value)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(object, name, value) < 0 ? -1 : 0;
#else
    *value = PyObject_GetAttr(object, name);
    if (*value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return *value == NULL ? -1 : 0;
#endif
}

/* The coroutine yielded `result`: wait for it to be done, as Task.__step
 * does with a future; anything else is refused. */
static int wait_on(PyObject *self, task_fields *f, PyObject *result)
{
    module_state *state = f->state;
    if (result == Py_None) /* a bare yield: one turn of the loop */
        return schedule_step(self, f, NULL);
    PyObject *blocking;
    if (optional_attribute(result, state->str__asyncio_future_blocking, &blocking) < 0)
        return -1;
    if (blocking == NULL)
        return refuse_yield(self, f, "Task %R got bad yield: %R", result);
    int is_blocking = PyObject_IsTrue(blocking);
    Py_DECREF(blocking);
    if (is_blocking < 0)
        return -1;
    PyObject *loop = PyObject_CallMethodNoArgs(result, state->str_get_loop);
    if (loop == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear(); /* a future without get_loop(), as asyncio's _get_loop allows */
        loop = PyObject_GetAttrString(result, "_loop");
    }
    if (loop == NULL)
        return -1;
    int same_loop = loop == f->loop;
    Py_DECREF(loop);
    if (!same_loop)
        return refuse_yield(self, f, "Task %R got Future %R attached to a different loop", result);
    if (!is_blocking)
        return refuse_yield(self, f, "yield was used instead of yield from in task %R with %R", result);
    if (result == self)
        return refuse_yield(self, f, "Task cannot await on itself: %R (%R)", result);
    if (PyObject_SetAttr(result, state->str__asyncio_future_blocking, Py_False) < 0)
        return -1;
    if (f->wakeup == NULL) {
        PyObject *bound = PyObject_GetAttrString(self, "_wakeup");
        if (bound == NULL)
            return -1;
        f->wakeup = bound;
    }
    PyObject *args[3] = {result, f->wakeup, f->context};
    PyObject *ok = PyObject_VectorcallMethod(state->str_add_done_callback, args, 2, kit_of(f)->context_keyword);
    if (ok == NULL)
        return -1;
    Py_DECREF(ok);
    Py_INCREF(result);
    f->fut_waiter = result;
    if (f->must_cancel) {
        PyObject *cancel_args[2] = {result, f->cancel_message != NULL ? f->cancel_message : Py_None};
        PyObject *cancelled = PyObject_VectorcallMethod(state->str_cancel, cancel_args, 1, kit_of(f)->msg_keyword);
        if (cancelled == NULL)
            return -1;
        if (cancelled == Py_True)
            f->must_cancel = 0;
        Py_DECREF(cancelled);
    }
    return 0;
}

/* Send None, or throw `exc`, into the coroutine, and settle what it did. */
static int run(PyObject *self, task_fields *f, PyObject *exc)
{
    PyObject *result = NULL;
    PySendResult sent;
    if (exc == NULL) {
        sent = PyIter_Send(f->coro, Py_None, &result);
    } else {
        result = PyObject_CallMethodOneArg(f->coro, f->state->str_throw, exc);
        sent = result != NULL ? PYGEN_NEXT : PYGEN_ERROR;
        if (sent == PYGEN_ERROR && PyErr_ExceptionMatches(PyExc_StopIteration)) {
            PyObject *stop = exception_take();
            result = ((PyStopIterationObject *)stop)->value;
            Py_INCREF(result);
            Py_DECREF(stop);
            sent = PYGEN_RETURN;
        }
    }
    int status;
    if (sent == PYGEN_RETURN) {
        if (f->must_cancel) {
            f->must_cancel = 0;
            status = finish(self, f, TASK_CANCELLED, f->cancel_message);
        } else {
            status = finish(self, f, TASK_RETURNED, result);
        }
    } else if (sent == PYGEN_ERROR) {
        PyObject *error = exception_take();
        if (error == NULL) {
            PyErr_SetString(PyExc_SystemError, "the coroutine failed without an exception");
            return -1;
        }
        if (PyErr_GivenExceptionMatches(error, kit_of(f)->cancelled_error))
            status = finish(self, f, TASK_CANCELLED, cancel_message_of(error));
        else
            status = finish(self, f, TASK_RAISED, error);
        Py_DECREF(error);
    } else {
        status = wait_on(self, f, result);
    }
    Py_XDECREF(result);
    return status;
}

/* One step: 0, or -1 with an exception when the task itself failed (what
 * the coroutine raises ends the task instead). */
static int task_step(PyObject *self, PyObject *exc)
{
    task_fields *f = fields_of(self);
    if (f->done) {
        PyErr_Format(PyExc_RuntimeError, "step of a task that is done: %R", self);
        return -1;
    }
    PyObject *cancelled = NULL;
    if (f->must_cancel) {
        if (exc == NULL || !PyErr_GivenExceptionMatches(exc, kit_of(f)->cancelled_error)) {
            cancelled = f->cancel_message != NULL
                            ? PyObject_CallOneArg(kit_of(f)->cancelled_error, f->cancel_message)
                            : PyObject_CallNoArgs(kit_of(f)->cancelled_error);
            if (cancelled == NULL)
                return -1;
            exc = cancelled;
        }
        f->must_cancel = 0;
    }
    Py_CLEAR(f->fut_waiter);
    PyObject *previous;
    if (enter(self, f, &previous) < 0) {
        Py_XDECREF(cancelled);
        return -1;
    }
    Py_INCREF(self); /* the step may let go of every other reference */
    int status = run(self, f, exc);
    PyObject *error = status < 0 ? exception_take() : NULL;
    if (leave(self, f, previous) < 0) {
        keep_first_failure(&error);
        status = -1;
    }
    if (error != NULL)
        exception_raise(error);
    Py_DECREF(self);
    Py_XDECREF(cancelled);
    return status;
}

/* 1 when a cancel was requested, 0 when the task is done, -1. */
static int cancel(PyObject *self, PyObject *msg)
{
    task_fields *f = fields_of(self);
    if (f->done)
        return 0;
    f->cancels_requested++;
    if (f->fut_waiter != NULL) {
        PyObject *args[2] = {f->fut_waiter, msg != NULL ? msg : Py_None};
        PyObject *cancelled = PyObject_VectorcallMethod(f->state->str_cancel, args, 1, kit_of(f)->msg_keyword);
        if (cancelled == NULL)
            return -1;
        int was = cancelled == Py_True;
        Py_DECREF(cancelled);
        if (was)
            return 1;
    }
    f->must_cancel = 1;
    Py_XINCREF(msg);
    Py_XSETREF(f->cancel_message, msg);
    return 1;
}

/* ---- the C API ---- */


PyObject *request_task_start(module_state *state, PyObject *loop, PyObject *coroutine, PyObject *owner,
                             task_done_hook done)
{
    request_task_kit *kit = &state->task_kit;
    if (!PyCoro_CheckExact(coroutine)) {
        PyObject *is = PyObject_CallOneArg(kit->iscoroutine, coroutine);
        int truth = is != NULL ? PyObject_IsTrue(is) : -1;
        Py_XDECREF(is);
        if (truth <= 0) {
            if (truth == 0)
                PyErr_Format(PyExc_TypeError, "a coroutine was expected, got %R", coroutine);
            return NULL;
        }
    }
    PyObject *self = kit->type->tp_alloc(kit->type, 0);
    if (self == NULL)
        return NULL;
    PyObject *no_args = PyTuple_New(0);
    /* Future(): the running loop is `loop`, asgi_server_start entered it. */
    int initialized = no_args != NULL ? kit->future_type->tp_init(self, no_args, NULL) : -1;
    Py_XDECREF(no_args);
    if (initialized < 0)
        goto error;
    task_fields *f = fields_of(self);
    f->state = state;
    Py_INCREF(loop);
    f->loop = loop;
    Py_INCREF(coroutine);
    f->coro = coroutine;
    if ((f->context = PyContext_CopyCurrent()) == NULL)
        goto error;
    Py_INCREF(owner);
    f->owner = owner;
    f->done_hook = done;
    /* Its first step now, as 3.12's eager_start: an app that never waits is
     * done when this returns; all_tasks() lists it meanwhile. */
    if (list_as_eager(kit, self) < 0)
        goto error;
    int entered = PyContext_Enter(f->context) == 0;
    PyObject *failure = entered && task_step(self, NULL) == 0 ? NULL : exception_take();
    /* Out of the context and of the eager set whatever happened: the set
     * would hold the task for good. */
    if (entered && PyContext_Exit(f->context) < 0)
        keep_first_failure(&failure);
    if (unlist_as_eager(kit, self) < 0)
        keep_first_failure(&failure);
    if (failure != NULL) {
        exception_raise(failure);
        if (!f->done)
            goto error;
        /* It ended, and its owner was told: what failed after is only logged. */
        log_error(state, "ursa: the ASGI application's task ended with an error of its own");
    }
    return self;
error:
    if (self != NULL) {
        Py_CLEAR(fields_of(self)->owner); /* not told: the caller has the exception */
        Py_DECREF(self);
    }
    return NULL;
}

int request_task_is_done(PyObject *task)
{
    return fields_of(task)->done;
}

int request_task_cancel(PyObject *task)
{
    return cancel(task, NULL) < 0 ? -1 : 0;
}

/* ---- the Python methods ---- */

static PyObject *method_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "_step() takes at most one argument");
        return NULL;
    }
    if (task_step(self, nargs == 1 && args[0] != Py_None ? args[0] : NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *method_wakeup(PyObject *self, PyObject *future)
{
    PyObject *result = PyObject_CallMethodNoArgs(future, fields_of(self)->state->str_result);
    int status;
    if (result == NULL) {
        PyObject *error = exception_take();
        status = task_step(self, error);
        Py_XDECREF(error);
    } else {
        Py_DECREF(result);
        status = task_step(self, NULL);
    }
    if (status < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *method_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *msg = nargs > 0 ? args[0] : NULL;
    Py_ssize_t keywords = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 1 || keywords > 1 || (keywords == 1 && nargs == 1) ||
        (keywords == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "msg") != 0)) {
        PyErr_SetString(PyExc_TypeError, "cancel() takes one optional argument, msg");
        return NULL;
    }
    if (keywords == 1)
        msg = args[0];
    int requested = cancel(self, msg == Py_None ? NULL : msg);
    if (requested < 0)
        return NULL;
    return PyBool_FromLong(requested);
}

static PyObject *method_cancelling(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromSsize_t(fields_of(self)->cancels_requested);
}

static PyObject *method_uncancel(PyObject *self, PyObject *unused)
{
    (void)unused;
    task_fields *f = fields_of(self);
    if (f->cancels_requested > 0) {
        f->cancels_requested--;
#if PY_VERSION_HEX >= 0x030D0000
        if (f->cancels_requested == 0)
            f->must_cancel = 0;
#endif
    }
    return PyLong_FromSsize_t(f->cancels_requested);
}

static PyObject *or_none(PyObject *value)
{
    if (value == NULL)
        Py_RETURN_NONE;
    Py_INCREF(value);
    return value;
}

static PyObject *method_get_coro(PyObject *self, PyObject *unused)
{
    (void)unused;
    return or_none(fields_of(self)->coro);
}

static PyObject *method_get_context(PyObject *self, PyObject *unused)
{
    (void)unused;
    return or_none(fields_of(self)->context);
}

static PyObject *method_get_name(PyObject *self, PyObject *unused)
{
    (void)unused;
    task_fields *f = fields_of(self);
    return or_none(f->name != NULL ? f->name : kit_of(f)->default_name);
}

static PyObject *method_set_name(PyObject *self, PyObject *value)
{
    PyObject *name = PyObject_Str(value);
    if (name == NULL)
        return NULL;
    Py_XSETREF(fields_of(self)->name, name);
    Py_RETURN_NONE;
}

static PyObject *method_get_stack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"limit", NULL};
    PyObject *limit = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$O:get_stack", keywords, &limit))
        return NULL;
    return PyObject_CallMethod(kit_of(fields_of(self))->base_tasks, "_task_get_stack", "OO", self, limit);
}

static PyObject *method_print_stack(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"limit", "file", NULL};
    PyObject *limit = Py_None, *file = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OO:print_stack", keywords, &limit, &file))
        return NULL;
    return PyObject_CallMethod(kit_of(fields_of(self))->base_tasks, "_task_print_stack", "OOO", self, limit, file);
}

static PyObject *method_refuse_settling(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyErr_SetString(PyExc_RuntimeError, "Task does not support set_result() or set_exception()");
    return NULL;
}

static PyObject *get_coro_field(PyObject *self, void *unused)
{
    (void)unused;
    return or_none(fields_of(self)->coro);
}

static PyObject *get_fut_waiter(PyObject *self, void *unused)
{
    (void)unused;
    return or_none(fields_of(self)->fut_waiter);
}

static PyObject *get_must_cancel(PyObject *self, void *unused)
{
    (void)unused;
    return PyBool_FromLong(fields_of(self)->must_cancel);
}

static PyObject *task_repr(PyObject *self)
{
    task_fields *f = fields_of(self);
    PyObject *state = PyObject_GetAttr(self, f->state->str__state);
    if (state == NULL)
        return NULL;
    PyObject *repr = PyUnicode_FromFormat("<%s %S name=%R coro=%R>", Py_TYPE(self)->tp_name, state,
                                          f->name != NULL ? f->name : kit_of(f)->default_name,
                                          f->coro != NULL ? f->coro : Py_None);
    Py_DECREF(state);
    return repr;
}

/* ---- the type ---- */

static int task_traverse(PyObject *self, visitproc visit, void *arg)
{
    task_fields *f = fields_of(self);
    Py_VISIT(f->loop);
    Py_VISIT(f->coro);
    Py_VISIT(f->context);
    Py_VISIT(f->name);
    Py_VISIT(f->fut_waiter);
    Py_VISIT(f->cancel_message);
    Py_VISIT(f->wakeup);
    Py_VISIT(f->step);
    Py_VISIT(f->owner);
    PyTypeObject *base = Py_TYPE(self)->tp_base;
    if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE))
        Py_VISIT(Py_TYPE(self)); /* a heap base's traverse visits it */
    return base->tp_traverse(self, visit, arg);
}

static void clear_fields(task_fields *f)
{
    Py_CLEAR(f->loop);
    Py_CLEAR(f->coro);
    Py_CLEAR(f->context);
    Py_CLEAR(f->name);
    Py_CLEAR(f->fut_waiter);
    Py_CLEAR(f->cancel_message);
    Py_CLEAR(f->wakeup);
    Py_CLEAR(f->step);
    Py_CLEAR(f->owner);
}

static int task_clear(PyObject *self)
{
    clear_fields(fields_of(self));
    return Py_TYPE(self)->tp_base->tp_clear(self);
}

static void task_dealloc(PyObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    /* asyncio.Future leaves its finalizer to a subclass's dealloc. */
    if (type->tp_finalize != NULL && PyObject_CallFinalizerFromDealloc(self) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(self);
    clear_fields(fields_of(self));
    PyTypeObject *base = type->tp_base;
    base->tp_dealloc(self);
    if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE))
        Py_DECREF(type); /* a heap base's dealloc lets go of the type itself */
}

static PyMethodDef task_methods[] = {
    {"cancel", (PyCFunction)(void (*)(void))method_cancel, METH_FASTCALL | METH_KEYWORDS,
     "cancel(msg=None) -> bool\n\nAsk the coroutine to stop: CancelledError at its next wait."},
    {"cancelling", method_cancelling, METH_NOARGS, "cancelling() -> int\n\nCancels requested, less uncancel()s."},
    {"uncancel", method_uncancel, METH_NOARGS, "uncancel() -> int"},
    {"get_coro", method_get_coro, METH_NOARGS, "get_coro()"},
    {"get_context", method_get_context, METH_NOARGS, "get_context()"},
    {"get_name", method_get_name, METH_NOARGS, "get_name() -> str"},
    {"set_name", method_set_name, METH_O, "set_name(value)"},
    {"get_stack", (PyCFunction)(void (*)(void))method_get_stack, METH_VARARGS | METH_KEYWORDS,
     "get_stack(*, limit=None)"},
    {"print_stack", (PyCFunction)(void (*)(void))method_print_stack, METH_VARARGS | METH_KEYWORDS,
     "print_stack(*, limit=None, file=None)"},
    {"set_result", method_refuse_settling, METH_O, "Refused: a task's result is its coroutine's."},
    {"set_exception", method_refuse_settling, METH_O, "Refused: a task's exception is its coroutine's."},
    {"_step", (PyCFunction)(void (*)(void))method_step, METH_FASTCALL, "_step(exc=None)"},
    {"_wakeup", method_wakeup, METH_O, "_wakeup(future)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef task_getset[] = {
    {"_coro", get_coro_field, NULL, NULL, NULL},
    {"_fut_waiter", get_fut_waiter, NULL, NULL, NULL},
    {"_must_cancel", get_must_cancel, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot task_slots[] = {
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, task_dealloc},
    {Py_tp_traverse, task_traverse},
    {Py_tp_clear, task_clear},
    {Py_tp_repr, task_repr},
    {Py_tp_methods, task_methods},
    {Py_tp_getset, task_getset},
    {Py_tp_doc, "An ASGI request's task: asyncio.Task's protocol, in C."},
    {0, NULL},
};

static PyObject *attribute_of(PyObject *module, const char *name, int required)
{
    PyObject *value = PyObject_GetAttrString(module, name);
    if (value == NULL && !required && PyErr_ExceptionMatches(PyExc_AttributeError))
        PyErr_Clear();
    return value;
}

int request_task_kit_init(module_state *state)
{
    request_task_kit *kit = &state->task_kit;
    if (kit->type != NULL)
        return 0;
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *accelerated = asyncio != NULL ? PyImport_ImportModule("_asyncio") : NULL;
    if (accelerated == NULL)
        goto error;
    kit->future_type = (PyTypeObject *)attribute_of(accelerated, "Future", 1);
    if (kit->future_type == NULL)
        goto error;
    if (!PyType_Check(kit->future_type)) {
        PyErr_SetString(PyExc_TypeError, "_asyncio.Future is not a type");
        goto error;
    }
    if ((kit->future_set_result = attribute_of((PyObject *)kit->future_type, "set_result", 1)) == NULL ||
        (kit->future_set_exception = attribute_of((PyObject *)kit->future_type, "set_exception", 1)) == NULL ||
        (kit->future_cancel = attribute_of((PyObject *)kit->future_type, "cancel", 1)) == NULL ||
        (kit->register_task = attribute_of(accelerated, "_register_task", 1)) == NULL ||
        (kit->cancelled_error = attribute_of(asyncio, "CancelledError", 1)) == NULL ||
        (kit->iscoroutine = attribute_of(asyncio, "iscoroutine", 1)) == NULL ||
        (kit->base_tasks = PyImport_ImportModule("asyncio.base_tasks")) == NULL)
        goto error;
    kit->swap_current_task = attribute_of(accelerated, "_swap_current_task", 0);
    kit->eager_tasks = attribute_of(accelerated, "_eager_tasks", 0);
    if (PyErr_Occurred())
        goto error;
    if (kit->eager_tasks != NULL && !PySet_CheckExact(kit->eager_tasks)) {
        PyErr_SetString(PyExc_TypeError, "_asyncio._eager_tasks is not a set");
        goto error;
    }
    if (kit->swap_current_task == NULL &&
        ((kit->enter_task = attribute_of(accelerated, "_enter_task", 1)) == NULL ||
         (kit->leave_task = attribute_of(accelerated, "_leave_task", 1)) == NULL))
        goto error;
    if ((kit->context_keyword = Py_BuildValue("(O)", state->str_context)) == NULL ||
        (kit->msg_keyword = Py_BuildValue("(O)", state->str_msg)) == NULL ||
        (kit->default_name = PyUnicode_InternFromString("ursa: ASGI request")) == NULL)
        goto error;
    PyType_Spec spec = {
        .name = "ursa._core.RequestTask",
        .basicsize = (int)(fields_offset(kit->future_type) + (Py_ssize_t)sizeof(task_fields)),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
        .slots = task_slots,
    };
    PyObject *bases = PyTuple_Pack(1, kit->future_type);
    kit->type = bases != NULL ? (PyTypeObject *)PyType_FromSpecWithBases(&spec, bases) : NULL;
    Py_XDECREF(bases);
    if (kit->type == NULL)
        goto error;
    Py_DECREF(asyncio);
    Py_DECREF(accelerated);
    return 0;
error:
    Py_XDECREF(asyncio);
    Py_XDECREF(accelerated);
    request_task_kit_clear(state);
    return -1;
}

int request_task_kit_traverse(module_state *state, visitproc visit, void *arg)
{
    request_task_kit *kit = &state->task_kit;
    Py_VISIT(kit->type);
    Py_VISIT(kit->future_type);
    Py_VISIT(kit->future_set_result);
    Py_VISIT(kit->future_set_exception);
    Py_VISIT(kit->future_cancel);
    Py_VISIT(kit->swap_current_task);
    Py_VISIT(kit->enter_task);
    Py_VISIT(kit->leave_task);
    Py_VISIT(kit->register_task);
    Py_VISIT(kit->eager_tasks);
    Py_VISIT(kit->cancelled_error);
    Py_VISIT(kit->iscoroutine);
    Py_VISIT(kit->base_tasks);
    Py_VISIT(kit->context_keyword);
    Py_VISIT(kit->msg_keyword);
    Py_VISIT(kit->default_name);
    return 0;
}

void request_task_kit_clear(module_state *state)
{
    request_task_kit *kit = &state->task_kit;
    Py_CLEAR(kit->type);
    Py_CLEAR(kit->future_type);
    Py_CLEAR(kit->future_set_result);
    Py_CLEAR(kit->future_set_exception);
    Py_CLEAR(kit->future_cancel);
    Py_CLEAR(kit->swap_current_task);
    Py_CLEAR(kit->enter_task);
    Py_CLEAR(kit->leave_task);
    Py_CLEAR(kit->register_task);
    Py_CLEAR(kit->eager_tasks);
    Py_CLEAR(kit->cancelled_error);
    Py_CLEAR(kit->iscoroutine);
    Py_CLEAR(kit->base_tasks);
    Py_CLEAR(kit->context_keyword);
    Py_CLEAR(kit->msg_keyword);
    Py_CLEAR(kit->default_name);
}

#else /* no ASGI before Python 3.11: nothing to make, nothing to run */

PyObject *request_task_start(module_state *state, PyObject *loop, PyObject *coroutine, PyObject *owner,
                             task_done_hook done)
{
    (void)state;
    (void)loop;
    (void)coroutine;
    (void)owner;
    (void)done;
    PyErr_SetString(PyExc_RuntimeError, "ursa serves ASGI apps on Python 3.11 and later");
    return NULL;
}

int request_task_is_done(PyObject *task)
{
    (void)task;
    return 1;
}

int request_task_cancel(PyObject *task)
{
    (void)task;
    return 0;
}

int request_task_kit_init(module_state *state)
{
    (void)state;
    PyErr_SetString(PyExc_RuntimeError, "ursa serves ASGI apps on Python 3.11 and later");
    return -1;
}

void request_task_kit_clear(module_state *state)
{
    (void)state;
}

int request_task_kit_traverse(module_state *state, visitproc visit, void *arg)
{
    (void)state;
    (void)visit;
    (void)arg;
    return 0;
}

#endif
