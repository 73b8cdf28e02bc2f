/* The heartbeat a prefork worker shares with its master: a few bytes of
 * shared memory (an anonymous MAP_SHARED mmap made by the master before the
 * fork, passed to serve() as the `heartbeat` option). The loop writes it;
 * the master reads it to tell a worker stuck in app code from one that is
 * waiting for work, and to name the request that is stuck. No system call
 * and no wake-up: the loop writes it where it already releases and takes
 * the GIL around its poll.
 *
 * Layout, read by the master with struct.unpack_from (native order):
 *   offset 0   double  busy_since: CLOCK_MONOTONIC seconds when the loop
 *                      began running callbacks; 0.0 while it waits in poll
 *   offset 16  char[]  the request whose app call is in progress,
 *                      "METHOD target", NUL-terminated (HEARTBEAT_REQUEST_MAX
 *                      bytes at most, the target cut short) */
#ifndef URSA_HEARTBEAT_H
#define URSA_HEARTBEAT_H

#include <stddef.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_REQUEST_OFFSET 16
#define HEARTBEAT_REQUEST_MAX 240

typedef struct heartbeat {
    volatile double busy_since;
    char unused[HEARTBEAT_REQUEST_OFFSET - sizeof(double)];
    char request[HEARTBEAT_REQUEST_MAX];
} heartbeat;

static inline void heartbeat_idle(heartbeat *h)
{
    if (h != NULL)
        h->busy_since = 0.0;
}

static inline void heartbeat_busy(heartbeat *h)
{
    if (h == NULL)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    h->busy_since = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* Name the request the app is about to be called for. */
static inline void heartbeat_request(heartbeat *h, const char *method, const char *target, size_t target_length)
{
    if (h == NULL)
        return;
    size_t method_length = strlen(method);
    if (method_length > 16)
        method_length = 16;
    size_t room = HEARTBEAT_REQUEST_MAX - method_length - 2;
    if (target_length > room)
        target_length = room;
    memcpy(h->request, method, method_length);
    h->request[method_length] = ' ';
    memcpy(h->request + method_length + 1, target, target_length);
    h->request[method_length + 1 + target_length] = '\0';
}

#endif
