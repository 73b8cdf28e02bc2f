/* A growable byte buffer: the connection's read buffer and the scratch
 * space for serialised response headers. Plain malloc, since it may outlive
 * no Python object and is freed by its owner only. */
#ifndef URSA_BUFFER_H
#define URSA_BUFFER_H

#include <stddef.h>
#include <string.h>

typedef struct buffer {
    char *data;
    size_t len;
    size_t cap;
} buffer;

/* The slow path of buffer_reserve: reallocate. */
int buffer_grow(buffer *b, size_t extra);

/* Make room for `extra` more bytes. Returns 0, or -1 with MemoryError set.
 * Inline, as appends run a dozen times per response. */
static inline int buffer_reserve(buffer *b, size_t extra)
{
    return b->cap - b->len >= extra ? 0 : buffer_grow(b, extra);
}

static inline int buffer_append(buffer *b, const void *bytes, size_t n)
{
    if (buffer_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 0;
}

static inline int buffer_append_str(buffer *b, const char *s)
{
    return buffer_append(b, s, strlen(s));
}
/* Make room for `extra` more bytes as buffer_reserve does, the capacity
 * never passing `limit` (len + extra must not). For what a peer decides
 * the size of: a WebSocket message. 0, or -1 with MemoryError. */
int buffer_reserve_within(buffer *b, size_t extra, size_t limit);
/* Drop the first n bytes, keeping the rest at the front. */
void buffer_discard_front(buffer *b, size_t n);
void buffer_free(buffer *b);

#endif
