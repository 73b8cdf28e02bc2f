#include "common/buffer.h"

#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

int buffer_grow(buffer *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need < b->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = mem_resize(b->data, b->cap, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
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
