/* The response to one request: start_response, the app's iterable, the
 * framing decision (Content-Length, chunked or close-delimited) and the
 * write path that pulls the iterable only as fast as the socket drains. */
#ifndef URSA_RESPONSE_H
#define URSA_RESPONSE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#include "buffer.h"
#include "compat.h"
#include "module.h"
#include "spool.h"

struct conn;

typedef struct response {
    PyObject *environ;
    PyObject *start_response; /* StartResponse object, detached at the end */
    PyObject *result;         /* what the app returned: close() is called on it */
    PyObject *iterator;       /* NULL for a list or tuple: see items_ready */
    Py_ssize_t next_index;    /* of a list or tuple's next item */
    int status_code;
    buffer head;              /* status line and headers; the app's first */
    int64_t content_length;   /* the app's Content-Length, or -1 */
    uint64_t body_sent;       /* body bytes queued so far (not framing) */
    uint64_t body_given;      /* body bytes the app gave, sent or not (HEAD) */
    spool spool;              /* write() output the client has not taken, past a bound */
    double started_at;
    /* sendfile(2) from a file_wrapper around a regular file */
    int file_fd;
    off_t file_offset;
    uint64_t file_remaining;
    unsigned headers_set : 1;   /* start_response was called */
    unsigned headers_sent : 1;  /* the head is queued: the status is final */
    unsigned has_date : 1;
    unsigned has_server : 1;
    unsigned chunked : 1;
    unsigned no_body : 1;       /* HEAD, 1xx, 204, 304 */
    unsigned app_wants_close : 1;
    unsigned exhausted : 1;     /* the iterable is done and the tail queued */
    unsigned failed : 1;        /* the app failed after the head was sent */
    unsigned items_ready : 1;   /* a list or tuple: pulling never waits */
    unsigned length_reached : 1; /* the app gave its whole Content-Length */
} response;

typedef enum {
    PUMP_DONE,    /* everything is written */
    PUMP_BLOCKED, /* waiting for the socket to drain (or yielding to others) */
    PUMP_ABORT,   /* the connection must be closed now */
} pump_result;

/* Call the app for the request on `c` with `environ` (a reference is
 * stolen) and start writing its response. */
pump_result response_start(struct conn *c, PyObject *environ);
/* Continue writing: pull more of the iterable as the socket drains. */
pump_result response_pump(struct conn *c);
/* Release the response: close() the iterable exactly once, detach
 * start_response, drop every reference. Safe on an empty response. */
void response_release(struct conn *c);

/* write(data): queue `data` and send what the socket takes now; never
 * waits. The rest is sent once the app returns, from memory up to
 * body_buffer_size and from a temporary file past it. 0, or -1 with an
 * exception. */
int response_write(struct conn *c, PyObject *data);

#endif
