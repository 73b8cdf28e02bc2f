#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "common/state.h"

PyObject *refuse_instantiation(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: the server makes them", type->tp_name);
    return NULL;
}

void log_error(module_state *state, const char *message)
{
    PyObject *exc_type, *exc, *traceback;
    PyErr_Fetch(&exc_type, &exc, &traceback);
    if (exc_type != NULL) {
        PyErr_NormalizeException(&exc_type, &exc, &traceback);
        if (traceback != NULL)
            PyException_SetTraceback(exc, traceback);
    }
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
        if (exc_type != NULL) {
            PyErr_Restore(exc_type, exc, traceback);
            PyErr_Print();
            return;
        }
    }
    PyErr_Clear();
    Py_XDECREF(exc_type);
    Py_XDECREF(exc);
    Py_XDECREF(traceback);
}
