/* write(): the callable start_response returns (PEP 3333's legacy,
 * imperative API; Zope's way). It never waits for the client. */
#ifndef URSA_WRITE_H
#define URSA_WRITE_H

#include "http/exchange.h"

typedef struct {
    PyObject_HEAD
    exchange *exchange; /* NULL once the response has ended */
} WriteObject;

/* A write() bound to `x` (NULL: detached). A new reference, or NULL. */
WriteObject *write_new(module_state *state, exchange *x);
static inline void write_bind(WriteObject *write, exchange *x)
{
    write->exchange = x;
}

PyType_Spec *write_type_spec(void);

#endif
