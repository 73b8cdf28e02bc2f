/* The HTTP/1.1 exchange: one request and its response on a connection.
 *
 * For the transport below, `http_protocol` is what a connection speaks: it
 * parses what arrives (request.c), refuses what must be refused, answers
 * Expect: 100-continue, and hands each complete request to an interface
 * (wsgi/, asgi/ to come). For the interface above, the functions here are
 * all there is of HTTP: the request's head and body, then the response's
 * head, body parts, a file, its end, or a failure. An interface never sees
 * a connection's fields; the framing (Content-Length, chunked, close),
 * the head's server fields and keep-alive are decided here and below. */
#ifndef URSA_EXCHANGE_H
#define URSA_EXCHANGE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buffer.h"
#include "http/fields.h"
#include "http/forwarded.h"
#include "http/head.h"
#include "http/request.h"
#include "transport/conn.h"

typedef struct exchange exchange;

/* An application interface: what it does with requests. Its state for
 * one request follows the exchange in memory (state_size bytes, zero when
 * the exchange is new, and as it leaves them after on_done). */
typedef struct interface {
    size_t state_size;
    /* The app gets the request when its head is complete and reads its
     * body as it arrives (on_body, exchange_take_body); otherwise the body
     * is read whole first (within max_body_size, into memory or a file). */
    int streams_body;
    /* The server's listeners are set up (their sockets' addresses are
     * known): make what every request shares. 0, or -1 with an exception. */
    int (*server_start)(server *s);
    void (*server_end)(server *s);
    /* A complete request: call the app, start the response. An app that
     * answers later returns CONN_PENDING and calls exchange_kick() as it
     * gives more. */
    conn_progress (*on_request)(exchange *x);
    /* The connection can take more of the response, or was kicked. */
    conn_progress (*on_writable)(exchange *x);
    /* The client finished sending while CONN_PENDING (it hung up, or
     * half-closed): no more requests follow. May be NULL. */
    void (*on_hangup)(exchange *x);
    /* streams_body: more of the body arrived, or its end. */
    void (*on_body)(exchange *x);
    /* The response is over: `completed` when it was all written, else the
     * connection is closing under it. Release everything of the request. */
    void (*on_done)(exchange *x, int completed);
    /* A request refused before it reached the app (for the access log). */
    void (*on_refused)(exchange *x, int status, size_t body_bytes);
} interface;

/* The HTTP layer's state for one server: give server_serve() &http_protocol
 * and a pointer to this. */
typedef struct http_server {
    const interface *iface;
    void *iface_state;         /* the interface's, for one server */
    struct exchange *spares;   /* for connections that begin a request */
    size_t spare_count;
    date_cache dates;
} http_server;

extern const protocol http_protocol;

struct exchange {
    conn *conn;
    llhttp_t parser;
    request req;
    output out;
    buffer head;              /* the response head, as it is built */
    response_head response;
    forwarded forwarded;      /* what a trusted proxy said of the client */
    uint64_t body_sent;       /* body bytes queued (framing not counted) */
    uint64_t body_given;      /* body bytes the app gave, sent or not (HEAD) */
    unsigned head_sent : 1;   /* the status is final */
    unsigned chunked : 1;
    unsigned no_body : 1;     /* HEAD, 204, 304 */
    unsigned length_reached : 1; /* the app gave its whole Content-Length */
    unsigned ended : 1;       /* the body's end is queued */
    unsigned failed : 1;      /* went wrong after the head: only a close ends it */
    unsigned dispatched : 1;  /* the interface has the request */
    unsigned continue_pending : 1; /* 100 Continue goes when the app wants the body */
    /* A 101 is queued: once it is written the connection is this
     * protocol's, with this state (exchange_switch_protocols). */
    const protocol *switch_to;
    void *switch_state;
    struct exchange *next_spare;
    _Alignas(max_align_t) unsigned char interface_state[];
};

/* ---- the request ---- */

static inline void *exchange_state(exchange *x)
{
    return x->interface_state;
}

static inline const request *exchange_request(const exchange *x)
{
    return &x->req;
}

/* The method as far as the parser got: known before the head is complete
 * (a refused request's, for the access log). */
static inline unsigned exchange_method_seen(const exchange *x)
{
    return x->parser.method;
}

/* Where the request's spans point into. */
static inline const char *exchange_request_bytes(const exchange *x)
{
    return x->conn->in.data;
}

static inline server *exchange_server(const exchange *x)
{
    return x->conn->server;
}

static inline PyObject *exchange_remote_addr(const exchange *x)
{
    return x->conn->remote_addr;
}

