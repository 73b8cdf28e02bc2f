/* LibevLoop: the ev_loop an event loop runs on, as a Python object. Either
 * one of its own (LibevLoop(), for an event loop used without a server:
 * destroyed with the object, and the GIL released around its poll by
 * callbacks installed here), or someone else's (libev_loop_wrap(): the
 * server's, whose own release callbacks already let the GIL go and whose
 * ev_userdata is not touched). An event loop never installs loop-wide
 * callbacks itself: the GIL is the business of whoever made the ev_loop. */
#ifndef URSA_ASGI_LIBEV_H
#define URSA_ASGI_LIBEV_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <ev.h>

#include "common/state.h"

#define EVENT_LOOP_NEEDS_PYTHON "ursa's asyncio loop needs Python 3.11 or newer"

/* The module state of one of the event loop's types (register.c makes them
 * with their module), or NULL with RuntimeError before Python 3.9, where a
 * type cannot find it (the event loop needs 3.11 anyway). */
module_state *event_loop_type_state(PyTypeObject *type);

/* A LibevLoop for `loop`, which stays its owner's: it must outlive every
 * event loop made on it (close them first). NULL with an exception. */
PyObject *libev_loop_wrap(module_state *state, struct ev_loop *loop);

/* The ev_loop of `object` and the module state it was made with, or NULL
 * with TypeError when `object` is not a LibevLoop. */
struct ev_loop *libev_loop_of(PyObject *object, module_state **state);

PyType_Spec *libev_loop_type_spec(void);

#endif
