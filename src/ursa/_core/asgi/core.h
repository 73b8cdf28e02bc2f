/* One asyncio event loop's state in C, shared by the files of the event
 * loop: the ev_loop it runs on (never its own to destroy: see libev.h), its
 * ready queue, its armed timers, its io watchers, and the three watchers
 * that drain the queue. loop.c makes it a Python type (EventLoopCore, the C
 * base of ursa.eventloop.EventLoop); handles.c and selector.c put work on
 * its queue from their libev callbacks. */
#ifndef URSA_ASGI_CORE_H
#define URSA_ASGI_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ev.h>
#include <stddef.h>
#include <time.h>

#include "common/exceptions.h"
#include "common/state.h"

struct timer_handle;
struct fd_watch;

/* Handles ready to run, oldest first: a ring whose capacity is a power of
 * two. Only ever touched with the GIL held, which is what makes
 * call_soon_threadsafe safe: another thread pushes while the loop's thread
 * waits in the poll, without the GIL and without touching libev. */
typedef struct ready_queue {
    PyObject **items;
    size_t head;
    size_t count;
    size_t capacity;
} ready_queue;

typedef enum {
    LOOP_STOPPED,
    LOOP_RUNNING_ITSELF, /* run_forever(): its own ev_run on the loop it was given */
    LOOP_ENTERED,        /* event_loop_enter(): someone else (the server) runs ev_run */
} loop_mode;

typedef struct EventLoopCoreObject {
    PyObject_HEAD
    module_state *state;
    PyObject *libev;       /* the LibevLoop it runs on */
    struct ev_loop *loop;  /* libev's; NULL before _core_init() and once closed */
    ready_queue ready;
    /* After every io and timer callback of an iteration (EV_MINPRI), run
     * what is ready. */
    ev_check drain;
    /* Before each poll (EV_MINPRI, after every other prepare watcher): work
     * queued outside the drain (by a C watcher, or before ev_run) turns
     * keep_polling on. */
    ev_prepare before_poll;
    /* Active while the queue has work, so that the poll does not block. */
    ev_idle keep_polling;
    struct timer_handle *timers; /* armed timers (handles.c) */
    struct fd_watch **fds;       /* the selector's watchers, by fd (selector.c) */
    int fd_slots;
    loop_mode mode;
    int stopping;
    int closed;
    int debug;             /* asyncio's debug mode: every Future asks (get_debug) */
    /* What ended the last run and is raised where the loop was run, or
     * passed to on_fatal while entered. */
    PyObject *failure;
    void (*on_fatal)(void *data);
    void *on_fatal_data;
    /* Told after each run of callbacks, with ev_now() from before it. */
    void (*after_callbacks)(void *data, double started);
    void *after_callbacks_data;
} EventLoopCoreObject;

/* The clock of loop.time() and of every timer: time.monotonic()'s. */
static inline double monotonic_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* Put `item` at the end of the queue, with a reference of its own: 0, or
 * -1 with MemoryError. */
int ready_push(ready_queue *queue, PyObject *item);
/* The oldest item (queue->count > 0), with the queue's reference. */
PyObject *ready_pop(ready_queue *queue);
void ready_clear(ready_queue *queue);
int ready_traverse(ready_queue *queue, visitproc visit, void *arg);

/* The loop cannot go on: a callback raised SystemExit or KeyboardInterrupt,
 * or the loop itself failed (out of memory in a watcher). Takes the current
 * exception: while entered, to on_fatal if there is one; otherwise it is
 * kept to be raised where the loop is run, and the run is broken. */
void core_fail(EventLoopCoreObject *core);

#endif
