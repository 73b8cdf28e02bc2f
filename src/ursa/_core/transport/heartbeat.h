/* What prefork workers share with their master and with each other: a
 * table of slots in shared memory (an anonymous MAP_SHARED mmap the master
 * makes before forking, passed to serve() as the `heartbeat` option, with
 * the worker's slot as `heartbeat_slot`). A worker's loop writes its slot:
 * the master reads it to tell a worker stuck in app code from one waiting
 * for work (--timeout) and to name the request that is stuck; the other
 * workers read it to share new connections fairly. No system call and no
 * wake-up: the loop writes it where it already releases and takes the GIL
 * around its poll.
 *
 * A slot, read by the master with struct.unpack_from (native order):
 *   offset 0   double    busy_since: CLOCK_MONOTONIC seconds when the loop
 *                        began running callbacks; 0.0 while it waits in poll
 *   offset 8   uint32    connections the worker holds open
 *   offset 12  uint32    flags: HEARTBEAT_LIVE while serve() runs,
 *                        HEARTBEAT_ACCEPTING while it takes new connections,
 *                        HEARTBEAT_RETIRING once max_requests is reached
 *                        (the master starts a successor without waiting
 *                        for the worker's WebSockets to end)
 *   offset 16  char[240] the request whose app call is in progress,
 *                        "METHOD target", NUL-terminated (cut short) */
#ifndef URSA_HEARTBEAT_H
#define URSA_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define HEARTBEAT_SLOT_BYTES 256
#define HEARTBEAT_REQUEST_MAX 240
#define HEARTBEAT_LIVE 1u
#define HEARTBEAT_ACCEPTING 2u
#define HEARTBEAT_RETIRING 4u

typedef struct heartbeat {
    volatile double busy_since;
    volatile uint32_t connections;
    volatile uint32_t flags;
    char request[HEARTBEAT_REQUEST_MAX];
} heartbeat;

_Static_assert(sizeof(heartbeat) == HEARTBEAT_SLOT_BYTES, "a heartbeat slot is 256 bytes");

static inline double heartbeat_clock(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static inline void heartbeat_idle(heartbeat *h)
{
    if (h != NULL)
        h->busy_since = 0.0;
}

static inline void heartbeat_busy(heartbeat *h)
{
    if (h != NULL)
        h->busy_since = heartbeat_clock();
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
