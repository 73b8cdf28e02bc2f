/* start_response: the callable the app gets with the environ. It checks
 * what the app gives (PEP 3333; nothing that could break or mislead the
 * response on the wire) and writes the status line and fields into the
 * exchange's head. It returns write() (write.c). */
#ifndef URSA_START_RESPONSE_H
#define URSA_START_RESPONSE_H

#include "http/exchange.h"

/* A start_response bound to the request of `x`: the server's spare one
 * when it has one, else a new one. A new reference, or NULL. */
PyObject *start_response_attach(exchange *x);
/* The response has ended: calls on `start_response` (a reference is
 * stolen) or its write() now raise. Unshared, it becomes the spare. */
void start_response_detach(server *s, PyObject *start_response);

PyType_Spec *start_response_type_spec(void);

#endif
