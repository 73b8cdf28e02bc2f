/* Request to environ: the WSGI environ dict for a complete request. */
#ifndef URSA_ENVIRON_H
#define URSA_ENVIRON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct conn;
struct listener;

/* A new environ for the request on `c`. The body moves into wsgi.input. */
PyObject *environ_build(struct conn *c);
#include "module.h"

/* Fill the interned keys environ_build uses. Returns 0, or -1. */
int environ_init_state(module_state *state);
/* What is known of a request that is refused before it is complete: the
 * peer, and the method and target when they were read. For the access log. */
PyObject *environ_build_partial(struct conn *c);
/* The entries shared by every request on a listener. */
PyObject *environ_template_new(struct listener *l);

#endif
