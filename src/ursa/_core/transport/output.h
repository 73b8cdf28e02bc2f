/* What a connection has to send for the request in progress, in the order
 * it leaves: bytes in memory (the queue), then bytes spilled to a file
 * (the spool, for output a slow client has not taken), then a file sent
 * with sendfile(2). The protocol above pushes; the connection flushes as
 * far as the socket and a budget per event go. */
#ifndef URSA_OUTPUT_H
#define URSA_OUTPUT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/budget.h"
#include "transport/outq.h"
#include "transport/spool.h"

typedef struct output {
    outq queue;
    spool spool;
    int file_fd;             /* -1 when no file is to be sent */
    off_t file_offset;
    uint64_t file_remaining;
    uint64_t file_sent;
    unsigned file_short : 1; /* the file ended before its announced length */
} output;

typedef enum {
    OUTPUT_DONE,    /* everything is written */
    OUTPUT_BLOCKED, /* the socket is full, or the budget spent */
    OUTPUT_ERROR,   /* the peer is gone */
} output_result;

void output_init(output *o);
/* Drop everything queued and give its disk back. */
void output_clear(output *o);
void output_free(output *o);

/* A spool append failed (errno set): the exception to raise. Returns -1. */
int output_spool_failed(void);

/* Queue bytes behind what is queued (on disk once anything is there).
 * `owner` keeps `data` alive (a new reference is taken), or is NULL for
 * bytes that outlive the output. 0, or -1 with an exception. */
static inline int output_push(output *o, PyObject *owner, const char *data, size_t length, budgets *budget)
{
    if (spool_pending(&o->spool) > 0)
        return spool_append(&o->spool, data, length, budget) < 0 ? output_spool_failed() : 0;
    return outq_push(&o->queue, owner, data, length);
}

/* The same for a few bytes (chunk framing), copied. */
static inline int output_push_small(output *o, const char *data, size_t length, budgets *budget)
{
    if (spool_pending(&o->spool) > 0)
        return spool_append(&o->spool, data, length, budget) < 0 ? output_spool_failed() : 0;
    return outq_push_inline(&o->queue, data, length);
}
/* Send `length` bytes of the file `fd` from `offset` after the rest; the fd
 * stays the caller's, open until the output is done. */
void output_send_file(output *o, int fd, off_t offset, uint64_t length);
/* Bytes held in memory, not yet sent. */
static inline size_t output_memory(const output *o)
{
    return o->queue.pending;
}
/* Move what is held in memory to the spool. 0, or -1 with an exception. */
int output_spill(output *o, budgets *budget);
/* Write to `fd` as far as it takes, at most *budget bytes (updated);
 * *written counts what went. */
output_result output_flush(output *o, int fd, size_t *budget, size_t *written);

#endif
