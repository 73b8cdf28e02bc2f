/* A client connection: its socket, its reads, its output, its timers and
 * the one decision whether it outlives the request in progress. The
 * protocol above (http/) parses what arrives and produces what leaves
 * through the functions here; nothing here knows HTTP.
 *
 *   (PROXY --its header-->) AWAITING --first byte--> HEAD --head complete--> BODY --request complete--> RESPONDING
 *   (an interface that streams bodies answers from BODY on: see `answering`)
 *   RESPONDING --written, keep-alive--> AWAITING (or HEAD: pipelined bytes)
 *   (while RESPONDING waits for an asynchronous app, the socket is watched
 *   for the client hanging up: see CONN_PENDING)
 *   RESPONDING --written, close--> closed
 *   HEAD/BODY --refused--> REJECTING (the answer going out) --> LINGERING --> closed
 *   RESPONDING --the response switched protocols--> UPGRADED (another protocol reads and writes)
 *   UPGRADED --its protocol is done--> LINGERING --> closed (or closed at once)
 */
#ifndef URSA_CONN_H
#define URSA_CONN_H

#include <ev.h>
#include <sys/socket.h>

#include "common/buffer.h"
#include "transport/output.h"
#include "transport/server.h"

typedef enum {
    CONN_PROXY,      /* waiting for the PROXY protocol header (proxy_protocol) */
    CONN_AWAITING,   /* waiting for the first byte of a request */
    CONN_HEAD,       /* a request head is arriving */
    CONN_BODY,       /* its body is arriving */
    CONN_RESPONDING, /* the request is answered: the app runs / its response is written */
    CONN_REJECTING,  /* a refusal is being written, then close */
    CONN_LINGERING,  /* write side shut; reading what the client still sends */
    CONN_UPGRADED,   /* another protocol has it (WebSocket): its reads go there, it writes itself */
} conn_state;

typedef enum {
    CONN_BLOCKED, /* the output waits for the socket (or yields to the others) */
    CONN_PENDING, /* all is written and the app has not given more: conn_kick() when it does */
    CONN_DONE,    /* the response is all written */
    CONN_ABORT,   /* the connection must be closed now */
} conn_progress;

typedef struct conn {
    server *server;
    listener *listener;
    /* What is spoken: the server's protocol, until a protocol upgrade
     * hands the connection to another (conn_upgrade). */
    const protocol *protocol;
    struct conn *prev, *next; /* server->conns */
    int fd;
    conn_state state;
    ev_io watcher;
    int watching;             /* EV_READ / EV_WRITE the watcher is started with */
    ev_timer timer;
    /* Times are on server_network_time()'s clock. */
    double timer_due;         /* when `timer` fires, if active */
    double phase_started;     /* start of the current state */
    double last_progress;     /* last read/write that moved bytes */
    uint64_t body_bytes;      /* read in the BODY state, for min_body_rate */
    double wakeup_due;        /* UPGRADED: when its protocol's on_late runs (0: never) */
    int unsent_when_blocked;  /* SIOCOUTQ when a write last blocked */
    /* What the protocol keeps for the request in progress (its exchange):
     * attached when a request's first bytes arrive, NULL while idle; an
     * upgraded connection's protocol state for its whole life. */
    void *exchange;
    output *out;              /* the exchange's output, while it is attached */
    /* The request bytes. The protocol parses from `parsed` on; it keeps in
     * `in` only what it still needs (a head its request points into,
     * pipelined requests). See conn_keep_input. */
    buffer in;
    size_t parsed;
    size_t in_charged;        /* of in.cap, charged to the memory budget */
    PyObject *remote_addr;
    PyObject *remote_port;    /* NULL for unix peers */
    unsigned keep_alive : 1;  /* may serve another request after this one */
    unsigned write_blocked : 1; /* RESPONDING (or BODY, answering): the output waits for the socket */
    unsigned awaiting_app : 1;  /* the app answers asynchronously (CONN_PENDING) */
    unsigned read_paused : 1;   /* BODY: the app has not taken what came; RESPONDING: the
                                   client sent more (or hung up): read it after */
    unsigned answering : 1;     /* BODY: the request is the app's while its body arrives */
    unsigned hung_up : 1;       /* the client finished sending mid-response (EOF) */
    unsigned peer_trusted : 1; /* a proxy in forwarded_allow_ips, or a unix peer */
    unsigned served_any : 1;  /* a response went out: idle time is keep-alive */
    unsigned in_shared : 1;   /* `in` is the server's read_buffer, for now */
    unsigned in_callback : 1; /* inside a watcher's callback: free later */
    unsigned closed : 1;
} conn;

