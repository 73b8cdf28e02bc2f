/* The listening sockets of a server: accepting (fairly among the prefork
 * workers that share them), pausing at max_connections or out of fds, and,
 * at a stop, taking what the kernel already queued behind a closed door. */
#ifndef URSA_LISTENER_H
#define URSA_LISTENER_H

#include "transport/server.h"

/* The listeners of `fds`, each checked to be a listening stream socket and
 * made non-blocking. 0, or -1 with an exception (listeners_free then). */
int listeners_open(server *s, const int *fds, size_t count);
/* The sockets stay the caller's; a door the stop closed opens again. */
void listeners_free(server *s);
void listeners_start(server *s);
void listeners_stop(server *s);
/* Stop accepting for `seconds` (0: until listeners_start). */
void listeners_pause(server *s, double seconds);
/* At a stop: take every connection the kernel has completed. */
void listeners_drain(server *s);

/* Where a listener listens: its host (numeric) and port for TCP, its path
 * for a unix socket ("@name" for an abstract one). Returns the address
 * family, or AF_UNSPEC when the socket cannot say or `l` is NULL (no
 * socket: a request parsed in-process). */
int listener_address(const listener *l, char *host, size_t size, unsigned *port);

#endif
