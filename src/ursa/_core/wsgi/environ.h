/* Request to environ: the WSGI environ dict of a request, complete or
 * refused, from the parsed spans; nothing here needs a socket. */
#ifndef URSA_ENVIRON_H
#define URSA_ENVIRON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/state.h"
#include "http/forwarded.h"
#include "http/request.h"
#include "transport/server.h"

/* What an environ is made of. */
typedef struct environ_source {
    module_state *state;
    PyObject *template;       /* the listener's: environ_template_new() */
    const request *req;
    const char *bytes;        /* the head the request's spans point into */
    unsigned method;          /* the parser's: known before the head is complete */
    PyObject *remote_addr;
    PyObject *remote_port;    /* NULL for a unix peer */
    const forwarded *forwarded; /* what a trusted proxy said, or NULL */
    const char *script_name;  /* the prefix the app is mounted under ("" for none) */
    size_t script_name_length;
} environ_source;

/* Fill the interned keys environ_build uses. Returns 0, or -1. */
int environ_init_state(module_state *state);
/* A new environ for a complete request. `body` moves into wsgi.input. */
PyObject *environ_build(const environ_source *source, body *body);
/* What is known of a request that is refused before it is complete: the
 * peer, and the method and target when they were read. For the access log. */
PyObject *environ_build_partial(const environ_source *source);
/* What every request on one listening socket shares. */
typedef struct environ_defaults {
    const listener *socket;   /* for SERVER_NAME and SERVER_PORT */
    PyObject *url_scheme;
    PyObject *script_name;    /* "" or the prefix the app is mounted under */
    PyObject *errors;         /* wsgi.errors, or NULL: sys.stderr */
    int multiprocess;
} environ_defaults;

/* The entries shared by every request on a listening socket. */
PyObject *environ_template_new(module_state *state, const environ_defaults *defaults);

#endif
