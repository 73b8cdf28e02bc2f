#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/conn.h"
#include "transport/door.h"

/* Connections accepted per readiness event: enough to empty a burst,
 * few enough that requests already accepted are not starved. */
#define ACCEPTS_PER_EVENT 64
/* Out of file descriptors: wait this long before accepting again rather
 * than spinning on a listening socket that stays readable. */
#define ACCEPT_RETRY_SECONDS 0.1
/* A worker that left a connection to a peer looks again this soon. */
#define FAIR_SHARE_RETRY_SECONDS 0.002
/* A peer busy in app code for less than this will take the connection
 * when it is done (a slow app's loop turn may serve several requests); one
 * busy longer may be stuck, and is not waited for. */
#define PEER_BUSY_GRACE_SECONDS 1.0

void listeners_start(server *s)
{
    if (s->accepting || s->stopping)
        return;
    for (size_t i = 0; i < s->listener_count; i++)
        ev_io_start(s->loop, &s->listeners[i].watcher);
    s->accepting = 1;
    if (s->heartbeat != NULL)
        s->heartbeat->flags |= HEARTBEAT_ACCEPTING;
}

void listeners_stop(server *s)
{
    if (!s->accepting)
        return;
    for (size_t i = 0; i < s->listener_count; i++)
        ev_io_stop(s->loop, &s->listeners[i].watcher);
    s->accepting = 0;
    if (s->heartbeat != NULL)
        s->heartbeat->flags &= ~HEARTBEAT_ACCEPTING;
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    listeners_start((server *)w->data);
}

void listeners_pause(server *s, double seconds)
{
    listeners_stop(s);
    if (seconds > 0) {
        ev_timer_set(&s->accept_retry, seconds, 0);
        ev_timer_start(s->loop, &s->accept_retry);
    }
}

typedef enum { ACCEPTED, ACCEPT_AGAIN, ACCEPT_EMPTY, ACCEPT_OUT_OF_FDS, ACCEPT_FAILED } accept_result;

static accept_result accept_one(listener *l)
{
    struct sockaddr_storage peer;
    socklen_t peer_length = sizeof peer;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED)
            return ACCEPT_AGAIN;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            return ACCEPT_OUT_OF_FDS;
        return ACCEPT_EMPTY; /* EAGAIN, or nothing better to do */
    }
    if (conn_open(l, fd, (struct sockaddr *)&peer, peer_length) < 0) {
        log_error(l->server->state, "ursa: cannot set up a new connection");
        return ACCEPT_FAILED;
    }
    return ACCEPTED;
}

/* Prefork workers share the listening sockets, and every idle one is woken
 * by a new connection: the first awake took the whole of a burst, and while
 * a slow app held one worker, the other took every connection, for good
 * with keep-alive. A worker above the average leaves the connection to a
 * peer with fewer that takes connections and is idle or only briefly busy,
 * and looks again shortly. */
static int leave_to_a_peer(server *s)
{
    if (s->heartbeat_count < 2)
        return 0;
    uint64_t mine = s->conn_count, total = 0, live = 0;
    int peer_with_fewer = 0;
    double now = 0;
    for (size_t i = 0; i < s->heartbeat_count; i++) {
        const heartbeat *h = &s->heartbeats[i];
        if (!(h->flags & HEARTBEAT_LIVE))
            continue;
        live++;
        total += h->connections;
        if (h == s->heartbeat || !(h->flags & HEARTBEAT_ACCEPTING) || h->connections >= mine)
            continue;
        double busy_since = h->busy_since;
        if (busy_since != 0.0 && now == 0)
            now = heartbeat_clock();
        if (busy_since == 0.0 || now - busy_since < PEER_BUSY_GRACE_SECONDS)
            peer_with_fewer = 1;
    }
    /* More than one connection above the average: a difference of one is
     * not worth a new connection's wait. */
    return peer_with_fewer && mine * live > total + live;
}

