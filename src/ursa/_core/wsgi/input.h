/* wsgi.input: a read-only, seekable file over a request body that is
 * already complete, in memory or in an anonymous temporary file. It never
 * blocks on the network and returns b"" at the end. */
#ifndef URSA_INPUT_H
#define URSA_INPUT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "http/body.h"
#include "common/state.h"

/* A new wsgi.input that takes over `b` (left empty). */
PyObject *input_new(module_state *state, body *b);
PyType_Spec *input_type_spec(void);

#endif
