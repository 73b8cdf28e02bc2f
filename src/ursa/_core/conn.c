#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "environ.h"

/* Free space asked of a connection's own read buffer before each read (it
 * has one only while a request is incomplete or pipelined bytes wait). */
#define HEAD_READ_SPARE (8 * 1024)
#define BODY_READ_SPARE (64 * 1024)
/* After an error response the client may still be sending; read and drop
 * it this long so that it sees the response rather than a reset. */
#define LINGER_SECONDS 2.0

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_process_input(conn *c);
static void conn_dispatch_io(conn *c);
static void conn_check_deadline(conn *c);

/* ---- events ---- */

static void conn_watch(conn *c, int events)
{
    if (c->watching == events)
        return;
    struct ev_loop *loop = c->server->loop;
    ev_io_stop(loop, &c->watcher);
    ev_io_set(&c->watcher, c->fd, events);
    ev_io_start(loop, &c->watcher);
    c->watching = events;
}

/* When the current phase times out, or 0 when nothing can time out (the
 * app is running, or its response is being produced). */
static double conn_deadline(const conn *c)
{
    const server_options *o = &c->server->opts;
    switch (c->state) {
    case CONN_AWAITING: {
        if (!c->served_any)
            return c->phase_started + o->header_timeout;
        double idle_due = c->phase_started + o->keepalive_timeout;
        /* Retiring: an idle connection gets a short drain (see conn_stop). */
        double retire_due = c->server->stop_started + c->server->retire_drain;
        return c->server->stopping && retire_due < idle_due ? retire_due : idle_due;
    }
    case CONN_READING: {
        if (!c->x->req.headers_complete)
            return c->phase_started + o->header_timeout;
        double gap_due = c->last_progress + o->body_timeout;
        if (o->min_body_rate <= 0)
            return gap_due;
        /* mod_reqtimeout's MinRate: past body_timeout, each min_body_rate
         * bytes received buy one second more, so a trickle ends however
         * steady it is, and an upload above the rate never does. */
        double rate_due = c->body_started + o->body_timeout + (double)c->x->req.body.size / o->min_body_rate;
        return rate_due < gap_due ? rate_due : gap_due;
    }
    case CONN_RESPONDING:
    case CONN_REJECTING:
        return c->watching == EV_WRITE ? c->last_progress + o->write_timeout : 0;
    case CONN_LINGERING:
        return c->phase_started + LINGER_SECONDS;
    }
    return 0;
}

/* One timer per connection, and it is almost never moved. It is armed at
 * most `shortest_timeout` ahead; every phase's deadline is at least that far
 * from when the phase begins, so entering a phase needs no timer update. A
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

/* ---- errors: answer, then close ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 503: return "Service Unavailable";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

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

static void conn_start_lingering(conn *c)
{
    shutdown(c->fd, SHUT_WR);
    conn_enter(c, CONN_LINGERING);
    conn_watch(c, EV_READ);
    conn_schedule_timer(c);
}

static void conn_flush_rejection(conn *c)
{
    size_t written = 0;
    flush_result f = outq_flush(&c->x->out, c->fd, SIZE_MAX, &written);
    if (written)
        c->last_progress = server_network_time(c->server);
    if (f == FLUSH_ERROR) {
        conn_close(c);
    } else if (f == FLUSH_BLOCKED) {
        conn_watch(c, EV_WRITE);
        c->unsent_when_blocked = conn_unsent_bytes(c);
        conn_schedule_timer(c);
    } else {
        conn_start_lingering(c);
    }
}

/* `duration` is in seconds. The hook is app code: its time is the app's. */
static void conn_log_access(conn *c, PyObject *environ, int status, uint64_t body_bytes, double duration)
{
    server *s = c->server;
    double called_at = ev_now(s->loop);
    PyObject *ok = PyObject_CallFunction(s->opts.access_log, "OiKL", environ, status,
                                         (unsigned long long)body_bytes, (long long)(duration * 1e6));
    if (ok == NULL)
        server_report_exception(s, "ursa: the access_log callable raised");
    Py_XDECREF(ok);
    server_app_returned(s, called_at);
}