static void on_listener_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    listener *l = w->data;
    server *s = l->server;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        if (s->conn_count >= s->opts.max_connections) {
            listeners_pause(s, 0); /* resumed as a connection closes (serve.c) */
            return;
        }
        if (leave_to_a_peer(s)) {
            listeners_pause(s, FAIR_SHARE_RETRY_SECONDS);
            /* Still taking connections, only not this one: peers must not
             * count this worker out while it waits its turn. */
            s->heartbeat->flags |= HEARTBEAT_ACCEPTING;
            return;
        }
        accept_result result = accept_one(l);
        if (result == ACCEPT_OUT_OF_FDS)
            listeners_pause(s, ACCEPT_RETRY_SECONDS);
        if (result != ACCEPTED && result != ACCEPT_AGAIN)
            return;
    }
}

/* At a stop: every connection the kernel has completed is in flight, and
 * is taken from the accept queue to be served rather than reset when the
 * socket closes. With the listeners all ours, their doors close first, so
 * the queue stops growing. Shared with other processes, a worker that
 * retires alone (reload, max_requests) leaves the queue to the others; one
 * that finds the door closed knows that the whole service is stopping and
 * takes its part. A unix socket has no door: a worker takes what is queued. */
void listeners_drain(server *s)
{
    for (size_t i = 0; i < s->listener_count; i++) {
        listener *l = &s->listeners[i];
        if (!s->opts.shared_listeners) {
            if (door_close(l->fd) > 0)
                s->doors_closed = 1;
        } else if (l->family != AF_UNIX && !door_is_closed(l->fd)) {
            continue;
        }
        for (;;) {
            if (s->conn_count >= s->opts.max_connections)
                return;
            accept_result result = accept_one(l);
            if (result != ACCEPTED && result != ACCEPT_AGAIN)
                break;
        }
    }
}

static void listeners_reopen_doors(server *s)
{
    if (!s->doors_closed)
        return;
    for (size_t i = 0; i < s->listener_count; i++)
        door_open(s->listeners[i].fd);
    s->doors_closed = 0;
}

static int listener_init(server *s, listener *l, size_t index, int fd)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    int type;
    socklen_t type_length = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&address, &length) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) < 0) {
        PyErr_Format(PyExc_OSError, "fd %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    int accepting = 0;
    socklen_t accepting_length = sizeof accepting;
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &accepting_length) < 0 || !accepting) {
        PyErr_Format(PyExc_ValueError, "fd %d is not a listening stream socket: call listen() on it first",
                     fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    l->server = s;
    l->fd = fd;
    l->family = address.ss_family;
    l->index = index;
    ev_io_init(&l->watcher, on_listener_readable, fd, EV_READ);
    l->watcher.data = l;
    return 0;
}


int listeners_open(server *s, const int *fds, size_t count)
{
    ev_timer_init(&s->accept_retry, on_accept_retry, 0, 0);
    s->accept_retry.data = s;
    s->listeners = PyMem_Calloc(count, sizeof *s->listeners);
    if (s->listeners == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (listener_init(s, &s->listeners[i], i, fds[i]) < 0)
            return -1;
        s->listener_count++;
    }
    return 0;
}

void listeners_free(server *s)
{
    listeners_reopen_doors(s);
    PyMem_Free(s->listeners);
    s->listeners = NULL;
    s->listener_count = 0;
}

int listener_address(const listener *l, char *host, size_t size, unsigned *port)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    *port = 0;
    if (size > 0)
        host[0] = '\0';
    if (l == NULL || getsockname(l->fd, (struct sockaddr *)&address, &length) < 0)
        return AF_UNSPEC; /* no socket: requests parsed in-process (fuzzing, probes) */
    if (address.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&address;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)size);
        *port = ntohs(in->sin_port);
    } else if (address.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&address;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)size);
        *port = ntohs(in6->sin6_port);
    } else if (address.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&address;
        size_t path_length = length > offsetof(struct sockaddr_un, sun_path)
                                 ? length - offsetof(struct sockaddr_un, sun_path)
                                 : 0;
        if (path_length > 0 && un->sun_path[0] == '\0') {
            snprintf(host, size, "@%.*s", (int)(path_length - 1), un->sun_path + 1);
        } else {
            snprintf(host, size, "%.*s", (int)strnlen(un->sun_path, path_length), un->sun_path);
        }
    }
    return address.ss_family;
}
