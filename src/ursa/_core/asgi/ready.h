/* An awaitable that is already done: what receive() and send() return
 * when they need not wait, so that `await` costs no future, no callback
 * and no trip through the event loop. */
#ifndef URSA_READY_H
#define URSA_READY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/state.h"

/* Done with `value` (a new reference is taken). */
PyObject *ready_new(module_state *state, PyObject *value);

PyType_Spec *ready_type_spec(void);

#endif