/* The scheme and the address of the client, as a trusted proxy in front
 * said (forwarded.h); SCHEME_UNSAID and no address otherwise. */
static inline const forwarded *exchange_forwarded(const exchange *x)
{
    return &x->forwarded;
}

/* NULL for a unix peer. */
static inline PyObject *exchange_remote_port(const exchange *x)
{
    return x->conn->remote_port;
}

/* Which of the server's listeners the request came in on. */
static inline size_t exchange_listener(const exchange *x)
{
    return x->conn->listener->index;
}

/* Seconds (of network time) since the request's current phase began. */
static inline double exchange_elapsed(const exchange *x)
{
    return server_network_time(x->conn->server) - x->conn->phase_started;
}

/* The connection went away (or the server stopped at once) under a call. */
static inline int exchange_is_gone(const exchange *x)
{
    return x->conn->closed;
}

/* ---- a streamed body (interface.streams_body) ---- */

/* Bytes of the body that arrived and wait for the app. */
static inline size_t exchange_body_waiting(const exchange *x)
{
    return (size_t)x->req.body.size;
}

/* Whether the whole body has arrived. */
static inline int exchange_body_complete(const exchange *x)
{
    return x->req.complete;
}

/* Copy the waiting bytes to `out` (room for exchange_body_waiting()) and
 * let more come. Returns how many, or (size_t)-1 with errno. */
size_t exchange_take_body(exchange *x, char *out);

/* The app waits for the body: an Expect: 100-continue is answered now. */
void exchange_want_body(exchange *x);

/* ---- the response ---- */

/* Where the interface writes its status line and fields (head.c). */
static inline buffer *exchange_head(exchange *x)
{
    return &x->head;
}

/* Queue the head: `response` says what the app's fields said;
 * `known_length` is the whole body's length when it is known now (-1
 * otherwise), which saves chunking. 0, or -1 with an exception. */
int exchange_send_head(exchange *x, const response_head *response, int64_t known_length);
/* Queue a body part (`owner` keeps `data` alive; a new reference is
 * taken). Past the app's Content-Length nothing goes out. 0, or -1 with
 * an exception. */
int exchange_send_body(exchange *x, PyObject *owner, const char *data, size_t length);
/* Send `length` bytes of the file `fd` from `offset` as the body (the fd
 * stays the caller's, open until on_done). */
void exchange_send_file(exchange *x, int fd, off_t offset, uint64_t length);
/* The body is complete: its end is queued. 0, or -1 with an exception. */
int exchange_end_body(exchange *x);
/* The app failed. Before the head is sent the response becomes a 500
 * (returns 0); after, only closing the connection ends it (returns -1). */
int exchange_fail(exchange *x);
/* Write what is queued, at most *budget bytes. */
conn_progress exchange_flush(exchange *x, size_t *budget);
/* The response is a 101: x->head holds its status line and fields (the
 * server adds Date and Server). Once it is written (the flush says
 * CONN_DONE) the request is over (on_done, completed) and the connection
 * belongs to `p` with `state` (conn_upgrade); if it closes before, `state`
 * stays the interface's. 0, or -1 with an exception. */
int exchange_switch_protocols(exchange *x, const protocol *p, void *state);
/* Keep at most body_buffer_size of the response in memory: the rest goes
 * to a temporary file. 0, or -1 with an exception. */
int exchange_bound_memory(exchange *x);

/* The app gave more of the response outside the interface's callbacks:
 * on_writable is called soon (conn_kick). Safe to call from app code. */
static inline void exchange_kick(exchange *x)
{
    conn_kick(x->conn);
}

/* Whether the body's end is queued. */
/* The connection ends after this response, however it ends. */
static inline void exchange_refuse_keep_alive(exchange *x)
{
    conn_refuse_keep_alive(x->conn);
}

static inline int exchange_ended(const exchange *x)
{
    return x->ended;
}

/* Whether the status line and fields are queued (the status is final). */
static inline int exchange_head_sent(const exchange *x)
{
    return x->head_sent;
}

/* Whether the app gave its whole Content-Length: it is not asked for more. */
static inline int exchange_length_reached(const exchange *x)
{
    return x->length_reached;
}

/* Bytes of response held in memory, not yet sent. */
static inline size_t exchange_memory(const exchange *x)
{
    return output_memory(&x->out);
}

/* Body bytes that went out, for the access log. */
static inline uint64_t exchange_body_bytes(const exchange *x)
{
    return x->body_sent + x->out.file_sent;
}

#endif