static void conn_log_rejection(conn *c, int status, size_t body_bytes)
{
    PyObject *environ = environ_build_partial(c);
    if (environ == NULL) {
        server_report_exception(c->server, "ursa: cannot describe a refused request for the access log");
        return;
    }
    conn_log_access(c, environ, status, body_bytes, server_network_time(c->server) - c->phase_started);
    Py_DECREF(environ);
}

/* Refuse the request being read with `status`: a short plain-text answer,
 * then the connection closes. Nothing of the request reaches the app. */
static void conn_reject(conn *c, int status, const char *reason)
{
    const char *phrase = reason_phrase(status);
    PyObject *answer = PyBytes_FromFormat("HTTP/1.1 %d %s\r\n"
                                          "Content-Type: text/plain; charset=utf-8\r\n"
                                          "Content-Length: %zu\r\n"
                                          "Connection: close\r\n"
                                          "%s\r\n"
                                          "%d %s: %s\n",
                                          status, phrase,
                                          strlen(phrase) + strlen(reason) + 7, server_date_header(c->server),
                                          status, phrase, reason);
    c->keep_alive = 0;
    conn_enter(c, CONN_REJECTING);
    c->last_progress = c->phase_started;
    if (answer == NULL || outq_push(&c->x->out, answer, PyBytes_AS_STRING(answer), PyBytes_GET_SIZE(answer)) < 0) {
        Py_XDECREF(answer);
        PyErr_Clear();
        conn_close(c);
        return;
    }
    Py_DECREF(answer);
    if (c->server->opts.access_log != NULL)
        conn_log_rejection(c, status, strlen(phrase) + strlen(reason) + 7);
    c->in.len = c->parsed = 0; /* nothing more of it is read as a request */
    conn_flush_rejection(c);
}

/* ---- the exchange: the state of a request in progress ---- */

/* Spare exchanges the server keeps: enough for every connection that is
 * mid-request at once in a busy moment, bounded so a burst is given back. */
#define MAX_SPARE_EXCHANGES 32

