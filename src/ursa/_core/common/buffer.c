#include "common/buffer.h"

#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* Resize to hold `need` bytes: the capacity doubles up to it, and stays
 * within `limit`. */
static int grow_to(buffer *b, size_t need, size_t limit)
{
    if (need < b->len || need > limit) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap * 2 > cap ? cap * 2 : need;
    if (cap > limit)
        cap = limit;
    char *data = mem_resize(b->data, b->cap, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

int buffer_grow(buffer *b, size_t extra)
{
    return grow_to(b, b->len + extra, SIZE_MAX);
}

int buffer_reserve_within(buffer *b, size_t extra, size_t limit)
{
    return b->cap - b->len >= extra ? 0 : grow_to(b, b->len + extra, limit);
}

void buffer_discard_front(buffer *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buffer_free(buffer *b)
{
    mem_free(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}
