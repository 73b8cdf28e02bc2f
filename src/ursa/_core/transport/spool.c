#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/spool.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "common/anonfile.h"

void spool_init(spool *sp)
{
    sp->fd = -1;
    sp->end = 0;
    sp->sent = 0;
    sp->charged = NULL;
}

int spool_append(spool *sp, const char *data, size_t n, budgets *budget)
{
    if (n == 0)
        return 0;
    if (sp->fd < 0) {
        sp->fd = anonfile_open();
        if (sp->fd < 0)
            return -1;
    }
    if (budget_charge(&budget->spill, n) < 0) {
        errno = ENOSPC;
        return -1;
    }
    sp->charged = budget;
    if (anonfile_write_all(sp->fd, data, n) < 0) {
        budget_credit(&budget->spill, n);
        return -1;
    }
    sp->end += n;
    return 0;
}

/* Everything went out: start the file over, so that its blocks are freed
 * and a long stream written in bursts never grows it without bound. */
static void spool_rewind(spool *sp)
{
    if (ftruncate(sp->fd, 0) == 0 && lseek(sp->fd, 0, SEEK_SET) == 0) {
        if (sp->charged != NULL)
            budget_credit(&sp->charged->spill, sp->end);
        sp->end = 0;
        sp->sent = 0;
    }
}

spool_result spool_send(spool *sp, int socket_fd, size_t *budget, size_t *written)
{
    while (spool_pending(sp) > 0) {
        if (*budget == 0)
            return SPOOL_BLOCKED;
        uint64_t pending = spool_pending(sp);
        size_t want = pending < *budget ? (size_t)pending : *budget;
        ssize_t n = sendfile(socket_fd, sp->fd, &sp->sent, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? SPOOL_BLOCKED : SPOOL_ERROR;
        }
        if (n == 0) {
            errno = EIO; /* the file is shorter than what was written to it */
            return SPOOL_ERROR;
        }
        *budget -= (size_t)n;
        *written += (size_t)n;
    }
    if (sp->fd >= 0 && sp->end > 0)
        spool_rewind(sp);
    return SPOOL_DRAINED;
}

void spool_free(spool *sp)
{
    if (sp->charged != NULL)
        budget_credit(&sp->charged->spill, sp->end);
    if (sp->fd >= 0)
        close(sp->fd);
    spool_init(sp);
}
