/* Server options: limits, timeouts and hooks, parsed once from the
 * keywords of serve(). Sizes are bytes, times are seconds. One table in
 * options.c holds every option's kind, default and bounds; the CLI, the
 * config file and PasteDeploy check values against it (OPTION_SPECS,
 * check_option) before anything is bound. */
#ifndef URSA_OPTIONS_H
#define URSA_OPTIONS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct server_options {
    size_t max_request_line;  /* request target longer -> 414 */
    size_t max_header_line;   /* one header field + value longer -> 431 */
    size_t max_headers;       /* more header fields -> 431 */
    size_t max_header_bytes;  /* whole request head larger -> 431 */
    uint64_t max_body_size;   /* body larger -> 413 */
    size_t body_buffer_size;  /* bodies (and write() backlogs) larger spill to a temporary file */
    uint64_t max_buffered_bytes; /* request bytes a worker holds in memory; past it: 503 or spill */
    uint64_t max_spill_bytes; /* bytes a worker holds in temporary files; past it: 503 */
    size_t max_connections;   /* beyond: stop accepting until one closes */
    double header_timeout;    /* first byte to end of head -> 408 */
    double body_timeout;      /* gap between body reads -> 408 */
    double min_body_rate;     /* bytes/s a body must keep up after body_timeout; 0: off */
    double keepalive_timeout; /* idle between requests -> silent close */
    double write_timeout;     /* no write progress -> close */
    double graceful_timeout;  /* bound on draining at stop */
    uint64_t max_requests;    /* 0: unlimited; else stop after this many */
    uint64_t websocket_max_message_size; /* a WebSocket message larger -> close 1009 */
    double websocket_ping_interval; /* a ping after this long without one; 0: never */
    double websocket_ping_timeout;  /* no pong this long after a ping -> close */
    double websocket_close_timeout; /* the peer's answer to a close frame, at most this long */
    int websocket_per_message_deflate; /* permessage-deflate (RFC 7692) is negotiated when offered */
    uint64_t websocket_deflate_window_bits; /* its LZ77 windows, ours and the client's, at most 2^this bytes */
    PyObject *access_log;     /* callable or NULL (owned) */
    PyObject *url_scheme;     /* str (owned) */
    PyObject *forwarded_allow_ips; /* str: the proxies whose forwarded headers count (owned) */
    int proxy_protocol;       /* connections begin with a PROXY protocol header */
    PyObject *script_name;    /* str: the prefix the app is mounted under, or "" (owned) */
    int multiprocess;
    /* Python-API-only options (bjoern's keywords and the prefork worker's) */
    int keepalive;            /* 0: every response closes its connection */
    int tcp_nodelay;
    int shared_listeners;     /* other processes serve the sockets too */
    PyObject *heartbeat;      /* table of slots shared with the master and peers, or NULL (owned) */
    PyObject *wsgi_errors;    /* the stream for wsgi.errors, or NULL: sys.stderr (owned) */
    uint64_t heartbeat_slot;  /* this worker's slot in it */
} server_options;

/* The defaults of the public options as a new dict (_core.DEFAULT_OPTIONS). */
PyObject *options_defaults(void);
/* {name: (kind, minimum, maximum)} of every option (_core.OPTION_SPECS). */
PyObject *options_specs(void);
/* The names accepted by serve() but not listed in DEFAULT_OPTIONS. */
PyObject *options_api_only(void);
/* Check one value against its option's rules without keeping it: None, or
 * NULL with TypeError/ValueError ("must be ..., got ..."). */
PyObject *options_check(PyObject *name, PyObject *value);
/* Fill `opts` from defaults overridden by `kwargs` (may be NULL).
 * Returns 0, or -1 with TypeError/ValueError naming the bad option. */
int options_parse(server_options *opts, PyObject *kwargs);
void options_clear(server_options *opts);

#endif
