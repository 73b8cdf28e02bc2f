#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/register.h"

#include <string.h>

#include "asgi/handles.h"
#include "asgi/libev.h"
#include "asgi/loop.h"
#include "asgi/probe.h"
#include "asgi/selector.h"

/* A type that knows its module (LibevLoop and _LoopProbe find the state
 * through it), with `base` (or object), added to `module` by its short
 * name. NULL with an exception. */
static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec, PyTypeObject *base)
{
#if PY_VERSION_HEX >= 0x03090000
    PyObject *type = PyType_FromModuleAndSpec(module, spec, (PyObject *)base);
#else
    /* 3.8 takes the bases as a tuple only */
    PyObject *bases = base != NULL ? PyTuple_Pack(1, base) : NULL;
    if (base != NULL && bases == NULL)
        return NULL;
    PyObject *type = PyType_FromSpecWithBases(spec, bases);
    Py_XDECREF(bases);
#endif
    if (type == NULL)
        return NULL;
    Py_INCREF(type);
    if (PyModule_AddObject(module, strrchr(spec->name, '.') + 1, type) < 0) {
        Py_DECREF(type);
        Py_DECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;
}

int event_loop_types_init(PyObject *module, module_state *state)
{
    event_loop_types *types = &state->event_loop;
    if ((types->handle = add_type(module, handle_type_spec(), NULL)) == NULL ||
        (types->timer = add_type(module, timer_handle_type_spec(), types->handle)) == NULL ||
        (types->core = add_type(module, event_loop_core_type_spec(), NULL)) == NULL ||
        (types->selector = add_type(module, selector_type_spec(), NULL)) == NULL ||
        (types->libev = add_type(module, libev_loop_type_spec(), NULL)) == NULL ||
        (types->probe = add_type(module, loop_probe_type_spec(), NULL)) == NULL)
        return -1;
    return 0;
}

int event_loop_types_traverse(module_state *state, visitproc visit, void *arg)
{
    event_loop_types *types = &state->event_loop;
    Py_VISIT(types->core);
    Py_VISIT(types->selector);
    Py_VISIT(types->handle);
    Py_VISIT(types->timer);
    Py_VISIT(types->libev);
    Py_VISIT(types->probe);
    Py_VISIT(types->loop_class);
    Py_VISIT(types->selector_key);
    return 0;
}

void event_loop_types_clear(module_state *state)
{
    event_loop_types *types = &state->event_loop;
    Py_CLEAR(types->core);
    Py_CLEAR(types->selector);
    Py_CLEAR(types->handle);
    Py_CLEAR(types->timer);
    Py_CLEAR(types->libev);
    Py_CLEAR(types->probe);
    Py_CLEAR(types->loop_class);
    Py_CLEAR(types->selector_key);
}
