/* The asyncio event loop on ursa's libev loop, for the C code that runs it
 * (the ASGI interface).
 *
 * libev owns the loop and asyncio is its guest: the event loop is given an
 * ev_loop and never owns it. Its ready queue, handles and timers (one
 * ev_timer each) are in C, and an ev_check of the lowest priority drains
 * the queue after every io and timer callback of each iteration, so a
 * callback queued by a C watcher (event_loop_call_soon) runs in the same
 * iteration; an ev_idle is on only while the queue has work, so the poll
 * never blocks with work ready, and an ev_prepare turns it on for work
 * queued outside any watcher before the next poll. An idle loop sleeps
 * until an fd or a timer wakes it.
 *
 * The GIL is released around the poll by the ev_loop's release callbacks,
 * which belong to whoever made the ev_loop (the server's, or LibevLoop's
 * for a loop of its own, see libev.h); the event loop installs none, reads
 * no ev_userdata, and runs every callback with the GIL held.
 *
 * Every function here is called with the GIL held, from the loop's thread.
 * `event_loop` is what event_loop_new() returned. */
#ifndef URSA_ASGI_LOOP_H
#define URSA_ASGI_LOOP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ev.h>

#include "asgi/libev.h"
#include "common/state.h"

/* A new ursa.eventloop.EventLoop on `loop`, which stays the caller's: close
 * the event loop (event_loop_close) before destroying it. NULL with an
 * exception (RuntimeError before Python 3.11). */
PyObject *event_loop_new(module_state *state, struct ev_loop *loop);

/* Make it the running loop of this thread while the caller runs ev_run
 * itself: asyncio's run-forever set-up (running loop, thread id, async
 * generator hooks) and the drain's watchers started. 0, or -1 with an
 * exception (closed, or already running). While entered, loop.stop()
 * raises RuntimeError (the caller's ev_run is not the loop's to end), and
 * run_forever()/run_until_complete() refuse, as for any running loop. */
int event_loop_enter(PyObject *event_loop);

/* Undo event_loop_enter() once ev_run has returned. 0, or -1 with the
 * exception that ended the run: a SystemExit or KeyboardInterrupt from a
 * callback, or a failure of the loop itself, which broke the caller's
 * ev_run (EVBREAK_ALL) when no on_fatal handler was set. */
int event_loop_exit(PyObject *event_loop);

/* While entered, an exception that must end the run (SystemExit,
 * KeyboardInterrupt, a failure of the loop itself) is handed to
 * `handler(data)` as the current exception, which the handler must take
 * (the server's server_report_exception does: a graceful stop, raised
 * again by serve()); the run goes on. NULL: the default, see
 * event_loop_exit(). */
void event_loop_on_fatal(PyObject *event_loop, void (*handler)(void *data), void *data);

/* `hook(data, started)` follows each run of ready callbacks (app code),
 * `started` being ev_now() from before them: the server counts that time
 * as the app's (server_app_returned), not as its clients'. NULL: none. */
void event_loop_after_callbacks(PyObject *event_loop, void (*hook)(void *data, double started), void *data);

/* Queue `callable(arg)` (`callable()` when `arg` is NULL) to run in a copy
 * of the current context, as loop.call_soon() does but without a Python
 * call. From a watcher's callback it runs in the same libev iteration;
 * from elsewhere, before the next poll blocks. 0, or -1 with an exception
 * (RuntimeError once closed). */
int event_loop_call_soon(PyObject *event_loop, PyObject *callable, PyObject *arg);

/* loop.close(): every watcher it started on the ev_loop (timers, io, its
 * own three) is stopped, and the ev_loop is left to its owner. 0, or -1
 * with an exception (RuntimeError while it runs). */
int event_loop_close(PyObject *event_loop);

/* For register.c: the type of EventLoopCore. */
PyType_Spec *event_loop_core_type_spec(void);

#endif
