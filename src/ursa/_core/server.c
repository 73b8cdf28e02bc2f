#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "door.h"
#include "environ.h"

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
/* At a stop, idle keep-alive connections stay open this long (or the
 * keep-alive timeout, if shorter): a client that sent its next request in
 * the instant before it could know is answered, not cut off. */
#define RETIRE_DRAIN_SECONDS 1.0
/* One read's worth for every connection that has nothing pending: most
 * requests arrive whole in one read and never need a buffer of their own. */
#define SHARED_READ_BUFFER (64 * 1024)

/* ---- the GIL is released while libev waits for events ---- */

static void release_gil(struct ev_loop *loop)
{
    server *s = ev_userdata(loop);
    heartbeat_idle(s->heartbeat);
    s->released_thread = PyEval_SaveThread();
}

static void acquire_gil(struct ev_loop *loop)
{
    server *s = ev_userdata(loop);
    PyEval_RestoreThread(s->released_thread);
    s->released_thread = NULL;
    heartbeat_busy(s->heartbeat);
}

/* ---- accepting ---- */

static void listeners_start(server *s)
{
    if (s->accepting || s->stopping)
        return;
    for (size_t i = 0; i < s->listener_count; i++)
        ev_io_start(s->loop, &s->listeners[i].watcher);
    s->accepting = 1;
    if (s->heartbeat != NULL)
        s->heartbeat->flags |= HEARTBEAT_ACCEPTING;
}

static void listeners_stop(server *s)
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

static void pause_accepting(server *s, double seconds)
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
            pause_accepting(s, 0); /* resumed by server_conn_closed */
            return;
        }
        if (leave_to_a_peer(s)) {
            pause_accepting(s, FAIR_SHARE_RETRY_SECONDS);
            /* Still taking connections, only not this one: peers must not
             * count this worker out while it waits its turn. */
            s->heartbeat->flags |= HEARTBEAT_ACCEPTING;
            return;
        }
        accept_result result = accept_one(l);
        if (result == ACCEPT_OUT_OF_FDS)
            pause_accepting(s, ACCEPT_RETRY_SECONDS);
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
static void drain_accept_queues(server *s)
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

static void reopen_doors(server *s)
{
    if (!s->doors_closed)
        return;
    for (size_t i = 0; i < s->listener_count; i++)
        door_open(s->listeners[i].fd);
    s->doors_closed = 0;
}

void server_conn_closed(server *s)
{
    if (s->stopping) {
        if (s->conn_count == 0)
            ev_break(s->loop, EVBREAK_ALL);
        return;
    }
    if (!s->accepting && !ev_is_active(&s->accept_retry) && s->conn_count < s->opts.max_connections)
        listeners_start(s);
}

/* ---- stopping ---- */

static void close_all(server *s)
{
    while (s->conns != NULL)
        conn_close(s->conns);
}

static void on_graceful_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    close_all((server *)w->data);
    ev_break(loop, EVBREAK_ALL);
}

void server_begin_stop(server *s)
{
    if (s->stopping)
        return;
    drain_accept_queues(s);
    listeners_stop(s);
    ev_timer_stop(s->loop, &s->accept_retry);
    s->stopping = 1;
    s->stop_started = server_network_time(s);
    ev_timer_set(&s->graceful_timer, s->opts.graceful_timeout, 0);
    ev_timer_start(s->loop, &s->graceful_timer);
    /* conn_stop may close (and unlink) the connection it is given. */
    for (struct conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_stop(c);
    }
    if (s->conn_count == 0)
        ev_break(s->loop, EVBREAK_ALL);
}

void server_interrupt(server *s)
{
    int again = s->stopping;
    if (s->interrupt == NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (value != NULL && traceback != NULL)
            PyException_SetTraceback(value, traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        s->interrupt = value;
    } else {
        PyErr_Clear();
    }
    if (!again) {
        server_begin_stop(s);
        return;
    }
    /* Interrupted again while draining: stop now. */
    close_all(s);
    ev_break(s->loop, EVBREAK_ALL);
}

void server_report_exception(server *s, const char *message)
{
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) || PyErr_ExceptionMatches(PyExc_SystemExit))
        server_interrupt(s);
    else
        log_error(s->state, message);
}

/* Python's C-level signal handler wrote to the wake-up fd: run the Python
 * handlers now. A KeyboardInterrupt (or any exception) they raise stops
 * the server and is raised again from serve(). */
static void on_signal_wakeup(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    server *s = w->data;
    char drain[64];
    while (read(s->signal_fd, drain, sizeof drain) > 0)
        ;
    if (PyErr_CheckSignals() < 0)
        server_interrupt(s);
}

/* ---- the Date header ---- */

const char *server_date_header(server *s)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = (time_t)ev_now(s->loop);
    if (now != s->date_second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(s->date_header, sizeof s->date_header, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        s->date_second = now;
    }
    return s->date_header;
}

/* ---- set-up and tear-down ---- */

