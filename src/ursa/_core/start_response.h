/* start_response and its write(): the two callables the app gets. They
 * check what the app gives (PEP 3333, no CR/LF/NUL on the wire) and
 * serialise the status line and headers into the response's head. */
#ifndef URSA_START_RESPONSE_H
#define URSA_START_RESPONSE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

struct conn;
struct server;

/* A start_response bound to the request on `c`: the server's spare one
 * when it has one, else a new one. A new reference, or NULL. */
PyObject *start_response_attach(struct conn *c);
/* The response has ended: calls on `start_response` (a reference is
 * stolen) or its write() now raise. Unshared, it becomes the spare. */
void start_response_detach(struct server *s, PyObject *start_response);

PyType_Spec *start_response_type_spec(void);
PyType_Spec *write_type_spec(void);

#endif
