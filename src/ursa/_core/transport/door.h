/* A listening socket's door: closed, the kernel drops new connection
 * attempts (a TCP SYN) while the connections it already completed stay in
 * the accept queue to be served. A graceful stop closes the door, accepts
 * what is queued and serves it, so that no connection the kernel accepted
 * is reset when the socket closes. Clients knocking at a closed door retry
 * their SYN and, once the socket is gone, are refused. */
#ifndef URSA_DOOR_H
#define URSA_DOOR_H

/* Returns 1 when the door was closed, 0 when the socket has no door to
 * close (not TCP: a unix socket), -1 with errno on failure. */
int door_close(int listen_fd);
/* Open it again (the socket stays usable by whoever gave it). 0 or -1. */
int door_open(int listen_fd);
/* Whether the door is closed: a process that shares the socket sees that
 * the whole service is stopping, not just itself. */
int door_is_closed(int listen_fd);

#endif
