#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/exchange.h"

#include "common/digits.h"

#include <stdio.h>
#include <string.h>

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char internal_error_body[] = "500 Internal Server Error\n";

/* A streamed body: reading the socket pauses while this much waits for the
 * app to take it (flow control). */
#define STREAM_WINDOW (64 * 1024)

/* Spare exchanges a server keeps: enough for every connection that is
 * mid-request at once in a busy moment, bounded so a burst is given back. */
#define MAX_SPARE_EXCHANGES 32

static http_server *http_of(const server *s)
{
    return s->protocol_state;
}

static exchange *exchange_of(const conn *c)
{
    return c->exchange;
}

/* ---- exchanges: one per request in progress, kept spare in between ---- */

static exchange *exchange_attach(conn *c)
{
    http_server *h = http_of(c->server);
    exchange *x = h->spares;
    if (x != NULL) {
        h->spares = x->next_spare;
        h->spare_count--;
    } else {
        x = PyMem_Calloc(1, sizeof *x + h->iface->state_size);
        if (x == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        body_init(&x->req.body);
        output_init(&x->out);
        x->response.content_length = -1;
    }
    llhttp_init(&x->parser, HTTP_REQUEST, request_parser_settings());
    x->conn = c;
    conn_attach(c, x, &x->out);
    return x;
}

static void exchange_free(exchange *x)
{
    buffer_free(&x->head);
    output_free(&x->out);
    request_free(&x->req);
    PyMem_Free(x);
}

/* The request and its response are over: the interface releases its
 * state, and the exchange is ready for the next request. */
static void exchange_settle(exchange *x, int completed)
{
    if (x->dispatched) {
        x->dispatched = 0;
        http_of(x->conn->server)->iface->on_done(x, completed);
    }
    output_clear(&x->out);
    request_reset(&x->req);
    x->head.len = 0;
    memset(&x->response, 0, sizeof x->response);
    x->response.content_length = -1;
    x->body_sent = x->body_given = 0;
    x->head_sent = x->chunked = x->no_body = x->length_reached = x->ended = x->failed = 0;
    x->continue_pending = 0;
    x->switch_to = NULL;
    x->switch_state = NULL;
}

/* Give the exchange back; the connection idles. */
static void exchange_detach(conn *c)
{
    http_server *h = http_of(c->server);
    exchange *x = exchange_of(c);
    conn_attach(c, NULL, NULL);
    x->conn = NULL;
    if (h->spare_count >= MAX_SPARE_EXCHANGES) {
        exchange_free(x);
        return;
    }
    x->next_spare = h->spares;
    h->spares = x;
    h->spare_count++;
}

/* ---- refusing a request ---- */

/* A short plain-text answer, then the connection closes. Nothing of the
 * request reaches the app. */
static void http_refuse(exchange *x, int status, const char *reason)
{
    conn *c = x->conn;
    server *s = c->server;
    if (x->dispatched) {
        /* A streamed body went wrong while the app had the request: it is
         * told the client is gone; an answer can go only if it sent none. */
        int head_sent = x->head_sent;
        exchange_settle(x, 0);
        if (head_sent || c->closed) {
            if (!c->closed)
                conn_close(c);
            return;
        }
    }
    const char *phrase = head_reason_phrase(status);
    char line[64], body[256], length[24];
    int line_length = snprintf(line, sizeof line, "%d %s", status, phrase);
    int body_length = snprintf(body, sizeof body, "%d %s: %s\n", status, phrase, reason);
    if (body_length >= (int)sizeof body)
        body_length = (int)sizeof body - 1;
    int length_length = snprintf(length, sizeof length, "%d", body_length);
    head_tail tail = {date_line(&http_of(s)->dates, (time_t)ev_now(s->loop)), 1, FRAMING_LENGTH, -1, 0, 0};
    buffer *head = &x->head;
    if (head_begin(head, line, (size_t)line_length) < 0 ||
        head_field(head, "Content-Type", 12, "text/plain; charset=utf-8", 25) < 0 ||
        head_field(head, "Content-Length", 14, length, (size_t)length_length) < 0 || head_end(head, &tail) < 0 ||
        buffer_append(head, body, (size_t)body_length) < 0) {
        PyErr_Clear();
        conn_close(c);
        return;
    }
    output_clear(&x->out);
    if (output_push(&x->out, NULL, head->data, head->len, &s->budget) < 0) {
        PyErr_Clear();
        conn_close(c);
        return;
    }
    http_of(s)->iface->on_refused(x, status, (size_t)body_length);
    if (!c->closed)
        conn_close_after_output(c);
}

/* ---- reading requests ---- */

/* The 101 is written: the request is over, and the connection is the new
 * protocol's. What the client sent behind the head (the first frames)
 * stays in `in` for it. */
static void http_hand_over(exchange *x)
{
    conn *c = x->conn;
    const protocol *p = x->switch_to;
    void *state = x->switch_state;
    exchange_settle(x, 1);
    if (c->closed)
        return;
    buffer_discard_front(&c->in, c->parsed);
    c->parsed = 0;
    exchange_detach(c);
    conn_upgrade(c, p, state);
}

/* The response went as far as it could: it is done (the next request may
 * follow: returns 1), waits for the socket, or the connection closes. */
static int http_progress(exchange *x, conn_progress progress)
{
    conn *c = x->conn;
    if (c->closed)
        return 0;
    if (progress != CONN_DONE) {
        conn_after_progress(c, progress);
        return 0;
    }
    if (x->switch_to != NULL) {
        http_hand_over(x);
        return 0;
    }
    if (x->out.file_short)
        conn_refuse_keep_alive(c); /* the file ended early: only a close ends the body */
    int body_unread = !x->req.complete;
    exchange_settle(x, 1);
    if (c->closed)
        return 0;
    if (body_unread) {
        /* Answered before its body was all read: the rest is not parsed
         * for the next request; the client sees the answer, not a reset. */
        conn_close_after_output(c);
        return 0;
    }
    llhttp_resume(&x->parser);
    buffer_discard_front(&c->in, c->parsed);
    c->parsed = 0;
    if (c->in.len == 0)
        exchange_detach(c); /* no pipelined request waits */
    return conn_request_done(c);
}

static int http_dispatch(exchange *x)
{
    conn *c = x->conn;
    server *s = c->server;
    /* What a proxy in front says of the client counts only from a proxy
     * the server trusts, and then whole or not at all. */
    memset(&x->forwarded, 0, sizeof x->forwarded);
    const char *why;
    if (x->req.has_forwarded && c->peer_trusted &&
        forwarded_read(&x->req, c->in.data, &s->trusted_proxies, &x->forwarded, &why) < 0) {
        http_refuse(x, 400, why);
        return 0;
    }
    conn_begin_response(c, x->req.keep_alive);
    if (s->heartbeat != NULL)
        server_name_request(s, llhttp_method_name((llhttp_method_t)x->req.method), c->in.data + x->req.url.offset,
                            x->req.url.length);
    x->dispatched = 1;
    return http_progress(x, http_of(s)->iface->on_request(x));
}

/* Body bytes of a dispatched request arrived (or its end): the interface
 * is told, and reading pauses while it has not taken a window's worth. */
static void http_body_arrived(exchange *x)
{
    conn *c = x->conn;
    if (x->req.complete)
        conn_end_body(c);
    const interface *iface = http_of(c->server)->iface;
    if (iface->on_body != NULL)
        iface->on_body(x);
    if (!c->closed && !x->req.complete && x->req.body.size >= STREAM_WINDOW)
        conn_pause_reading(c);
}

/* What a parse said: refuse, answer, or wait for more. Returns 1 when the
 * connection may go on parsing what it has. */
static int http_after_parse(exchange *x, parse_result result)
{
    conn *c = x->conn;
    const interface *iface = http_of(c->server)->iface;
    if (result == PARSE_ERROR) {
        http_refuse(x, x->req.error_status, x->req.error_reason);
        return 0;
    }
    if (x->req.headers_complete && !x->req.complete && c->state == CONN_HEAD)
        conn_enter_body(c);
    if (x->dispatched) {
        http_body_arrived(x);
        return 0; /* what follows the body waits for the response's end */
    }
    if (result == PARSE_NEED_MORE) {
        if (x->req.expect_continue) {
            x->req.expect_continue = 0;
            /* An app that reads the body as it comes asks for it when it
             * first waits for it (exchange_want_body). */
            if (iface->streams_body) {
                /* Until then the client waits for us: nothing of its
                 * body is read (or timed). */
                x->continue_pending = 1;
                conn_pause_reading(c);
            } else
                conn_send_interim(c, continue_line, sizeof continue_line - 1);
        }
        if (!iface->streams_body || !x->req.headers_complete)
            return 0;
    }
    return http_dispatch(x);
}

static void http_parse_input(conn *c)
{
    server *s = c->server;
    while (c->in.len > c->parsed) {
        exchange *x = exchange_of(c);
        if (x == NULL && (x = exchange_attach(c)) == NULL) {
            PyErr_Clear();
            conn_close(c);
            return;
        }
        parse_result result = request_parse(&x->parser, &x->req, &c->in, &c->parsed, &s->opts, &s->budget);
        if (!http_after_parse(x, result))
            return;
    }
}

static void http_on_input(conn *c)
{
    http_parse_input(c);
}

static void http_on_stream(conn *c, const char *data, size_t length)
{
    server *s = c->server;
    exchange *x = exchange_of(c);
    size_t consumed;
    parse_result result = request_parse_body(&x->parser, &x->req, &c->in, data, length, &consumed, &s->opts,
                                             &s->budget);
    if (result != PARSE_ERROR && consumed < length) {
        /* A pipelined request behind the body joins the head. */
        int kept = conn_keep_bytes(c, data + consumed, length - consumed);
        if (kept == CONN_OVER_BUDGET) {
            http_refuse(x, 503, "the server holds too many incomplete requests; try again later");
            return;
        }
        if (kept < 0) {
            PyErr_Clear();
            conn_close(c);
            return;
        }
    }
    if (http_after_parse(x, result))
        http_parse_input(c); /* the pipelined requests behind it */
}

static void http_on_writable(conn *c)
{
    exchange *x = exchange_of(c);
    if (http_progress(x, http_of(c->server)->iface->on_writable(x)))
        http_parse_input(c);
}

static void http_on_hangup(conn *c)
{
    exchange *x = exchange_of(c);
    const interface *iface = http_of(c->server)->iface;
    if (x->dispatched && iface->on_hangup != NULL)
        iface->on_hangup(x);
}

static void http_on_late(conn *c)
{
    exchange *x = exchange_of(c);
    http_refuse(x, 408, c->state == CONN_HEAD ? "request head timed out" : "request body timed out");
}

static void http_on_busy(conn *c)
{
    http_refuse(exchange_of(c), 503, "the server holds too many incomplete requests; try again later");
}

static void http_on_close(conn *c)
{
    exchange *x = exchange_of(c);
    exchange_settle(x, 0); /* also drops a refusal's queued answer */
    /* Closed under a callback (a second Ctrl-C while the app runs): the
     * code below still holds the exchange and asks exchange_is_gone(), so
     * it stays with the closed connection until the callback ends
     * (conn_end_callback calls on_close again). */
    if (!c->in_callback)
        exchange_detach(c);
}

static int http_server_start(server *s)
{
    http_server *h = http_of(s);
    h->spares = NULL;
    h->spare_count = 0;
    h->dates.second = -1;
    return h->iface->server_start(s);
}

static void http_server_end(server *s)
{
    http_server *h = http_of(s);
    h->iface->server_end(s);
    while (h->spares != NULL) {
        exchange *x = h->spares;
        h->spares = x->next_spare;
        exchange_free(x);
    }
    h->spare_count = 0;
}

const protocol http_protocol = {
    .server_start = http_server_start,
    .server_end = http_server_end,
    .on_input = http_on_input,
    .on_stream = http_on_stream,
    .on_writable = http_on_writable,
    .on_hangup = http_on_hangup,
    .on_late = http_on_late,
    .on_busy = http_on_busy,
    .on_close = http_on_close,
};

/* ---- the response: framing and the head ---- */

static int response_has_no_body(const exchange *x)
{
    int code = x->response.status_code;
    return x->req.method == HTTP_HEAD || code < 200 || code == 204 || code == 304;
}

size_t exchange_take_body(exchange *x, char *out)
{
    size_t taken = (size_t)x->req.body.size;
    if (body_take(&x->req.body, out) < 0)
        return (size_t)-1;
    if (!x->req.complete && x->conn->read_paused)
        conn_resume_reading(x->conn);
    return taken;
}

void exchange_want_body(exchange *x)
{
    if (x->continue_pending) {
        x->continue_pending = 0;
        conn_send_interim(x->conn, continue_line, sizeof continue_line - 1);
        conn_resume_reading(x->conn);
    }
}

int exchange_send_head(exchange *x, const response_head *response, int64_t known_length)
{
    conn *c = x->conn;
    server *s = c->server;
    x->response = *response;
    x->no_body = response_has_no_body(x);
    head_tail tail = {NULL, !response->has_server, FRAMING_LENGTH, -1, 0, x->req.http_minor == 0};
    if (!response->has_date)
        tail.date_line = date_line(&http_of(s)->dates, (time_t)ev_now(s->loop));
    int code = response->status_code;
    if (response->content_length >= 0) {
        /* the app's own */
    } else if (known_length >= 0 && code != 204 && code != 304) {
        x->response.content_length = tail.add_length = known_length; /* a HEAD's too */
    } else if (x->no_body) {
        tail.framing = FRAMING_NONE;
    } else if (x->req.http_minor >= 1) {
        tail.framing = FRAMING_CHUNKED;
        x->chunked = 1;
    } else {
        tail.framing = FRAMING_CLOSE;
        conn_refuse_keep_alive(c); /* HTTP/1.0: the end of the body is the close */
    }
    if (response->wants_close || !x->req.complete)
        conn_refuse_keep_alive(c); /* an answer before the whole body ends the connection */
    tail.keep_alive = conn_keeps_alive(c);
    if (head_end(&x->head, &tail) < 0)
        return -1;
    x->head_sent = 1;
    /* The head stays in x->head until the response is settled. */
    return output_push(&x->out, NULL, x->head.data, x->head.len, &s->budget);
}

int exchange_send_body(exchange *x, PyObject *owner, const char *data, size_t length)
{
    if (length == 0)
        return 0;
    if (x->response.content_length >= 0) {
        /* PEP 3333: no more than Content-Length goes out, and the app is
         * not asked for more once it has given that much. */
        uint64_t room = (uint64_t)x->response.content_length - x->body_given;
        if (length >= room) {
            x->length_reached = 1;
            if (length > room) {
                length = (size_t)room;
                conn_refuse_keep_alive(x->conn); /* the app's body and its header disagree */
            }
        }
    }
    x->body_given += length;
    if (length == 0 || x->no_body)
        return 0;
    budgets *budget = &x->conn->server->budget;
    if (x->chunked) {
        char prefix[DIGITS_MAX + 2];
        size_t n = digits_hex(prefix, length);
        prefix[n++] = '\r';
        prefix[n++] = '\n';
        if (output_push_small(&x->out, prefix, n, budget) < 0 ||
            output_push(&x->out, owner, data, length, budget) < 0 || output_push_small(&x->out, "\r\n", 2, budget) < 0)
            return -1;
    } else if (output_push(&x->out, owner, data, length, budget) < 0) {
        return -1;
    }
    x->body_sent += length;
    return 0;
}

void exchange_send_file(exchange *x, int fd, off_t offset, uint64_t length)
{
    if (x->no_body)
        return;
    if (x->chunked) {
        /* A file goes out with a known length, never chunked: refuse to
         * frame it wrongly. */
        conn_refuse_keep_alive(x->conn);
        x->failed = 1;
        return;
    }
    output_send_file(&x->out, fd, offset, length);
    x->body_given += length;
}

int exchange_end_body(exchange *x)
{
    x->ended = 1;
    if (x->chunked)
        return output_push(&x->out, NULL, "0\r\n\r\n", 5, &x->conn->server->budget);
    if (!x->no_body && x->response.content_length >= 0 && x->body_given < (uint64_t)x->response.content_length)
        conn_refuse_keep_alive(x->conn); /* short of its Content-Length: only a close ends it */
    return 0;
}

int exchange_fail(exchange *x)
{
    conn *c = x->conn;
    server *s = c->server;
    if (x->head_sent) {
        x->failed = 1;
        return -1;
    }
    output_clear(&x->out);
    x->response.status_code = 500;
    x->head_sent = x->ended = 1;
    x->body_sent = 0;
    head_tail tail = {date_line(&http_of(s)->dates, (time_t)ev_now(s->loop)), 1, FRAMING_LENGTH,
                      sizeof internal_error_body - 1, conn_keeps_alive(c), x->req.http_minor == 0};
    buffer *head = &x->head;
    if (head_begin(head, "500 Internal Server Error", 25) < 0 ||
        head_field(head, "Content-Type", 12, "text/plain; charset=utf-8", 25) < 0 || head_end(head, &tail) < 0 ||
        (x->req.method != HTTP_HEAD && buffer_append(head, internal_error_body, sizeof internal_error_body - 1) < 0) ||
        output_push(&x->out, NULL, head->data, head->len, &s->budget) < 0) {
        PyErr_Clear();
        x->failed = 1;
        return -1;
    }
    return 0;
}

conn_progress exchange_flush(exchange *x, size_t *budget)
{
    conn_progress progress = conn_flush(x->conn, budget);
    if (progress == CONN_DONE && x->failed)
        return CONN_ABORT;
    return progress;
}

int exchange_switch_protocols(exchange *x, const protocol *p, void *state)
{
    conn *c = x->conn;
    server *s = c->server;
    head_tail tail = {date_line(&http_of(s)->dates, (time_t)ev_now(s->loop)), 1, FRAMING_NONE, -1, 1, 0};
    if (head_end(&x->head, &tail) < 0)
        return -1;
    x->response.status_code = 101;
    x->head_sent = x->ended = x->no_body = 1;
    if (output_push(&x->out, NULL, x->head.data, x->head.len, &s->budget) < 0)
        return -1;
    x->switch_to = p;
    x->switch_state = state;
    return 0;
}

int exchange_bound_memory(exchange *x)
{
    server *s = x->conn->server;
    if (output_memory(&x->out) <= s->opts.body_buffer_size)
        return 0;
    return output_spill(&x->out, &s->budget);
}
