/* Server options: limits, timeouts and hooks, parsed once from the
 * keywords of serve(). Sizes are bytes, times are seconds. */
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
    size_t body_buffer_size;  /* bodies larger spill to a temporary file */
    size_t max_connections;   /* beyond: stop accepting until one closes */
    double header_timeout;    /* first byte to end of head -> 408 */
    double body_timeout;      /* gap between body reads -> 408 */
    double keepalive_timeout; /* idle between requests -> silent close */
    double write_timeout;     /* no write progress -> close */
    double graceful_timeout;  /* bound on draining at stop */
    uint64_t max_requests;    /* 0: unlimited; else stop after this many */
    PyObject *access_log;     /* callable or NULL (owned) */
    PyObject *url_scheme;     /* str (owned) */
    int multiprocess;
} server_options;

/* The defaults as a new dict, exported as _core.DEFAULT_OPTIONS. */
PyObject *options_defaults(void);
/* Fill `opts` from defaults overridden by `kwargs` (may be NULL).
 * Returns 0, or -1 with TypeError/ValueError naming the bad option. */
int options_parse(server_options *opts, PyObject *kwargs);
void options_clear(server_options *opts);

#endif
