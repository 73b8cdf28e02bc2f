/* For tests: a C watcher on an event loop's ev_loop, standing for the ASGI
 * interface's sockets, and a stand-in for the server's serve() that runs
 * ev_run itself with the event loop entered (loop.h). Exposed as
 * ursa._core._LoopProbe; tests/test_eventloop.py drives it. */
#ifndef URSA_ASGI_PROBE_H
#define URSA_ASGI_PROBE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

PyType_Spec *loop_probe_type_spec(void);

#endif
