/* The event loop's types, made into the module state and the module by
 * module.c's init (one call each for init, traverse and clear). */
#ifndef URSA_ASGI_REGISTER_H
#define URSA_ASGI_REGISTER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/state.h"

/* Make the types, put them in `state` and on `module`: 0, or -1 with an
 * exception. */
int event_loop_types_init(PyObject *module, module_state *state);
int event_loop_types_traverse(module_state *state, visitproc visit, void *arg);
void event_loop_types_clear(module_state *state);

#endif
