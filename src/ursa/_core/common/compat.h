/* The few newer C-API names ursa uses, for CPython 3.8. */
#ifndef URSA_COMPAT_H
#define URSA_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x03090000
#define PyObject_Vectorcall _PyObject_Vectorcall
#define PyObject_CallNoArgs(callable) PyObject_CallObject((callable), NULL)
#define PyObject_CallMethodNoArgs(obj, name) PyObject_CallMethodObjArgs((obj), (name), NULL)
#define PyObject_CallMethodOneArg(obj, name, arg) PyObject_CallMethodObjArgs((obj), (name), (arg), NULL)
#define PyObject_CallOneArg(callable, arg) PyObject_CallFunctionObjArgs((callable), (arg), NULL)
#define Py_IS_TYPE(ob, type) (Py_TYPE(ob) == (type))
#endif

/* The extension is built with hidden visibility; before 3.9 PyMODINIT_FUNC
 * does not mark the init function as exported itself. */
#if PY_VERSION_HEX < 0x03090000 && defined(__GNUC__)
#undef PyMODINIT_FUNC
#define PyMODINIT_FUNC __attribute__((visibility("default"))) PyObject *
#endif

/* Heap types honour "__vectorcalloffset__" from 3.9 on; before, calls go
 * through tp_call. */
#if PY_VERSION_HEX >= 0x03090000
#define URSA_TPFLAGS_HEAPTYPE_VECTORCALL Py_TPFLAGS_HAVE_VECTORCALL
#else
#define URSA_TPFLAGS_HEAPTYPE_VECTORCALL 0
#endif

#endif
