/* The few newer C-API names ursa uses, for CPython 3.8. */
#ifndef URSA_COMPAT_H
#define URSA_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x03090000
#define PyObject_Vectorcall _PyObject_Vectorcall
#define PyObject_CallNoArgs(callable) PyObject_CallObject((callable), NULL)
#define PyObject_CallMethodNoArgs(obj, name) PyObject_CallMethodObjArgs((obj), (name), NULL)
#ifndef Py_TPFLAGS_HAVE_VECTORCALL
#define Py_TPFLAGS_HAVE_VECTORCALL _Py_TPFLAGS_HAVE_VECTORCALL
#endif
#define Py_IS_TYPE(ob, type) (Py_TYPE(ob) == (type))
#endif

#endif
