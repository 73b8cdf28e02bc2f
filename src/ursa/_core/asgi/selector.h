/* The event loop's selector: a selectors.BaseSelector whose register,
 * modify and unregister start, change and stop one ev_io per fd, so that
 * every stdlib transport, server, pipe and the self-pipe work unchanged.
 * It never selects: an ev_io's callback puts the fd's reader or writer
 * handle straight on the ready queue (what asyncio's _process_events does,
 * without a list of events in between). The watchers live in the core,
 * which stops them all at close(). */
#ifndef URSA_ASGI_SELECTOR_H
#define URSA_ASGI_SELECTOR_H

#include "asgi/core.h"

typedef struct fd_watch {
    ev_io io;
    EventLoopCoreObject *core; /* which owns this watcher */
    PyObject *key;             /* selectors.SelectorKey(fileobj, fd, events, data) */
} fd_watch;

/* Make `selector` (of the selector type, or a subclass) `core`'s: 0, or -1
 * with an exception. */
int selector_bind(PyObject *selector, EventLoopCoreObject *core);

/* Stop every io watcher of `core` and drop their keys. */
void selector_close(EventLoopCoreObject *core);
int selector_traverse(EventLoopCoreObject *core, visitproc visit, void *arg);

PyType_Spec *selector_type_spec(void);

#endif
