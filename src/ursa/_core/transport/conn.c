#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/conn.h"

#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/peer.h"
#include "transport/proxy.h"

/* Free space asked of a connection's own read buffer before each read (it
 * has one only while a head is incomplete or pipelined bytes wait). */
#define HEAD_READ_SPARE (8 * 1024)
/* After a refusal the client may still be sending; read and drop it this
 * long so that it sees the answer rather than a reset. */
#define LINGER_SECONDS 2.0
/* Reads at most this many to catch up before a deadline is judged. */
#define CATCH_UP_READS 16

static void conn_check_deadline(conn *c);

/* ---- events and timers ---- */

static void conn_watch(conn *c, int events)
{
    if (c->watching == events)
        return;
    struct ev_loop *loop = c->server->loop;
    /* Stopping a watcher drops its pending events: a kick survives. */
    int kicked = ev_clear_pending(loop, &c->watcher) & EV_CUSTOM;
    ev_io_stop(loop, &c->watcher);
    if (events != 0) {
        ev_io_set(&c->watcher, c->fd, events);
        ev_io_start(loop, &c->watcher);
    }
    c->watching = events;
    if (kicked)
        ev_feed_event(loop, &c->watcher, EV_CUSTOM);
}

/* What a request in progress watches: the socket's writability when the
 * output waits for it; its readability while a body arrives (unless the
 * app has not taken what came: flow control) and, once the request is
 * whole, while an asynchronous app is awaited, to notice a hang-up. An
 * upgraded connection reads unless its protocol paused it. */
static void conn_rewatch(conn *c)
{
    int events = c->write_blocked ? EV_WRITE : 0;
    if (!c->read_paused && (c->state == CONN_BODY || c->state == CONN_UPGRADED || c->awaiting_app))
        events |= EV_READ;
    conn_watch(c, events);
}

/* When the current state times out, or 0 when nothing can time out (the
 * app is running, or its response is being produced). */
static double conn_deadline(const conn *c)
{
    const server *s = c->server;
    const server_options *o = &s->opts;
    switch (c->state) {
    case CONN_PROXY:
        return c->phase_started + o->header_timeout;
    case CONN_AWAITING: {
        if (!c->served_any)
            return c->phase_started + o->header_timeout;
        double idle_due = c->phase_started + o->keepalive_timeout;
        /* Retiring: an idle connection gets a short drain (see conn_stop),
         * counted from its last response if that ended after the stop. */
        double drain_from = c->phase_started > s->stop_started ? c->phase_started : s->stop_started;
        double retire_due = drain_from + s->retire_drain;
        return s->stopping && retire_due < idle_due ? retire_due : idle_due;
    }
    case CONN_HEAD:
        return c->phase_started + o->header_timeout;
    case CONN_BODY: {
        if (c->read_paused) /* the app has not taken what came: not the client's time */
            return c->write_blocked ? c->last_progress + o->write_timeout : 0;
        double gap_due = c->last_progress + o->body_timeout;
        if (o->min_body_rate <= 0)
            return gap_due;
        /* mod_reqtimeout's MinRate: past body_timeout, each min_body_rate
         * bytes received buy one second more, so a trickle ends however
         * steady it is, and an upload above the rate never does. */
        double rate_due = c->phase_started + o->body_timeout + (double)c->body_bytes / o->min_body_rate;
        return rate_due < gap_due ? rate_due : gap_due;
    }
    case CONN_RESPONDING:
        return c->write_blocked ? c->last_progress + o->write_timeout : 0;
    case CONN_REJECTING:
        return c->watching == EV_WRITE ? c->last_progress + o->write_timeout : 0;
    case CONN_LINGERING:
        return c->phase_started + LINGER_SECONDS;
    case CONN_UPGRADED: {
        double write_due = c->write_blocked ? c->last_progress + o->write_timeout : 0;
        if (write_due == 0 || (c->wakeup_due != 0 && c->wakeup_due < write_due))
            return c->wakeup_due;
        return write_due;
    }
    }
    return 0;
}

/* One timer per connection, and it is almost never moved. It is armed at
 * most `shortest_timeout` ahead; every state's deadline is at least that far
 * from when the state begins, so entering a state needs no timer update. A
 * timer that fires before the deadline is simply armed again. */
