#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/output.h"

#include <errno.h>
#include <string.h>
#include <sys/sendfile.h>

void output_init(output *o)
{
    memset(&o->queue, 0, sizeof o->queue);
    spool_init(&o->spool);
    o->file_fd = -1;
    o->file_offset = 0;
    o->file_remaining = 0;
    o->file_sent = 0;
    o->file_short = 0;
}

void output_clear(output *o)
{
    outq_clear(&o->queue);
    spool_free(&o->spool);
    o->file_fd = -1;
    o->file_offset = 0;
    o->file_remaining = 0;
    o->file_sent = 0;
    o->file_short = 0;
}

void output_free(output *o)
{
    output_clear(o);
    outq_free(&o->queue);
}

int output_spool_failed(void)
{
    if (errno == ENOSPC)
        PyErr_SetString(PyExc_OSError, "the worker's room for responses clients have not taken yet "
                                       "(max_spill_bytes) is full");
    else
        PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

void output_send_file(output *o, int fd, off_t offset, uint64_t length)
{
    o->file_fd = fd;
    o->file_offset = offset;
    o->file_remaining = length;
}

int output_spill(output *o, budgets *budget)
{
    outq *q = &o->queue;
    for (size_t i = 0; i < q->count; i++) {
        const out_segment *seg = &q->segments[q->first + i];
        if (spool_append(&o->spool, outq_segment_bytes(seg), seg->length, budget) < 0)
            return output_spool_failed();
    }
    outq_clear(q);
    return 0;
}

static output_result send_file(output *o, int fd, size_t *budget, size_t *written)
{
    while (o->file_remaining > 0) {
        if (*budget == 0)
            return OUTPUT_BLOCKED;
        size_t want = o->file_remaining < *budget ? (size_t)o->file_remaining : *budget;
        ssize_t n = sendfile(fd, o->file_fd, &o->file_offset, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? OUTPUT_BLOCKED : OUTPUT_ERROR;
        }
        if (n == 0) {
            /* The file shrank under us: the body is short. */
            o->file_remaining = 0;
            o->file_short = 1;
            break;
        }
        o->file_remaining -= (uint64_t)n;
        o->file_sent += (uint64_t)n;
        *budget -= (size_t)n;
        *written += (size_t)n;
    }
    return OUTPUT_DONE;
}

output_result output_flush(output *o, int fd, size_t *budget, size_t *written)
{
    if (o->queue.pending > 0) {
        size_t sent = 0;
        flush_result f = outq_flush(&o->queue, fd, *budget, &sent);
        *written += sent;
        *budget -= sent < *budget ? sent : *budget;
        if (f == FLUSH_ERROR)
            return OUTPUT_ERROR;
        if (f == FLUSH_BLOCKED)
            return OUTPUT_BLOCKED;
    }
    if (spool_pending(&o->spool) > 0) {
        spool_result f = spool_send(&o->spool, fd, budget, written);
        if (f != SPOOL_DRAINED)
            return f == SPOOL_ERROR ? OUTPUT_ERROR : OUTPUT_BLOCKED;
    }
    return send_file(o, fd, budget, written);
}