static int conn_attach(conn *c)
{
    server *s = c->server;
    exchange *x = s->spare_exchanges;
    if (x != NULL) {
        s->spare_exchanges = x->next_spare;
        s->spare_exchange_count--;
    } else {
        x = PyMem_Calloc(1, sizeof *x);
        if (x == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        body_init(&x->req.body);
        x->resp.file_fd = -1;
        x->resp.content_length = -1;
        spool_init(&x->resp.spool);
    }
    llhttp_init(&x->parser, HTTP_REQUEST, request_parser_settings());
    c->x = x;
    return 0;
}

static void exchange_free(exchange *x)
{
    buffer_free(&x->resp.head);
    outq_free(&x->out);
    request_free(&x->req);
    PyMem_Free(x);
}

/* Give the exchange back; its request and response must be released. */
static void conn_detach(conn *c)
{
    server *s = c->server;
    exchange *x = c->x;
    c->x = NULL;
    if (s->spare_exchange_count >= MAX_SPARE_EXCHANGES) {
        exchange_free(x);
        return;
    }
    x->next_spare = s->spare_exchanges;
    s->spare_exchanges = x;
    s->spare_exchange_count++;
}

void conn_free_spares(server *s)
{
    while (s->spare_exchanges != NULL) {
        exchange *x = s->spare_exchanges;
        s->spare_exchanges = x->next_spare;
        exchange_free(x);
    }
    s->spare_exchange_count = 0;
}

/* ---- one request's cycle ---- */

/* The response is written: log it, let it go, and either wait for the next
 * request (returns 1) or close (returns 0). */
static int conn_finish_request(conn *c)
{
    server *s = c->server;
    response *r = &c->x->resp;
    if (s->opts.access_log != NULL)
        conn_log_access(c, r->environ, r->status_code, r->body_sent, ev_time() - r->started_at);
    response_release(c);
    request_reset(&c->x->req);
    llhttp_resume(&c->x->parser);
    buffer_discard_front(&c->in, c->parsed);
    c->parsed = 0;
    if (c->in.len == 0)
        conn_detach(c); /* no pipelined request waits: the connection idles */
    c->body_clock_started = 0;
    s->requests_served++;
    if (s->opts.max_requests && s->requests_served >= s->opts.max_requests)
        server_begin_stop(s);
    if (!c->keep_alive || s->stopping) {
        conn_close(c);
        return 0;
    }
    c->served_any = 1;
    conn_enter(c, c->in.len ? CONN_READING : CONN_AWAITING);
    conn_watch(c, EV_READ);
    conn_schedule_timer(c);
    return 1;
}

/* Act on what the response path says. Returns 1 when the connection is
 * ready for the next request, 0 when it is closed or waiting to write. */
static int conn_after_pump(conn *c, pump_result result)
{
    if (c->closed)
        return 0;
    switch (result) {
    case PUMP_DONE:
        return conn_finish_request(c);
    case PUMP_BLOCKED:
        conn_watch(c, EV_WRITE);
        c->unsent_when_blocked = conn_unsent_bytes(c);
        conn_schedule_timer(c);
        return 0;
    case PUMP_ABORT:
        conn_close(c);
        return 0;
    }
    return 0;
}

static int conn_respond(conn *c)
{
    server *s = c->server;
    conn_enter(c, CONN_RESPONDING);
    s->requests_started++;
    /* The response that reaches max_requests says it is the last: the
     * client must not send another request on a connection about to go. */
    int last = s->opts.max_requests && s->requests_started >= s->opts.max_requests;
    c->keep_alive = c->x->req.keep_alive && s->opts.keepalive && !s->stopping && !last;
    PyObject *environ = environ_build(c);
    if (environ == NULL) {
        server_report_exception(c->server, "ursa: cannot build the WSGI environ");
        conn_reject(c, 500, "cannot build the WSGI environ");
        return 0;
    }
    return conn_after_pump(c, response_start(c, environ));
}

static void conn_send_continue(conn *c)
{
    c->x->req.expect_continue = 0;
    /* Best effort on an idle socket: if it does not go out, the client
     * sends the body after its own short wait anyway (RFC 9110 10.1.1). */
    ssize_t ignored = send(c->fd, continue_line, sizeof continue_line - 1, MSG_NOSIGNAL);
    (void)ignored;
}

/* What a parse said: refuse, answer, or wait for more. Returns 1 when the
 * connection may go on parsing what it has. */
static int conn_after_parse(conn *c, parse_result result)
{
    if (result == PARSE_ERROR) {
        conn_reject(c, c->x->req.error_status, c->x->req.error_reason);
        return 0;
    }
    if (c->x->req.headers_complete && !c->body_clock_started) {
        c->body_started = server_network_time(c->server);
        c->body_clock_started = 1;
    }
    if (result == PARSE_NEED_MORE) {
        if (c->x->req.expect_continue)
            conn_send_continue(c);
        conn_schedule_timer(c);
        return 0;
    }
    return conn_respond(c);
}

static void conn_process_input(conn *c)
{
    while (c->in.len > c->parsed) {
        parse_result result =
            request_parse(&c->x->parser, &c->x->req, &c->in, &c->parsed, &c->server->opts, &c->server->budget);
        if (!conn_after_parse(c, result))
            return;
    }
    conn_schedule_timer(c);
}

/* ---- I/O ---- */

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

#define OVER_BUDGET (-2)
static const char over_budget_reason[] = "the server holds too many incomplete requests; try again later";

/* Where the next read goes: a connection with nothing pending reads into
 * the server's shared buffer, so an idle keep-alive connection holds no
 * read buffer at all (see conn_keep_input). 0, -1 (out of memory) or
 * OVER_BUDGET. */
static int conn_keep_input(conn *c);

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
    size_t spare = c->x != NULL && c->x->req.headers_complete ? BODY_READ_SPARE : HEAD_READ_SPARE;
    if (buffer_reserve(&c->in, spare) < 0)
        return -1;
    return conn_charge_input(c) < 0 ? OVER_BUDGET : 0;
}

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

/* A body in progress is read into the server's shared buffer and goes
 * straight to the request's body storage: the connection's own buffer
 * keeps only the head, and a slow upload holds no read buffer. Bytes past
 * the body (a pipelined request) join the head in the connection's own. */
static int conn_reads_body(const conn *c)
{
    return c->x != NULL && c->x->req.headers_complete && !c->x->req.complete && !c->in_shared &&
           c->parsed == c->in.len;
}