static void conn_schedule_timer(conn *c)
{
    double due = conn_deadline(c);
    if (due == 0)
        return;
    if (ev_is_active(&c->timer) && c->timer_due <= due)
        return;
    struct ev_loop *loop = c->server->loop;
    double now = server_network_time(c->server);
    double fire_at = due < now + c->server->shortest_timeout ? due : now + c->server->shortest_timeout;
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, fire_at > now ? fire_at - now : 0, 0);
    ev_timer_start(loop, &c->timer);
    c->timer_due = fire_at;
}

static void conn_enter(conn *c, conn_state state)
{
    c->state = state;
    c->phase_started = server_network_time(c->server);
}

/* ---- writing ---- */

/* Bytes in the socket's send queue the peer has not acknowledged yet. */
static int conn_unsent_bytes(conn *c)
{
    int unsent;
    return ioctl(c->fd, SIOCOUTQ, &unsent) == 0 ? unsent : INT_MAX;
}

/* The socket becomes writable again only once a good part of its send
 * buffer (megabytes) has drained: a slow reader makes progress long before
 * that. The send queue shrinking counts as progress. */
static int conn_reader_progressed(conn *c)
{
    int unsent = conn_unsent_bytes(c);
    int progressed = unsent < c->unsent_when_blocked;
    c->unsent_when_blocked = unsent;
    return progressed;
}

/* The write timeout counts from now. */
static void conn_note_blocked(conn *c)
{
    c->unsent_when_blocked = conn_unsent_bytes(c);
    conn_schedule_timer(c);
}

conn_progress conn_flush(conn *c, size_t *budget)
{
    size_t written = 0;
    output_result result = output_flush(c->out, c->fd, budget, &written);
    if (written > 0)
        c->last_progress = server_network_time(c->server);
    switch (result) {
    case OUTPUT_DONE:
        return CONN_DONE;
    case OUTPUT_BLOCKED:
        return CONN_BLOCKED;
    case OUTPUT_ERROR:
        break;
    }
    return CONN_ABORT;
}

void conn_after_progress(conn *c, conn_progress progress)
{
    if (c->closed)
        return;
    switch (progress) {
    case CONN_BLOCKED:
        c->write_blocked = 1;
        conn_rewatch(c);
        conn_note_blocked(c);
        break;
    case CONN_PENDING:
        c->write_blocked = 0;
        c->awaiting_app = 1;
        conn_rewatch(c);
        break;
    case CONN_ABORT:
        conn_close(c);
        break;
    case CONN_DONE:
        break;
    }
}

void conn_kick(conn *c)
{
    ev_feed_event(c->server->loop, &c->watcher, EV_CUSTOM);
}

/* While an asynchronous app is awaited the socket is readable: the client
 * hung up (its request is still answered, but it is told: a half-closed
 * client may yet read the response), reset the connection, or sent its
 * next request early, which is read once this response is done. */
static void conn_check_hangup(conn *c)
{
    char byte;
    ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->read_paused = 1;
    conn_rewatch(c);
    if (n == 0) {
        c->hung_up = 1;
        c->keep_alive = 0;
        c->protocol->on_hangup(c);
    }
}

void conn_send_interim(conn *c, const char *data, size_t length)
{
    /* Best effort on an idle socket: if it does not go out, the client
     * sends the body after its own short wait anyway (RFC 9110 10.1.1). */
    ssize_t ignored = send(c->fd, data, length, MSG_NOSIGNAL);
    (void)ignored;
}

/* ---- refusing: answer, then close ---- */

static void conn_start_lingering(conn *c)
{
    c->write_blocked = c->read_paused = 0;
    shutdown(c->fd, SHUT_WR);
    conn_enter(c, CONN_LINGERING);
    conn_watch(c, EV_READ);
    conn_schedule_timer(c);
}

static void conn_flush_refusal(conn *c)
{
    size_t budget = SIZE_MAX;
    conn_progress progress = conn_flush(c, &budget);
    if (progress == CONN_ABORT)
        conn_close(c);
    else if (progress == CONN_BLOCKED) {
        conn_watch(c, EV_WRITE);
        conn_note_blocked(c);
    } else {
        conn_start_lingering(c);
    }
}

void conn_close_after_output(conn *c)
{
    c->keep_alive = 0;
    c->read_paused = c->answering = 0; /* a streamed body's flow control is over */
    conn_enter(c, CONN_REJECTING);
    c->last_progress = c->phase_started;
    c->in.len = c->parsed = 0; /* nothing more of it is read as a request */
    conn_flush_refusal(c);
}

