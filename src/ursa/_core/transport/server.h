/* The server: one libev loop, its listening sockets, its connections, and
 * the clock every timeout reads. This header is the server's shape, below
 * the connections and listeners that use it; running it (the loop, the
 * stop, signals) is serve.c, above them. What is spoken on the
 * connections is a `protocol` (http/), given to server_serve(); this layer
 * calls it and knows nothing else of it. */
#ifndef URSA_SERVER_H
#define URSA_SERVER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ev.h>
#include <stdint.h>

#include "common/budget.h"
#include "common/buffer.h"
#include "common/networks.h"
#include "common/options.h"
#include "common/state.h"
#include "transport/heartbeat.h"

struct conn;
struct server;

/* What the layer above does when something happens on a connection. */
typedef struct protocol {
    int (*server_start)(struct server *s); /* the listeners are set up: 0, or -1 with an exception */
    void (*server_end)(struct server *s);
    void (*on_input)(struct conn *c);  /* new bytes in c->in */
    void (*on_stream)(struct conn *c, const char *data, size_t length); /* read in the BODY state */
    void (*on_writable)(struct conn *c); /* the output can take more, or conn_kick() */
    void (*on_hangup)(struct conn *c); /* the client finished sending while its response was awaited */
    void (*on_late)(struct conn *c);   /* a request's head or body missed its deadline */
    void (*on_busy)(struct conn *c);   /* a request's bytes do not fit max_buffered_bytes */
    void (*on_close)(struct conn *c);  /* release c->exchange: the connection is going */
    /* A graceful stop began while the protocol has an upgraded connection:
     * it ends it on its own terms (closing handshake). May be NULL. */
    void (*on_stop)(struct conn *c);
} protocol;

typedef struct listener {
    struct server *server;
    ev_io watcher;
    int fd;
    int family;
    size_t index; /* in server.listeners */
} listener;

typedef struct server {
    struct ev_loop *loop;
    module_state *state;
    PyObject *app;
    server_options opts;
    const protocol *protocol;
    void *protocol_state;

    listener *listeners;
    size_t listener_count;
    int accepting;         /* listener watchers are started */
    ev_timer accept_retry; /* after EMFILE, or leaving a connection to a peer */
    int doors_closed;      /* the listeners' doors were closed by the stop */

    struct conn *conns;    /* every open connection, for the stop */
    size_t conn_count;

    ev_io signal_watcher;  /* read end of Python's signal wake-up fd */
    int signal_fd;

    int stopping;
    double stop_started;   /* server_network_time() when the stop began */
    double retire_drain;   /* how long idle keep-alive connections stay then */
    int upgraded_stay;     /* retiring (max_requests): upgraded connections live on
                            * until the graceful timeout (see serve.c) */
    ev_timer graceful_timer;
    PyObject *interrupt;   /* exception to raise from serve() (KeyboardInterrupt) */

    buffer read_buffer;    /* shared by connections with nothing pending */
    budgets budget;        /* what clients make the worker hold: see budget.h */
    networks trusted_proxies; /* forwarded_allow_ips */
    PyObject *last_peer_text; /* REMOTE_ADDR of the last IPv4 peer (see conn.c) */
    uint32_t last_peer_ipv4;  /* its address, in network order */
    uint64_t requests_served;
    uint64_t requests_started; /* for max_requests' last response */
    double shortest_timeout;   /* of the per-connection timeouts: see conn.c */
    double app_seconds;        /* spent in app code so far: see server_network_time */
    heartbeat *heartbeat;      /* this worker's slot, or NULL */
    heartbeat *heartbeats;     /* every worker's (see listener.c) */
    size_t heartbeat_count;
    Py_buffer heartbeat_view;
    PyThreadState *released_thread; /* the GIL is released while libev polls */
    /* What the server does as connections close and requests end (set by
     * serve.c, above the connections that call them). */
    void (*after_close)(struct server *s);
    void (*after_request)(struct server *s);
} server;

/* The connection count changed: the peers see it (heartbeat.h). */
static inline void server_publish_connections(server *s)
{
    if (s->heartbeat != NULL)
        s->heartbeat->connections = (uint32_t)s->conn_count;
}

/* The clock every connection timeout is measured on: the loop's time less
 * the time the worker spent in app code. A connection is charged only for
 * the time it kept the server waiting on the network, never for the
 * seconds another request held the worker. */
static inline double server_network_time(const server *s)
{
    return ev_now(s->loop) - s->app_seconds;
}

/* App code that began at ev_now() == `started` has returned: bring the
 * loop's clock up to date (it is read once per loop turn) and count the
 * time as the app's. */
static inline void server_app_returned(server *s, double started)
{
    ev_now_update(s->loop);
    double spent = ev_now(s->loop) - started;
    if (spent > 0)
        s->app_seconds += spent;
}

/* Tell the master which request the app is about to run (heartbeat.h). */
static inline void server_name_request(server *s, const char *method, const char *target, size_t length)
{
    heartbeat_request(s->heartbeat, method, target, length);
}

#endif
