#include "transport/outq.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define OUTQ_IOV_MAX 64 /* segments per writev: more gains nothing measurable */

static int make_room(outq *q)
{
    if (q->first > 0 && q->first + q->count == q->capacity) {
        memmove(q->segments, q->segments + q->first, q->count * sizeof *q->segments);
        q->first = 0;
    }
    if (q->first + q->count < q->capacity)
        return 0;
    size_t capacity = q->capacity ? q->capacity * 2 : 8;
    out_segment *segments = PyMem_Realloc(q->segments, capacity * sizeof *segments);
    if (segments == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    q->segments = segments;
    q->capacity = capacity;
    return 0;
}

int outq_push(outq *q, PyObject *owner, const char *data, size_t length)
{
    if (length == 0)
        return 0;
    if (make_room(q) < 0)
        return -1;
    out_segment *seg = &q->segments[q->first + q->count++];
    Py_XINCREF(owner);
    seg->owner = owner;
    seg->data = data;
    seg->length = length;
    q->pending += length;
    return 0;
}

int outq_push_borrowed(outq *q, const char *data, size_t length)
{
    return outq_push(q, NULL, data, length);
}

int outq_push_inline(outq *q, const char *data, size_t length)
{
    if (length == 0)
        return 0;
    if (make_room(q) < 0)
        return -1;
    out_segment *seg = &q->segments[q->first + q->count++];
    memcpy(seg->inline_bytes, data, length);
    seg->owner = NULL;
    seg->data = NULL;
    seg->length = length;
    q->pending += length;
    return 0;
}

static void drop_first(outq *q)
{
    out_segment *seg = &q->segments[q->first];
    Py_CLEAR(seg->owner);
    q->first++;
    q->count--;
    if (q->count == 0)
        q->first = 0;
}

/* Account for `n` bytes written from the front of the queue. */
static void advance(outq *q, size_t n)
{
    q->pending -= n;
    while (n > 0) {
        out_segment *seg = &q->segments[q->first];
        if (n < seg->length) {
            if (seg->data) {
                seg->data += n;
            } else {
                memmove(seg->inline_bytes, seg->inline_bytes + n, seg->length - n);
            }
            seg->length -= n;
            return;
        }
        n -= seg->length;
        drop_first(q);
    }
}

flush_result outq_flush(outq *q, int fd, size_t budget, size_t *written)
{
    while (q->count > 0) {
        if (budget == 0)
            return FLUSH_BLOCKED;
        struct iovec iov[OUTQ_IOV_MAX];
        int n = 0;
        size_t batch = 0;
        for (size_t i = 0; i < q->count && n < OUTQ_IOV_MAX && batch < budget; i++) {
            const out_segment *seg = &q->segments[q->first + i];
            iov[n].iov_base = (void *)outq_segment_bytes(seg);
            iov[n].iov_len = seg->length;
            batch += seg->length;
            n++;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return FLUSH_BLOCKED;
            return FLUSH_ERROR;
        }
        advance(q, (size_t)w);
        *written += (size_t)w;
        if ((size_t)w < batch) /* a short write: the socket buffer is full */
            return FLUSH_BLOCKED;
        budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
    }
    return FLUSH_DONE;
}

void outq_clear(outq *q)
{
    while (q->count > 0)
        drop_first(q);
    q->pending = 0;
}

void outq_free(outq *q)
{
    outq_clear(q);
    PyMem_Free(q->segments);
    q->segments = NULL;
    q->capacity = 0;
}