/* ---- one request's cycle ---- */

void conn_attach(conn *c, void *exchange, output *out)
{
    c->exchange = exchange;
    c->out = out;
}

void conn_enter_body(conn *c)
{
    conn_enter(c, CONN_BODY);
    c->body_bytes = 0;
}

void conn_begin_response(conn *c, int client_keeps_alive)
{
    server *s = c->server;
    if (c->state == CONN_BODY) {
        c->answering = 1; /* the body goes on arriving: conn_end_body */
    } else {
        conn_enter(c, CONN_RESPONDING);
        c->write_blocked = c->awaiting_app = c->read_paused = 0;
    }
    s->requests_started++;
    /* The response that reaches max_requests says it is the last: the
     * client must not send another request on a connection about to go. */
    int last = s->opts.max_requests && s->requests_started >= s->opts.max_requests;
    c->keep_alive = client_keeps_alive && s->opts.keepalive && !s->stopping && !last;
}

void conn_end_body(conn *c)
{
    conn_enter(c, CONN_RESPONDING);
    c->answering = 0;
    c->read_paused = 0;
    conn_rewatch(c);
}

void conn_pause_reading(conn *c)
{
    c->read_paused = 1;
    conn_rewatch(c);
}

void conn_resume_reading(conn *c)
{
    if (!c->read_paused || (c->state != CONN_BODY && c->state != CONN_UPGRADED))
        return;
    c->read_paused = 0;
    c->last_progress = server_network_time(c->server);
    conn_rewatch(c);
    conn_schedule_timer(c);
}

int conn_request_done(conn *c)
{
    server *s = c->server;
    s->requests_served++;
    s->after_request(s);
    /* A head that said keep-alive is kept to: while stopping, the next
     * request still gets its drain (conn_deadline). */
    if (!c->keep_alive) {
        conn_close(c);
        return 0;
    }
    c->served_any = 1;
    c->write_blocked = c->awaiting_app = c->read_paused = c->answering = 0;
    conn_enter(c, c->in.len ? CONN_HEAD : CONN_AWAITING);
    conn_watch(c, EV_READ);
    conn_schedule_timer(c);
    return 1;
}

/* ---- reading ---- */

/* A connection's own read buffer (a partial head, pipelined requests) is
 * charged to the worker's memory budget: a burst of slow clients cannot
 * make it hold more than max_buffered_bytes. Returns 0, or -1 when the
 * budget is spent. */
static int conn_charge_input(conn *c)
{
    budget *memory = &c->server->budget.memory;
    if (c->in.cap <= c->in_charged)
        return 0;
    if (budget_charge(memory, c->in.cap - c->in_charged) < 0)
        return -1;
    c->in_charged = c->in.cap;
    return 0;
}

static void conn_free_input(conn *c)
{
    if (!c->in_shared)
        buffer_free(&c->in);
    budget_credit(&c->server->budget.memory, c->in_charged);
    c->in_charged = 0;
    c->in = (buffer){0};
    c->in_shared = 0;
}

#define OVER_BUDGET CONN_OVER_BUDGET

/* At the end of a callback: bytes still in the shared buffer (a partial
 * request, pipelined requests) move to a buffer of the connection's own.
 * 0, -1 (out of memory) or OVER_BUDGET. */
static int conn_keep_input(conn *c)
{
    if (!c->in_shared) {
        if (c->in.len == 0)
            conn_free_input(c);
        return 0;
    }
    buffer shared = c->in;
    c->in = (buffer){0};
    c->in_shared = 0;
    if (shared.len == 0)
        return 0;
    if (buffer_append(&c->in, shared.data, shared.len) < 0)
        return -1;
    return conn_charge_input(c) < 0 ? OVER_BUDGET : 0;
}

int conn_keep_bytes(conn *c, const char *data, size_t length)
{
    if (buffer_append(&c->in, data, length) < 0)
        return -1;
    return conn_charge_input(c) < 0 ? OVER_BUDGET : 0;
}

/* Where the next read goes: a connection with nothing pending reads into
 * the server's shared buffer, so an idle keep-alive connection holds no
 * read buffer at all (see conn_keep_input). 0, -1 (out of memory) or
 * OVER_BUDGET. */