/* ---- for the listener ---- */

/* Take over an accepted socket. Returns 0, or -1 (the fd is closed). */
int conn_open(listener *l, int fd, const struct sockaddr *peer, socklen_t peer_length);
/* For the graceful stop: no more keep-alive; an idle one gets a short drain. */
void conn_stop(conn *c);

/* ---- for the protocol ---- */

/* Attach the protocol's state of a new request, with its output. */
void conn_attach(conn *c, void *exchange, output *out);
/* The head is complete: the body's timers start, and further reads go
 * straight to the protocol's on_stream (the head stays in `in`). */
void conn_enter_body(conn *c);
/* The request is being answered: complete, or (an interface that streams
 * bodies) with its body still arriving, until conn_end_body. The one place
 * where the connection's keep-alive is decided: the client's wish, bjoern's
 * keepalive option, a stop under way, max_requests reached. */
void conn_begin_response(conn *c, int client_keeps_alive);
/* The body of a request being answered is complete. */
void conn_end_body(conn *c);
/* Flow control of a streamed body: stop reading the socket while the app
 * has not taken what arrived (its time is then not the client's), and go
 * on once it has. */
void conn_pause_reading(conn *c);
void conn_resume_reading(conn *c);
/* Anything later may only end it: the app said so, the body cannot be
 * delimited otherwise, the response went wrong. */
static inline void conn_refuse_keep_alive(conn *c)
{
    c->keep_alive = 0;
}
/* What the response's head says, as it is written: keep-alive, unless the
 * server began to stop since the request came in. Once a head has said
 * it, the connection is kept (and drained, if the server is stopping). */
static inline int conn_keeps_alive(conn *c)
{
    if (c->server->stopping)
        c->keep_alive = 0;
    return c->keep_alive;
}
/* Write what the output holds, at most *budget bytes. */
conn_progress conn_flush(conn *c, size_t *budget);
/* What the response path said: wait for the socket, wait for the app,
 * close, or (done) nothing here: conn_request_done follows. While the app
 * is awaited, a client that hangs up is noticed (protocol on_hangup). */
void conn_after_progress(conn *c, conn_progress progress);
/* The app gave more of the response outside any event of this connection:
 * its protocol's on_writable runs soon, in this loop iteration, where the
 * connection may safely be closed. */
void conn_kick(conn *c);
/* The response is all written and its request released: wait for the next
 * request (1; the caller goes on parsing what is in `in`) or close (0). */
int conn_request_done(conn *c);
/* Keep bytes read past a streamed body (a pipelined request) in `in`,
 * charged to the memory budget. 0, -1 with an exception, or
 * CONN_OVER_BUDGET. */
#define CONN_OVER_BUDGET (-2)
int conn_keep_bytes(conn *c, const char *data, size_t length);
/* A few bytes sent now if the socket takes them (100 Continue). */
void conn_send_interim(conn *c, const char *data, size_t length);
/* Refuse the request: what the output holds (an answer) is written, the
 * write side shut, and the connection closed after a short linger. */
void conn_close_after_output(conn *c);
/* Close now: the protocol's state is released, every resource freed. */
void conn_close(conn *c);

/* ---- an upgraded connection ----
 *
 * A response that switched protocols (101) hands the connection to another
 * protocol for the rest of its life: the same socket, loop and timer. Its
 * reads arrive in `in` (on_input; it discards what it consumed), it writes
 * with conn_write, its own deadlines fire its on_late, a graceful stop
 * calls its on_stop, and closing calls its on_close. The upgrade counts as
 * the request it answered (max_requests). */
void conn_upgrade(conn *c, const protocol *p, void *state);
/* Write what the socket takes now: the bytes written, 0 when it takes
 * none (wait for on_writable: conn_want_writable), or -1 (the peer is
 * gone; errno). */
ssize_t conn_write(conn *c, const char *data, size_t length);
/* Whether the protocol waits for the socket to take more (on_writable
 * follows; write_timeout counts from the last write meanwhile). */
void conn_want_writable(conn *c, int wanted);
/* Run the protocol's on_late at `due` (server_network_time; 0: never). */
void conn_wake_at(conn *c, double due);
/* The protocol said its last: the write side is shut and what the peer
 * still sends is read and dropped for a moment, then the connection
 * closes (the peer sees the end, not a reset). */
void conn_linger(conn *c);

#endif
