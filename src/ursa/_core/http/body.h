/* Where a request body is kept while it arrives: memory up to
 * body_buffer_size, then an anonymous temporary file. wsgi.input takes it
 * over when the request is complete. */
#ifndef URSA_BODY_H
#define URSA_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "common/budget.h"

typedef struct body {
    char *memory;
    size_t memory_capacity;
    int file;          /* -1 while the body is in memory */
    uint64_t size;     /* bytes received so far */
    budgets *charged;  /* what memory_capacity and a file's bytes are charged to */
} body;

void body_init(body *b);
/* Prepare for `expected` bytes (Content-Length): a first piece of memory,
 * no file yet. Never fails: without memory the body grows as it comes. */
void body_expect(body *b, uint64_t expected, size_t memory_limit, budgets *budget);
/* Append decoded body bytes: to memory up to `memory_limit` (and while
 * the memory budget lasts), then to an unnamed temporary file. Returns 0,
 * or -1 with errno set: ENOSPC when the spill budget is spent. */
int body_append(body *b, const char *data, size_t n, size_t memory_limit, budgets *budget);
/* Move every byte received so far to `out` (room for b->size) and start
 * empty again (a streamed body, taken as it comes). 0, or -1 with errno. */
int body_take(body *b, char *out);
/* The body leaves the worker's budgets (it becomes wsgi.input's). */
void body_settle(body *b);
/* Release whatever is held. */
void body_free(body *b);

#endif