static int conn_prepare_read(conn *c)
{
    if (c->in.data == NULL) {
        c->in = c->server->read_buffer;
        c->in.len = 0;
        c->in_shared = 1;
        return 0;
    }
    /* A second read in one callback (catching up before a deadline): the
     * shared buffer is never grown, what it holds moves to our own. */
    if (c->in_shared) {
        int kept = conn_keep_input(c);
        if (kept != 0)
            return kept;
        if (c->in.data == NULL)
            return conn_prepare_read(c);
    }
    if (buffer_reserve(&c->in, HEAD_READ_SPARE) < 0)
        return -1;
    return conn_charge_input(c) < 0 ? OVER_BUDGET : 0;
}

/* The protocol has taken what was read: a request still arriving keeps
 * its deadline (a response that is done armed the idle one). */
static void conn_after_input(conn *c)
{
    if (!c->closed && (c->state == CONN_HEAD || c->state == CONN_BODY))
        conn_schedule_timer(c);
}

/* Whether recv() failed for good: the peer is gone, or closed between or
 * within requests. */
static int conn_read_failed(ssize_t n)
{
    return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* A body in progress is read into the server's shared buffer and handed
 * to the protocol as it comes: the connection's own buffer keeps only the
 * head, and a slow upload holds no read buffer. */
static void conn_read_body(conn *c)
{
    server *s = c->server;
    ssize_t n = recv(c->fd, s->read_buffer.data, s->read_buffer.cap, 0);
    if (n <= 0) {
        if (conn_read_failed(n))
            conn_close(c);
        return;
    }
    c->last_progress = server_network_time(s);
    c->body_bytes += (uint64_t)n;
    c->protocol->on_stream(c, s->read_buffer.data, (size_t)n);
    conn_after_input(c);
}

/* The PROXY protocol header: the client it names becomes the peer, and
 * what follows it is the first request. Returns 1 once it is read. */
static int conn_read_proxy_header(conn *c)
{
    size_t length;
    struct sockaddr_storage client;
    proxy_result result = proxy_parse(c->in.data, c->in.len, &length, &client);
    if (result == PROXY_NEED_MORE && c->in.len < PROXY_HEADER_MAX)
        return 0;
    if (result != PROXY_DONE) {
        conn_close(c); /* not the header a balancer sends: refused */
        return 0;
    }
    if (client.ss_family != AF_UNSPEC) {
        PyObject *address, *port;
        if (peer_describe(c->server, (struct sockaddr *)&client, &address, &port) < 0) {
            PyErr_Clear();
            conn_close(c);
            return 0;
        }
        Py_XSETREF(c->remote_addr, address);
        Py_XSETREF(c->remote_port, port);
    }
    buffer_discard_front(&c->in, length);
    conn_enter(c, c->in.len ? CONN_HEAD : CONN_AWAITING);
    return 1;
}

static void conn_on_readable(conn *c)
{
    if (c->state == CONN_BODY && !c->in_shared && c->parsed == c->in.len) {
        conn_read_body(c);
        return;
    }
    int prepared = conn_prepare_read(c);
    if (prepared == OVER_BUDGET) {
        c->protocol->on_busy(c);
        return;
    }
    if (prepared < 0) {
        PyErr_Clear();
        conn_close(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n <= 0) {
        if (conn_read_failed(n))
            conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    c->last_progress = server_network_time(c->server);
    /* The timer armed at the accept bounds the header too. */
    if (c->state == CONN_PROXY && (!conn_read_proxy_header(c) || c->state == CONN_AWAITING))
        return;
    if (c->state == CONN_AWAITING)
        conn_enter(c, CONN_HEAD);
    else if (c->state == CONN_BODY)
        c->body_bytes += (uint64_t)n;
    c->protocol->on_input(c);
    conn_after_input(c);
}

static void conn_on_lingering_readable(conn *c)
{
    char sink[16 * 1024];
    ssize_t n = recv(c->fd, sink, sizeof sink, 0);
    if (n <= 0 && conn_read_failed(n))
        conn_close(c);
}

/* ---- callbacks ---- */

/* Callbacks may close their connection deep inside; the memory is freed
 * when the callback returns (conn_close defers it while `in_callback`). */
static void conn_begin_callback(conn *c)
{
    c->in_callback = 1;
}

static void conn_end_callback(conn *c)
{
    if (!c->closed) {
        buffer shared = c->in;
        int kept = conn_keep_input(c);
        if (kept == OVER_BUDGET) {
            /* Refused with what it sent still at hand (the protocol logs
             * the request line); the shared buffer is never kept after. */
            conn_free_input(c);
            c->in = shared;
            c->in_shared = 1;
            c->protocol->on_busy(c);
            if (!c->closed) {
                c->in = (buffer){0};
                c->in_shared = 0;
            }
        } else if (kept < 0) {
            PyErr_Clear();
            conn_close(c);
        }
    }
    c->in_callback = 0;
    if (c->closed) {
        if (c->exchange != NULL)
            c->protocol->on_close(c); /* what was kept for the callback goes now */
        PyMem_Free(c);
    }
}

static void conn_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    conn *c = w->data;
    conn_begin_callback(c);
    switch (c->state) {
    case CONN_PROXY:
    case CONN_AWAITING:
    case CONN_HEAD:
    case CONN_BODY:
        if (revents & EV_READ)
            conn_on_readable(c);
        /* An app answering while the body arrives (conn_begin_response),
         * or since the read just made it complete. */
        if (!c->closed && (c->answering || c->state == CONN_RESPONDING) && (revents & (EV_WRITE | EV_CUSTOM)))
            c->protocol->on_writable(c);
        break;
    case CONN_RESPONDING:
        if (revents & EV_READ)
            conn_check_hangup(c);
        if (!c->closed && (revents & (EV_WRITE | EV_CUSTOM)))
            c->protocol->on_writable(c);
        break;
    case CONN_REJECTING:
        if (revents & EV_WRITE)
            conn_flush_refusal(c);
        break;
    case CONN_LINGERING:
        if (revents & EV_READ)
            conn_on_lingering_readable(c);
        break;
    case CONN_UPGRADED:
        if (revents & EV_READ)
            conn_on_readable(c);
        if (!c->closed && c->state == CONN_UPGRADED && (revents & (EV_WRITE | EV_CUSTOM)))
            c->protocol->on_writable(c);
        break;
    }
    conn_end_callback(c);
}

static void conn_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn *c = w->data;
    conn_begin_callback(c);
    conn_check_deadline(c);
    conn_end_callback(c);
}

/* Bytes the client sent that the kernel holds for us: a request, or more
 * of one, that arrived while the worker was busy elsewhere. */
static int conn_has_unread_bytes(conn *c)
{
    char byte;
    return recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static int conn_is_reading(const conn *c)
{
    if (c->read_paused)
        return 0;
    return c->state == CONN_PROXY || c->state == CONN_AWAITING || c->state == CONN_HEAD || c->state == CONN_BODY ||
           c->state == CONN_UPGRADED;
}

/* An upgraded connection's deadline passed: a write that made no progress
 * for write_timeout closes it; its protocol's own wake-up is its own. */
static void conn_upgraded_deadline(conn *c, double now)
{
    if (c->write_blocked && now >= c->last_progress + c->server->opts.write_timeout) {
        if (!conn_reader_progressed(c)) {
            conn_close(c);
            return;
        }
        c->last_progress = now;
    }
    if (c->wakeup_due != 0 && now >= c->wakeup_due) {
        c->wakeup_due = 0;
        c->protocol->on_late(c);
    }
    if (!c->closed && c->state == CONN_UPGRADED)
        conn_schedule_timer(c);
}

static void conn_check_deadline(conn *c)
{
    double now = server_network_time(c->server);
    double due = conn_deadline(c);
    if (due == 0)
        return;
    /* Never expire a connection for bytes it did send: read what is
     * waiting first, then judge the deadline as it stands after that. */
    for (int i = 0; due <= now && i < CATCH_UP_READS; i++) {
        conn_state before = c->state;
        if (!conn_is_reading(c) || !conn_has_unread_bytes(c))
            break;
        conn_on_readable(c);
        if (c->closed || c->state != before)
            return;
        now = server_network_time(c->server);
        due = conn_deadline(c);
    }
    if (due > now) {
        conn_schedule_timer(c);
        return;
    }
    if (c->state == CONN_UPGRADED) {
        conn_upgraded_deadline(c, now);
        return;
    }
    if ((c->state == CONN_RESPONDING || c->state == CONN_REJECTING) && conn_reader_progressed(c)) {
        c->last_progress = now;
        conn_schedule_timer(c);
        return;
    }
    if (c->state == CONN_HEAD || c->state == CONN_BODY)
        c->protocol->on_late(c);
    else
        conn_close(c); /* idle keep-alive, write timeout, or done lingering */
}

/* ---- opening and closing ---- */

int conn_open(listener *l, int fd, const struct sockaddr *peer, socklen_t peer_length)
{
    (void)peer_length;
    server *s = l->server;
    conn *c = PyMem_Calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        PyErr_NoMemory();
        return -1;
    }
    c->server = s;
    c->listener = l;
    c->protocol = s->protocol;
    c->fd = fd;
    if (peer_describe(s, peer, &c->remote_addr, &c->remote_port) < 0) {
        PyMem_Free(c);
        close(fd);
        return -1;
    }
    /* A unix peer is on this machine: trusted as a proxy, as in gunicorn. */
    c->peer_trusted = peer->sa_family == AF_UNIX || networks_contain_sockaddr(&s->trusted_proxies, peer);
    if ((peer->sa_family == AF_INET || peer->sa_family == AF_INET6) && s->opts.tcp_nodelay) {
        /* Responses go out in as few writes as we can make them; Nagle
         * would only hold back the last piece of each. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->conn_count++;
    server_publish_connections(s);

    ev_io_init(&c->watcher, conn_on_io, fd, EV_READ);
    c->watcher.data = c;
    ev_io_start(s->loop, &c->watcher);
    c->watching = EV_READ;
    ev_timer_init(&c->timer, conn_on_timer, 0, 0);
    c->timer.data = c;
    conn_enter(c, s->opts.proxy_protocol ? CONN_PROXY : CONN_AWAITING);
    conn_schedule_timer(c);
    return 0;
}

void conn_close(conn *c)
{
    if (c->closed)
        return; /* a second Ctrl-C closed it under a callback that goes on */
    server *s = c->server;
    /* Unlinked first: releasing the request runs Python code (the
     * iterable's close()), which may stop the server and walk the list. */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ev_io_stop(s->loop, &c->watcher);
    ev_timer_stop(s->loop, &c->timer);
    c->closed = 1;
    if (c->exchange != NULL)
        c->protocol->on_close(c);
    conn_free_input(c);
    Py_XDECREF(c->remote_addr);
    Py_XDECREF(c->remote_port);
    close(c->fd);
    if (!c->in_callback)
        PyMem_Free(c);
    s->conn_count--;
    server_publish_connections(s);
    s->after_close(s);
}

void conn_stop(conn *c)
{
    /* Every head from now on says Connection: close (conn_keeps_alive).
     * A connection idle after a response that said keep-alive (before the
     * stop, or while it was being written) may be sending its next request
     * right now, with no way to know the server is going: it is closed
     * only after a short drain (conn_deadline), and a request that arrives
     * meanwhile, or was already in the kernel, is answered. A new
     * connection was accepted for a request surely on its way (bounded by
     * the header timeout). */
    if (c->state == CONN_AWAITING)
        conn_schedule_timer(c);
    else if (c->state == CONN_UPGRADED && c->protocol->on_stop != NULL && !c->server->upgraded_stay)
        c->protocol->on_stop(c);
}

/* ---- an upgraded connection ---- */

void conn_upgrade(conn *c, const protocol *p, void *state)
{
    server *s = c->server;
    c->protocol = p;
    c->exchange = state;
    c->out = NULL;
    c->keep_alive = 0;
    c->write_blocked = c->awaiting_app = c->read_paused = c->answering = c->hung_up = 0;
    c->wakeup_due = 0;
    conn_enter(c, CONN_UPGRADED);
    c->last_progress = c->phase_started;
    conn_rewatch(c);
    /* Its protocol starts in the connection's own event: bytes the client
     * sent behind the handshake are in `in` already. */
    conn_kick(c);
    s->requests_served++;
    s->after_request(s);
}

ssize_t conn_write(conn *c, const char *data, size_t length)
{
    ssize_t n = send(c->fd, data, length, MSG_NOSIGNAL);
    if (n > 0) {
        c->last_progress = server_network_time(c->server);
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

void conn_want_writable(conn *c, int wanted)
{
    if (c->write_blocked == (unsigned)(wanted != 0))
        return;
    c->write_blocked = wanted != 0;
    conn_rewatch(c);
    if (wanted)
        conn_note_blocked(c);
}

void conn_wake_at(conn *c, double due)
{
    c->wakeup_due = due;
    if (due != 0)
        conn_schedule_timer(c);
}

void conn_linger(conn *c)
{
    c->wakeup_due = 0;
    conn_start_lingering(c);
}