static int listener_init(server *s, listener *l, int fd)
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
    l->environ_template = environ_template_new(l);
    if (l->environ_template == NULL)
        return -1;
    ev_io_init(&l->watcher, on_listener_readable, fd, EV_READ);
    l->watcher.data = l;
    return 0;
}

static void server_clear(server *s)
{
    reopen_doors(s);
    if (s->heartbeat != NULL) {
        s->heartbeat->flags = 0;
        heartbeat_idle(s->heartbeat);
        PyBuffer_Release(&s->heartbeat_view);
        s->heartbeat = s->heartbeats = NULL;
    }
    if (s->listeners != NULL) {
        for (size_t i = 0; i < s->listener_count; i++)
            Py_XDECREF(s->listeners[i].environ_template);
        PyMem_Free(s->listeners);
    }
    if (s->loop != NULL)
        ev_loop_destroy(s->loop);
    buffer_free(&s->read_buffer);
    conn_free_spares(s);
    Py_XDECREF(s->spare_start_response);
    Py_XDECREF(s->last_peer_text);
    Py_XDECREF(s->app);
    Py_XDECREF(s->interrupt);
    options_clear(&s->opts);
}

int server_serve(module_state *state, PyObject *app, const int *listen_fds, size_t listen_fd_count,
                 int signal_fd, server_options *opts)
{
    int result = -1;
    server s;
    memset(&s, 0, sizeof s);
    s.state = state;
    s.opts = *opts;
    memset(opts, 0, sizeof *opts); /* moved */
    Py_INCREF(app);
    s.app = app;
    s.signal_fd = signal_fd;
    s.date_second = -1;
    s.shortest_timeout = s.opts.header_timeout;
    if (s.opts.body_timeout < s.shortest_timeout)
        s.shortest_timeout = s.opts.body_timeout;
    if (s.opts.keepalive_timeout < s.shortest_timeout)
        s.shortest_timeout = s.opts.keepalive_timeout;
    if (s.opts.write_timeout < s.shortest_timeout)
        s.shortest_timeout = s.opts.write_timeout;
    s.budget.memory.limit = s.opts.max_buffered_bytes;
    s.budget.spill.limit = s.opts.max_spill_bytes;
    s.retire_drain = s.opts.keepalive_timeout < RETIRE_DRAIN_SECONDS ? s.opts.keepalive_timeout : RETIRE_DRAIN_SECONDS;

    s.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (s.loop == NULL) {
        PyErr_SetString(PyExc_OSError, "ursa: libev could not create an event loop");
        goto cleanup;
    }
    ev_set_userdata(s.loop, &s);
    ev_set_loop_release_cb(s.loop, release_gil, acquire_gil);
    if (s.opts.heartbeat != NULL) {
        if (PyObject_GetBuffer(s.opts.heartbeat, &s.heartbeat_view, PyBUF_WRITABLE) < 0)
            goto cleanup;
        s.heartbeats = s.heartbeat_view.buf;
        s.heartbeat_count = (size_t)s.heartbeat_view.len / sizeof(heartbeat);
        if (s.opts.heartbeat_slot >= s.heartbeat_count) {
            PyErr_Format(PyExc_ValueError, "heartbeat_slot %llu is past the %zu slots of the heartbeat table",
                         (unsigned long long)s.opts.heartbeat_slot, s.heartbeat_count);
            PyBuffer_Release(&s.heartbeat_view);
            s.heartbeats = NULL;
            goto cleanup;
        }
        s.heartbeat = &s.heartbeats[s.opts.heartbeat_slot];
        s.heartbeat->connections = 0;
        s.heartbeat->flags = HEARTBEAT_LIVE;
        heartbeat_busy(s.heartbeat);
    }

    if (buffer_reserve(&s.read_buffer, SHARED_READ_BUFFER) < 0)
        goto cleanup;
    s.listeners = PyMem_Calloc(listen_fd_count, sizeof *s.listeners);
    if (s.listeners == NULL) {
        PyErr_NoMemory();
        goto cleanup;
    }
    for (size_t i = 0; i < listen_fd_count; i++) {
        if (listener_init(&s, &s.listeners[i], listen_fds[i]) < 0)
            goto cleanup;
        s.listener_count++;
    }

    ev_timer_init(&s.accept_retry, on_accept_retry, 0, 0);
    s.accept_retry.data = &s;
    ev_timer_init(&s.graceful_timer, on_graceful_timeout, 0, 0);
    s.graceful_timer.data = &s;
    if (signal_fd >= 0) {
        ev_io_init(&s.signal_watcher, on_signal_wakeup, signal_fd, EV_READ);
        s.signal_watcher.data = &s;
        ev_io_start(s.loop, &s.signal_watcher);
    }

    state->running = &s;
    listeners_start(&s);
    ev_run(s.loop, 0);
    close_all(&s); /* only after ev_break with connections still open */
    state->running = NULL;

    if (s.interrupt != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(s.interrupt), s.interrupt);
        goto cleanup;
    }
    result = 0;
cleanup:
    if (signal_fd >= 0 && s.loop != NULL)
        ev_io_stop(s.loop, &s.signal_watcher);
    server_clear(&s);
    return result;
}
