#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/serve.h"

#include <string.h>
#include <unistd.h>

#include "common/exceptions.h"
#include "transport/conn.h"
#include "transport/listener.h"

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

static void after_close(server *s)
{
    if (s->stopping) {
        if (s->conn_count == 0)
            ev_break(s->loop, EVBREAK_ALL);
        return;
    }
    if (!s->accepting && !ev_is_active(&s->accept_retry) && s->conn_count < s->opts.max_connections)
        listeners_start(s);
}

static void begin_stop(server *s, int retiring);

static void after_request(server *s)
{
    if (s->opts.max_requests && s->requests_served >= s->opts.max_requests)
        begin_stop(s, 1);
}

/* ---- stopping ---- */

static void close_all(server *s)
{
    while (s->conns != NULL)
        conn_close(s->conns);
}

/* The upgraded connections that a retirement let live are told to go now
 * (a WebSocket sends its 1001 and waits for the peer's close frame). */
static void stop_upgraded(server *s)
{
    s->upgraded_stay = 0;
    for (struct conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_UPGRADED)
            conn_stop(c);
    }
}

static void on_graceful_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    server *s = w->data;
    if (s->upgraded_stay) {
        /* A retirement's graceful timeout is over: what is not upgraded
         * ends now; the upgraded connections close their own way, in the
         * WebSocket close timeout at most, and then are cut. */
        for (struct conn *c = s->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (c->state != CONN_UPGRADED)
                conn_close(c);
        }
        stop_upgraded(s);
        if (s->conn_count > 0) {
            ev_timer_set(w, s->opts.websocket_close_timeout, 0);
            ev_timer_start(loop, w);
            return;
        }
    }
    close_all(s);
    ev_break(loop, EVBREAK_ALL);
}

void server_begin_stop(server *s)
{
    if (s->stopping) {
        /* Asked to stop while retiring: the upgraded connections go now. */
        if (s->upgraded_stay)
            stop_upgraded(s);
        return;
    }
    begin_stop(s, 0);
}

/* `retiring`: max_requests was reached. The worker leaves as at any stop,
 * but an upgraded connection (a WebSocket, one request however long it
 * lives) is not cut short: it goes on until the graceful timeout. The
 * master sees HEARTBEAT_RETIRING and starts a successor meanwhile. */
static void begin_stop(server *s, int retiring)
{
    if (s->stopping)
        return;
    s->upgraded_stay = retiring;
    if (retiring && s->heartbeat != NULL)
        s->heartbeat->flags |= HEARTBEAT_RETIRING;
    listeners_drain(s);
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
    /* A retirement is no stop asked for: the first interrupt during one
     * is a graceful stop still. */
    int again = s->stopping && !s->upgraded_stay;
    if (s->interrupt == NULL) {
        s->interrupt = exception_take();
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

/* ---- set-up and tear-down ---- */

static void server_clear(server *s, int protocol_started)
{
    if (protocol_started)
        s->protocol->server_end(s);
    listeners_free(s);
    if (s->heartbeat != NULL) {
        s->heartbeat->flags = 0;
        heartbeat_idle(s->heartbeat);
        PyBuffer_Release(&s->heartbeat_view);
        s->heartbeat = s->heartbeats = NULL;
    }
    if (s->loop != NULL)
        ev_loop_destroy(s->loop);
    buffer_free(&s->read_buffer);
    networks_free(&s->trusted_proxies);
    Py_XDECREF(s->last_peer_text);
    Py_XDECREF(s->app);
    Py_XDECREF(s->interrupt);
    options_clear(&s->opts);
}

/* The slot of the heartbeat table this worker writes (heartbeat.h). */
static int server_take_heartbeat(server *s)
{
    if (PyObject_GetBuffer(s->opts.heartbeat, &s->heartbeat_view, PyBUF_WRITABLE) < 0)
        return -1;
    s->heartbeats = s->heartbeat_view.buf;
    s->heartbeat_count = (size_t)s->heartbeat_view.len / sizeof(heartbeat);
    if (s->opts.heartbeat_slot >= s->heartbeat_count) {
        PyErr_Format(PyExc_ValueError, "heartbeat_slot %llu is past the %zu slots of the heartbeat table",
                     (unsigned long long)s->opts.heartbeat_slot, s->heartbeat_count);
        PyBuffer_Release(&s->heartbeat_view);
        s->heartbeats = NULL;
        return -1;
    }
    s->heartbeat = &s->heartbeats[s->opts.heartbeat_slot];
    s->heartbeat->connections = 0;
    s->heartbeat->flags = HEARTBEAT_LIVE;
    heartbeat_busy(s->heartbeat);
    return 0;
}

static double shortest_of(double a, double b)
{
    return a < b ? a : b;
}

int server_serve(module_state *state, PyObject *app, const int *listen_fds, size_t listen_fd_count,
                 int signal_fd, server_options *opts, const protocol *protocol, void *protocol_state)
{
    int result = -1, protocol_started = 0;
    server s;
    memset(&s, 0, sizeof s);
    s.state = state;
    s.opts = *opts;
    memset(opts, 0, sizeof *opts); /* moved */
    Py_INCREF(app);
    s.app = app;
    s.protocol = protocol;
    s.protocol_state = protocol_state;
    s.after_close = after_close;
    s.after_request = after_request;
    s.signal_fd = signal_fd;
    s.shortest_timeout = shortest_of(shortest_of(s.opts.header_timeout, s.opts.body_timeout),
                                     shortest_of(s.opts.keepalive_timeout, s.opts.write_timeout));
    s.budget.memory.limit = s.opts.max_buffered_bytes;
    s.budget.spill.limit = s.opts.max_spill_bytes;
    s.retire_drain = shortest_of(s.opts.keepalive_timeout, RETIRE_DRAIN_SECONDS);

    s.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (s.loop == NULL) {
        PyErr_SetString(PyExc_OSError, "ursa: libev could not create an event loop");
        goto cleanup;
    }
    ev_set_userdata(s.loop, &s);
    ev_set_loop_release_cb(s.loop, release_gil, acquire_gil);
    if (s.opts.heartbeat != NULL && server_take_heartbeat(&s) < 0)
        goto cleanup;
    const char *trusted = PyUnicode_AsUTF8(s.opts.forwarded_allow_ips);
    if (trusted == NULL || networks_parse(&s.trusted_proxies, trusted) < 0)
        goto cleanup;
    if (buffer_reserve(&s.read_buffer, SHARED_READ_BUFFER) < 0 ||
        listeners_open(&s, listen_fds, listen_fd_count) < 0)
        goto cleanup;
    if (protocol->server_start(&s) < 0)
        goto cleanup;
    protocol_started = 1;

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
    /* The protocol's end may run the loop again (an ASGI app's shutdown):
     * none of the server's own timers may fire in it. */
    ev_timer_stop(s.loop, &s.graceful_timer);
    ev_timer_stop(s.loop, &s.accept_retry);

    if (s.interrupt != NULL) {
        exception_raise(s.interrupt);
        s.interrupt = NULL;
        goto cleanup;
    }
    result = 0;
cleanup:
    if (signal_fd >= 0 && s.loop != NULL)
        ev_io_stop(s.loop, &s.signal_watcher);
    server_clear(&s, protocol_started);
    return result;
}
