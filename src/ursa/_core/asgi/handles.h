/* asyncio's Handle and TimerHandle in C: what call_soon, call_later and
 * call_at return and what the ready queue holds. A TimerHandle is its own
 * ev_timer: armed, it is in its loop's list and libev holds a reference to
 * it; cancel() is ev_timer_stop, so a cancelled timeout costs nothing more
 * and no heap of dead timers is ever scanned. */
#ifndef URSA_ASGI_HANDLES_H
#define URSA_ASGI_HANDLES_H

#include "asgi/core.h"

typedef struct handle {
    PyObject_HEAD
    PyObject *callback; /* NULL once cancelled */
    PyObject *arg;      /* the only argument, or NULL: most callbacks take none or one */
    PyObject *args;     /* a tuple of two or more arguments, or NULL */
    PyObject *context;
    int cancelled;
} handle;

typedef struct timer_handle {
    handle base;
    EventLoopCoreObject *core; /* to stop the timer at cancel() */
    ev_timer timer;
    double when;               /* on loop.time()'s clock */
    int armed;                 /* in core->timers, libev's reference held */
    struct timer_handle *prev;
    struct timer_handle *next;
} timer_handle;

/* A Handle of `callback(*args)` to be run in `context` (NULL or None: a
 * copy of the current one). NULL with an exception. */
PyObject *handle_new(module_state *state, PyObject *callback, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *context);

/* A TimerHandle armed to run at `when` (loop.time()'s clock) on `core`'s
 * ev_loop. NULL with an exception. */
PyObject *timer_handle_new(EventLoopCoreObject *core, double when, PyObject *callback, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *context);

/* Whether `h` (ours, or an asyncio.Handle of the stock code: the io
 * watchers' readers and writers) was cancelled; -1 with an exception. */
int handle_is_cancelled(module_state *state, PyObject *h);

/* Run `h`, ours or an asyncio.Handle, unless it was cancelled. An exception
 * goes to the loop's exception handler, as asyncio's Handle._run does;
 * -1 (with it set) for what must end the run: SystemExit, KeyboardInterrupt,
 * or an asyncio.Handle that cannot say whether it was cancelled. */
int handle_run(EventLoopCoreObject *core, PyObject *h);

/* Stop every armed timer of `core` and drop libev's references (close()). */
void timers_disarm_all(EventLoopCoreObject *core);
int timers_traverse(EventLoopCoreObject *core, visitproc visit, void *arg);

PyType_Spec *handle_type_spec(void);
PyType_Spec *timer_handle_type_spec(void);

#endif
