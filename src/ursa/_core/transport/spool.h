/* A response's backlog on disk. PEP 3333's write() must not wait for a
 * slow client inside the loop, and the bytes it is given must not pile up
 * in memory: past a bound they go to an unnamed temporary file, which the
 * response path sends with sendfile(2) as the client reads. */
#ifndef URSA_SPOOL_H
#define URSA_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/budget.h"

typedef struct spool {
    int fd;           /* -1 until the first spill */
    uint64_t end;     /* bytes written to the file */
    off_t sent;       /* bytes of it already sent */
    budgets *charged; /* the file's bytes are charged to its spill budget */
} spool;

typedef enum {
    SPOOL_DRAINED, /* nothing left to send */
    SPOOL_BLOCKED, /* the socket is full (or the budget spent) */
    SPOOL_ERROR,   /* the peer is gone, or the file failed (errno set) */
} spool_result;

void spool_init(spool *sp);
static inline uint64_t spool_pending(const spool *sp)
{
    return sp->end - (uint64_t)sp->sent;
}
/* Add bytes at the end. 0, or -1 with errno set: ENOSPC when the spill
 * budget is spent. */
int spool_append(spool *sp, const char *data, size_t n, budgets *budget);
/* Send from the file to `socket_fd`, at most *budget bytes; *budget and
 * *written are updated. A drained spool gives its disk space back. */
spool_result spool_send(spool *sp, int socket_fd, size_t *budget, size_t *written);
void spool_free(spool *sp);

#endif
