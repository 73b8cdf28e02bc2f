/* The task an ASGI call's coroutine runs as: asyncio.Task's protocol in C,
 * for a coroutine the server starts itself.
 *
 * asyncio.Task costs an ASGI hello about a fifth of its instructions:
 * keyword parsing, a Python is_running() call, a name counter, the
 * done-callback round trip and the method calls that read how it ended.
 * This one is a subclass of asyncio.Future, so it is awaited, cancelled
 * and waited for like any future; current_task() gives it while its
 * coroutine runs, all_tasks() lists it, and it has Task's cancel(msg),
 * cancelling(), uncancel(), get_coro(), get_context(), get_name(),
 * get_stack(), and the _fut_waiter and _must_cancel that anyio reads. It
 * runs its first step at once (eagerly, on every Python), in a copy of the
 * current context, and tells its owner how it ended through a C hook
 * instead of a done callback. */
#ifndef URSA_ASGI_TASK_H
#define URSA_ASGI_TASK_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/state.h"

typedef enum task_outcome {
    TASK_RETURNED,
    TASK_RAISED,    /* `exception` says what */
    TASK_CANCELLED,
} task_outcome;

/* Called once, when the coroutine has ended and the future is done; the
 * task lets go of `owner` afterwards. An exception the coroutine raised is
 * the owner's to report (the future will not log it), even a
 * KeyboardInterrupt or SystemExit. */
typedef void (*task_done_hook)(PyObject *owner, PyObject *task, task_outcome outcome, PyObject *exception);

/* Make the type, from asyncio, unless made. 0, or -1 with an exception. */
int request_task_kit_init(module_state *state);
void request_task_kit_clear(module_state *state);
int request_task_kit_traverse(module_state *state, visitproc visit, void *arg);

/* A task for `coroutine` on the running event loop `loop`, after its first
 * step: `done` may have been called already (request_task_is_done). A new
 * reference, or NULL with an exception: `coroutine` is not one, or the
 * task could not be made; `done` is not called then. */
PyObject *request_task_start(module_state *state, PyObject *loop, PyObject *coroutine, PyObject *owner,
                             task_done_hook done);

int request_task_is_done(PyObject *task);

/* task.cancel(): 0, or -1 with an exception. */
int request_task_cancel(PyObject *task);

#endif
