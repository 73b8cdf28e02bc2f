#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/core.h"

#include <string.h>

#define READY_FIRST_CAPACITY 256

static int ready_grow(ready_queue *queue)
{
    size_t capacity = queue->capacity ? queue->capacity * 2 : READY_FIRST_CAPACITY;
    PyObject **items = PyMem_Malloc(capacity * sizeof *items);
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Unrolled in order, so that the ring starts at 0 again. */
    size_t first = queue->capacity - queue->head;
    if (first > queue->count)
        first = queue->count;
    if (queue->count > 0) {
        memcpy(items, queue->items + queue->head, first * sizeof *items);
        memcpy(items + first, queue->items, (queue->count - first) * sizeof *items);
    }
    PyMem_Free(queue->items);
    queue->items = items;
    queue->head = 0;
    queue->capacity = capacity;
    return 0;
}

int ready_push(ready_queue *queue, PyObject *item)
{
    if (queue->count == queue->capacity && ready_grow(queue) < 0)
        return -1;
    Py_INCREF(item);
    queue->items[(queue->head + queue->count) & (queue->capacity - 1)] = item;
    queue->count++;
    return 0;
}

PyObject *ready_pop(ready_queue *queue)
{
    PyObject *item = queue->items[queue->head];
    queue->head = (queue->head + 1) & (queue->capacity - 1);
    queue->count--;
    return item;
}

void ready_clear(ready_queue *queue)
{
    /* One at a time: releasing a handle can run a finalizer. */
    while (queue->count > 0) {
        PyObject *item = ready_pop(queue);
        Py_DECREF(item);
    }
}

int ready_traverse(ready_queue *queue, visitproc visit, void *arg)
{
    for (size_t i = 0; i < queue->count; i++)
        Py_VISIT(queue->items[(queue->head + i) & (queue->capacity - 1)]);
    return 0;
}

void core_fail(EventLoopCoreObject *core)
{
    if (core->mode == LOOP_ENTERED && core->on_fatal != NULL) {
        core->on_fatal(core->on_fatal_data);
        if (PyErr_Occurred()) /* the handler's contract is to take it */
            PyErr_WriteUnraisable((PyObject *)core);
        return;
    }
    if (core->failure != NULL) /* the first one is raised; this one is only told */
        PyErr_WriteUnraisable((PyObject *)core);
    else
        core->failure = exception_take();
    if (core->loop != NULL && core->mode != LOOP_STOPPED)
        ev_break(core->loop, core->mode == LOOP_ENTERED ? EVBREAK_ALL : EVBREAK_ONE);
}