static void conn_on_body_readable(conn *c)
{
    server *s = c->server;
    buffer *scratch = &s->read_buffer;
    ssize_t n = recv(c->fd, scratch->data, scratch->cap, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_close(c); /* the client gave up on its upload */
        return;
    }
    c->last_progress = server_network_time(s);
    size_t consumed;
    parse_result result = request_parse_body(&c->x->parser, &c->x->req, &c->in, scratch->data, (size_t)n,
                                             &consumed, &s->opts, &s->budget);
    if (result != PARSE_ERROR && consumed < (size_t)n) {
        if (buffer_append(&c->in, scratch->data + consumed, (size_t)n - consumed) < 0) {
            PyErr_Clear();
            conn_close(c);
            return;
        }
        if (conn_charge_input(c) < 0) {
            conn_reject(c, 503, over_budget_reason);
            return;
        }
    }
    if (conn_after_parse(c, result))
        conn_process_input(c); /* the pipelined requests behind it */
}

static void conn_on_readable(conn *c)
{
    if (conn_reads_body(c)) {
        conn_on_body_readable(c);
        return;
    }
    int prepared = conn_prepare_read(c);
    if (prepared == OVER_BUDGET) {
        conn_reject(c, 503, over_budget_reason);
        return;
    }
    if (prepared < 0) {
        PyErr_Clear();
        conn_close(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_close(c); /* the peer is gone, or closed between or within requests */
        return;
    }
    if (c->x == NULL && conn_attach(c) < 0) {
        PyErr_Clear();
        conn_close(c);
        return;
    }
    c->in.len += (size_t)n;
    c->last_progress = server_network_time(c->server);
    if (c->state == CONN_AWAITING)
        conn_enter(c, CONN_READING);
    conn_process_input(c);
}

static void conn_on_lingering_readable(conn *c)
{
    char sink[16 * 1024];
    ssize_t n = recv(c->fd, sink, sizeof sink, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_close(c);
}

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
            /* Refused with what it sent still at hand, for the access log. */
            conn_free_input(c);
            c->in = shared;
            c->in_shared = 1;
            conn_reject(c, 503, over_budget_reason);
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
    if (c->closed)
        PyMem_Free(c);
}

static void conn_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    conn *c = w->data;
    conn_begin_callback(c);
    conn_dispatch_io(c);
    conn_end_callback(c);
}

static void conn_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    conn *c = w->data;
    (void)loop;
    conn_begin_callback(c);
    conn_check_deadline(c);
    conn_end_callback(c);
}

static void conn_dispatch_io(conn *c)
{
    switch (c->state) {
    case CONN_AWAITING:
    case CONN_READING:
        conn_on_readable(c);
        break;
    case CONN_RESPONDING:
        if (conn_after_pump(c, response_pump(c)))
            conn_process_input(c);
        break;
    case CONN_REJECTING:
        conn_flush_rejection(c);
        break;
    case CONN_LINGERING:
        conn_on_lingering_readable(c);
        break;
    }
}

/* Bytes the client sent that the kernel holds for us: a request, or more
 * of one, that arrived while the worker was busy elsewhere. */
static int conn_has_unread_bytes(conn *c)
{
    char byte;
    return recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Reads at most this much to catch up before a deadline is judged. */
#define CATCH_UP_READS 16

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
        if ((before != CONN_AWAITING && before != CONN_READING) || !conn_has_unread_bytes(c))
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
    if ((c->state == CONN_RESPONDING || c->state == CONN_REJECTING) && conn_reader_progressed(c)) {
        c->last_progress = now;
        conn_schedule_timer(c);
        return;
    }
    if (c->state == CONN_READING)
        conn_reject(c, 408, c->x->req.headers_complete ? "request body timed out" : "request head timed out");
    else
        conn_close(c); /* idle keep-alive, write timeout, or done lingering */
}

/* ---- opening and closing ---- */

/* A port as a str; on the accept path of every connection, where
 * PyUnicode_FromFormat costs more than the rest of the set-up. */
static PyObject *port_text(uint16_t port)
{
    char digits[5];
    int n = 0;
    do {
        digits[4 - n++] = (char)('0' + port % 10);
        port /= 10;
    } while (port > 0);
    return PyUnicode_FromStringAndSize(digits + 5 - n, n);
}

