#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "common/state.h"

#include "common/exceptions.h"

PyObject *refuse_instantiation(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: the server makes them", type->tp_name);
    return NULL;
}

void log_error(module_state *state, const char *message)
{
    PyObject *exc = exception_take();
    if (state->error_logger == NULL) {
        PyObject *logging = PyImport_ImportModule("logging");
        if (logging != NULL) {
            state->error_logger = PyObject_CallMethod(logging, "getLogger", "s", "ursa.error");
            Py_DECREF(logging);
        }
    }
    int logged = 0;
    if (state->error_logger != NULL) {
        PyObject *method = PyObject_GetAttr(state->error_logger, state->str_error);
        PyObject *args = Py_BuildValue("(ss)", "%s", message);
        PyObject *kwargs = exc ? Py_BuildValue("{sO}", "exc_info", exc) : NULL;
        PyObject *ok = method && args && (kwargs || !exc) ? PyObject_Call(method, args, kwargs) : NULL;
        logged = ok != NULL;
        Py_XDECREF(ok);
        Py_XDECREF(kwargs);
        Py_XDECREF(args);
        Py_XDECREF(method);
    }
    if (!logged) {
        /* Logging itself failed: say so on stderr rather than lose it. */
        PyErr_Clear();
        fprintf(stderr, "%s\n", message);
        if (exc != NULL) {
            exception_raise(exc);
            PyErr_Print();
            return;
        }
    }
    PyErr_Clear();
    Py_XDECREF(exc);
}
