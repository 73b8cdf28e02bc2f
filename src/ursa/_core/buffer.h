/* A growable byte buffer: the connection's read buffer and the scratch
 * space for serialised response headers. Plain malloc, since it may outlive
 * no Python object and is freed by its owner only. */
#ifndef URSA_BUFFER_H
#define URSA_BUFFER_H

#include <stddef.h>

typedef struct buffer {
    char *data;
    size_t len;
    size_t cap;
} buffer;

/* Make room for `extra` more bytes. Returns 0, or -1 with MemoryError set. */
int buffer_reserve(buffer *b, size_t extra);
int buffer_append(buffer *b, const void *bytes, size_t n);
int buffer_append_str(buffer *b, const char *s);
/* Drop the first n bytes, keeping the rest at the front. */
void buffer_discard_front(buffer *b, size_t n);
void buffer_free(buffer *b);

#endif
