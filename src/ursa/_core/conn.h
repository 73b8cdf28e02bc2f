/* A client connection and its state machine:
 *   AWAITING  -> (first byte) READING -> (request complete) RESPONDING
 *   RESPONDING -> (response written) AWAITING (keep-alive) or closed
 *   any bad input -> REJECTING (error response) -> LINGERING -> closed */
#ifndef URSA_CONN_H
#define URSA_CONN_H

#include <ev.h>
#include <llhttp.h>
#include <sys/socket.h>

#include "buffer.h"
#include "outq.h"
#include "request.h"
#include "response.h"
#include "server.h"

typedef enum {
    CONN_AWAITING,   /* waiting for the first byte of a request */
    CONN_READING,    /* a request is arriving */
    CONN_RESPONDING, /* the app is called / its response is being written */
    CONN_REJECTING,  /* an error response is being written, then close */
    CONN_LINGERING,  /* write side shut; reading what the client still sends */
} conn_state;

/* What a connection needs only while a request is in progress. It is
 * attached when a request's first bytes arrive and given back (to the
 * server's spares) when the connection goes idle, so that an idle
 * keep-alive connection costs little more than its socket. */
typedef struct exchange {
    llhttp_t parser;
    request req;
    response resp;
    outq out;
    struct exchange *next_spare;
} exchange;

typedef struct conn {
    server *server;
    listener *listener;
    struct conn *prev, *next; /* server->conns */
    int fd;
    conn_state state;
    ev_io watcher;
    int watching;             /* EV_READ / EV_WRITE the watcher is started with */
    ev_timer timer;
    /* Times are on server_network_time()'s clock. */
    double timer_due;         /* when `timer` fires, if active */
    double phase_started;     /* start of the current timeout phase */
    double last_progress;     /* last read/write that moved bytes */
    double body_started;      /* when the request's head was complete */
    int unsent_when_blocked;  /* SIOCOUTQ when a write last blocked */
    exchange *x;              /* NULL while idle: see conn_attach */
    buffer in;                /* the request bytes; see conn_keep_input */
    size_t in_charged;        /* of in.cap, charged to the memory budget */
    size_t parsed;            /* bytes of `in` llhttp has consumed */
    PyObject *remote_addr;
    PyObject *remote_port;    /* NULL for unix peers */
    unsigned keep_alive : 1;  /* may serve another request after this one */
    unsigned served_any : 1;  /* a response went out: idle time is keep-alive */
    unsigned body_clock_started : 1; /* body_started is this request's */
    unsigned in_shared : 1;   /* `in` is the server's read_buffer, for now */
    unsigned in_callback : 1; /* inside conn_on_io/conn_on_timer: free later */
    unsigned closed : 1;
} conn;

/* Take over an accepted socket. Returns 0, or -1 (the fd is closed). */
int conn_open(listener *l, int fd, const struct sockaddr *peer, socklen_t peer_length);
/* Close now: the response's iterable is closed, every resource freed. */
void conn_close(conn *c);
/* For the graceful stop: close it if idle, else close after this response. */
void conn_stop(conn *c);
/* Free the server's spare exchanges (at the end of serve()). */
void conn_free_spares(server *s);

#endif
