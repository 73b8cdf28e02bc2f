/* The server: one libev loop, its listening sockets, the accept path, the
 * signal wake-up and the graceful stop. */
#ifndef URSA_SERVER_H
#define URSA_SERVER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ev.h>
#include <stdint.h>

#include "budget.h"
#include "buffer.h"
#include "heartbeat.h"
#include "module.h"
#include "options.h"

struct conn;
struct server;

typedef struct listener {
    struct server *server;
    ev_io watcher;
    int fd;
    int family;
    /* environ entries every request on this socket shares (SERVER_NAME,
     * SERVER_PORT, the wsgi.* constants); each environ starts as a copy. */
    PyObject *environ_template;
} listener;

typedef struct server {
    struct ev_loop *loop;
    module_state *state;
    PyObject *app;
    server_options opts;

    listener *listeners;
    size_t listener_count;
    int accepting;       /* listener watchers are started */
    ev_timer accept_retry; /* after EMFILE: try again a little later */

    struct conn *conns;  /* every open connection, for the stop */
    size_t conn_count;

    ev_io signal_watcher; /* read end of Python's signal wake-up fd */
    int signal_fd;

    int stopping;
    double stop_started;  /* server_network_time() when the stop began */
    double retire_drain;  /* how long idle keep-alive connections stay then */
    ev_timer graceful_timer;
    PyObject *interrupt; /* exception to raise from serve() (KeyboardInterrupt) */

    buffer read_buffer; /* shared by connections with nothing pending */
    struct exchange *spare_exchanges; /* for connections that begin a request */
    size_t spare_exchange_count;
    PyObject *spare_start_response; /* a detached, unshared one: see start_response.c */
    PyObject *last_peer_text; /* REMOTE_ADDR of the last IPv4 peer (see conn.c) */
    uint32_t last_peer_ipv4;  /* its address, in network order */
    uint64_t requests_served;
    uint64_t requests_started; /* for max_requests' last response */
    double shortest_timeout; /* of the per-connection timeouts: see conn.c */
    double app_seconds;      /* spent in app code so far: see server_network_time */
    heartbeat *heartbeat;    /* this worker's slot, or NULL */
    heartbeat *heartbeats;   /* every worker's (see fair_share_left) */
    size_t heartbeat_count;
    budgets budget;          /* what clients make the worker hold: see budget.h */
    Py_buffer heartbeat_view;
    int doors_closed;        /* the listeners' doors were closed by the stop */
    PyThreadState *released_thread; /* the GIL is released while libev polls */

    time_t date_second; /* the second date_header was made for */
    char date_header[48]; /* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
} server;

/* Run the server until it is stopped. Returns 0, or -1 with an exception
 * (a setup failure, or the KeyboardInterrupt that stopped it). Takes no
 * ownership of `listen_fds`; `opts` is moved into the server. */
int server_serve(module_state *state, PyObject *app, const int *listen_fds, size_t listen_fd_count,
                 int signal_fd, server_options *opts);

/* Begin a graceful stop: stop accepting, close idle connections, let
 * requests in flight finish (up to graceful_timeout). Idempotent. */
void server_begin_stop(server *s);

/* Stop because of an exception (KeyboardInterrupt, SystemExit) raised by a
 * handler or the app: it is kept and re-raised from serve(). */
void server_interrupt(server *s);

/* Deal with the exception that is set: KeyboardInterrupt and SystemExit
 * stop the server (server_interrupt); anything else is logged with
 * `message` through the "ursa.error" logger. Clears the exception. */
void server_report_exception(server *s, const char *message);

/* Called by a connection when it closes. */
void server_conn_closed(server *s);

/* The connection count changed: the peers see it (heartbeat.h). */
static inline void server_publish_connections(server *s)
{
    if (s->heartbeat != NULL)
        s->heartbeat->connections = (uint32_t)s->conn_count;
}

/* The cached "Date: ...\r\n" header line for the current second. */
const char *server_date_header(server *s);

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

#endif
