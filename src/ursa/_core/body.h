/* Where a request body is kept while it arrives: memory up to
 * body_buffer_size, then an anonymous temporary file. wsgi.input takes it
 * over when the request is complete. */
#ifndef URSA_BODY_H
#define URSA_BODY_H

#include <stddef.h>
#include <stdint.h>

typedef struct body {
    char *memory;
    size_t memory_capacity;
    int file;       /* -1 while the body is in memory */
    uint64_t size;  /* bytes received so far */
} body;

void body_init(body *b);
/* Prepare for `expected` bytes (Content-Length), choosing memory or a file.
 * Returns 0, or -1 with errno set. */
int body_expect(body *b, uint64_t expected, size_t memory_limit);
/* Append decoded body bytes. Returns 0, or -1 with errno set. */
int body_append(body *b, const char *data, size_t n, size_t memory_limit);
/* Release whatever is held. */
void body_free(body *b);

#endif