/* Dotted decimal: glibc's inet_ntop goes through sprintf, which costs
 * more than the rest of accepting a connection. */
static PyObject *ipv4_text(struct in_addr address)
{
    const unsigned char *octets = (const unsigned char *)&address.s_addr;
    char text[INET_ADDRSTRLEN];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned octet = octets[i];
        if (octet >= 100)
            text[n++] = (char)('0' + octet / 100);
        if (octet >= 10)
            text[n++] = (char)('0' + octet / 10 % 10);
        text[n++] = (char)('0' + octet % 10);
        text[n++] = '.';
    }
    return PyUnicode_FromStringAndSize(text, (Py_ssize_t)n - 1);
}

/* REMOTE_ADDR of an IPv4 peer. Behind a proxy every connection comes from
 * the same address: the server keeps the last one's str. */
static PyObject *ipv4_peer_text(server *s, struct in_addr address)
{
    if (s->last_peer_text == NULL || s->last_peer_ipv4 != address.s_addr) {
        PyObject *text = ipv4_text(address);
        if (text == NULL)
            return NULL;
        Py_XSETREF(s->last_peer_text, text);
        s->last_peer_ipv4 = address.s_addr;
    }
    Py_INCREF(s->last_peer_text);
    return s->last_peer_text;
}

static int conn_set_peer(conn *c, const struct sockaddr *peer, socklen_t peer_length)
{
    char text[INET6_ADDRSTRLEN];
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        c->remote_port = port_text(ntohs(in->sin_port));
        if (c->remote_port == NULL)
            return -1;
        c->remote_addr = ipv4_peer_text(c->server, in->sin_addr);
        return c->remote_addr ? 0 : -1;
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        c->remote_port = port_text(ntohs(in6->sin6_port));
    } else {
        /* A unix peer is almost always unnamed: REMOTE_ADDR is "", as in
         * gunicorn and uWSGI, and there is no REMOTE_PORT. */
        (void)peer_length;
        c->remote_addr = c->server->state->str_empty;
        Py_INCREF(c->remote_addr);
        return 0;
    }
    if (c->remote_port == NULL)
        return -1;
    c->remote_addr = PyUnicode_FromString(text);
    return c->remote_addr ? 0 : -1;
}

int conn_open(listener *l, int fd, const struct sockaddr *peer, socklen_t peer_length)
{
    server *s = l->server;
    conn *c = PyMem_Calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        PyErr_NoMemory();
        return -1;
    }
    c->server = s;
    c->listener = l;
    c->fd = fd;
    if (conn_set_peer(c, peer, peer_length) < 0) {
        Py_XDECREF(c->remote_port);
        PyMem_Free(c);
        close(fd);
        return -1;
    }
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
    conn_enter(c, CONN_AWAITING);
    conn_schedule_timer(c);
    return 0;
}

void conn_close(conn *c)
{
    if (c->closed)
        return; /* a second Ctrl-C closed it under a callback that goes on */
    server *s = c->server;
    /* Unlinked first: the iterable's close() below runs Python code, which
     * may stop the server and walk the connection list. */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->conn_count--;
    server_publish_connections(s);
    ev_io_stop(s->loop, &c->watcher);
    ev_timer_stop(s->loop, &c->timer);
    if (c->x != NULL) {
        response_release(c); /* also drops a refusal's queued answer */
        request_reset(&c->x->req);
        conn_detach(c);
    }
    conn_free_input(c);
    Py_XDECREF(c->remote_addr);
    Py_XDECREF(c->remote_port);
    close(c->fd);
    c->closed = 1;
    if (!c->in_callback)
        PyMem_Free(c);
    server_conn_closed(s);
}

void conn_stop(conn *c)
{
    /* Every response from now on says Connection: close. A connection idle
     * after a response may be sending its next request right now, with
     * no way to know the server is going: it is closed only after a short
     * drain (conn_deadline), and a request that arrives meanwhile, or was
     * already in the kernel, is answered. A new connection was accepted
     * for a request surely on its way (bounded by the header timeout). */
    c->keep_alive = 0;
    if (c->state == CONN_AWAITING)
        conn_schedule_timer(c);
}
