/* One WSGI request's state, shared by the files of this layer: it follows
 * its exchange in memory (interface.state_size). */
#ifndef URSA_CALL_H
#define URSA_CALL_H

#include "http/exchange.h"
#include "wsgi/wsgi.h"

typedef struct wsgi_call {
    PyObject *environ;
    PyObject *start_response; /* StartResponse object, detached at the end */
    PyObject *result;         /* what the app returned: close() is called on it */
    PyObject *iterator;       /* NULL for a list or tuple: see items_ready */
    Py_ssize_t next_index;    /* of a list or tuple's next item */
    double started_at;        /* for the access log's duration */
    response_head response;   /* what start_response was given */
    unsigned headers_set : 1; /* start_response was called */
    unsigned items_ready : 1; /* a list or tuple: pulling never waits */
    unsigned exhausted : 1;   /* the iterable is done and the end queued */
} wsgi_call;

static inline wsgi_call *wsgi_call_of(exchange *x)
{
    return exchange_state(x);
}

static inline wsgi_server *wsgi_server_of(const server *s)
{
    return ((http_server *)s->protocol_state)->iface_state;
}

/* The app failed (its exception is set and is logged with `message`):
 * a 500 before the head went out, else the connection closes. 0, or -1:
 * close now. */
int wsgi_fail(exchange *x, const char *message);
/* A body item as bytes: a new reference, or NULL with TypeError. */
PyObject *wsgi_body_bytes(PyObject *item);
/* Queue the head (with the whole body's length when known, else -1). */
int wsgi_send_head(exchange *x, int64_t known_length);

#endif
