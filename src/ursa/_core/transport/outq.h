/* The output queue: byte ranges waiting to be written to a socket, each
 * kept alive by the Python object it points into (or held inline for the
 * few bytes of chunk framing). Written with writev, as far as the socket
 * takes it. */
#ifndef URSA_OUTQ_H
#define URSA_OUTQ_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#define OUTQ_INLINE_MAX 24 /* a chunk-size line "ffffffffffffffff\r\n" fits */

typedef struct out_segment {
    PyObject *owner;   /* keeps `data` alive, or NULL */
    const char *data;  /* NULL when the bytes are inline */
    size_t length;
    char inline_bytes[OUTQ_INLINE_MAX];
} out_segment;

typedef struct outq {
    out_segment *segments;
    size_t first;    /* index of the first pending segment */
    size_t count;    /* segments in use from `first` */
    size_t capacity;
    size_t pending;  /* bytes not yet written */
} outq;

typedef enum {
    FLUSH_DONE,    /* the queue is empty */
    FLUSH_BLOCKED, /* the socket is full; wait until it is writable */
    FLUSH_ERROR,   /* the peer is gone (errno set) */
} flush_result;

static inline const char *outq_segment_bytes(const out_segment *seg)
{
    return seg->data ? seg->data : seg->inline_bytes;
}

/* Queue `length` bytes at `data`, owned by `owner` (a new reference is
 * taken). Returns 0, or -1 with MemoryError set. */
int outq_push(outq *q, PyObject *owner, const char *data, size_t length);
/* Queue bytes that stay valid until the queue is flushed or cleared. */
int outq_push_borrowed(outq *q, const char *data, size_t length);
/* Queue a copy of up to OUTQ_INLINE_MAX bytes. */
int outq_push_inline(outq *q, const char *data, size_t length);
/* Write as much as the socket takes, at most `budget` bytes. Adds the
 * bytes written to *written. */
flush_result outq_flush(outq *q, int fd, size_t budget, size_t *written);
/* Drop everything queued. */
void outq_clear(outq *q);
void outq_free(outq *q);

#endif
