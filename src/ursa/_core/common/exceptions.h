/* The exception being raised as one object, taken and given back the
 * same way on every Python: PyErr_GetRaisedException/SetRaisedException
 * from 3.12, their equivalent before. */
#ifndef URSA_EXCEPTIONS_H
#define URSA_EXCEPTIONS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The current exception, normalized, with its traceback, and cleared; a
 * new reference, or NULL when none is set. */
PyObject *exception_take(void);
/* Raise `exception` (an instance) again; its reference is stolen. */
void exception_raise(PyObject *exception);

#endif
