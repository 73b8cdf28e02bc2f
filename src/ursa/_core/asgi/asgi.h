/* ASGI 3 (HTTP and lifespan) as an interface of the HTTP exchange: the
 * scope, the app's task on the asyncio event loop that runs on the
 * server's libev loop, receive() and send(). The app is called when the
 * request's head is complete and receive() streams the body as it arrives
 * (the exchange reads the socket only while the app keeps up). */
#ifndef URSA_ASGI_H
#define URSA_ASGI_H

#include "http/exchange.h"

/* What every ASGI request of one server shares. */
typedef struct asgi_server {
    PyObject *event_loop;     /* ursa.eventloop.EventLoop on the server's ev_loop */
    PyObject *lifespan;       /* startup(loop) -> state or None, shutdown(loop); or NULL */
    PyObject *lifespan_state; /* what startup gave, copied into each scope; or NULL */
    int loop_entered;
    PyObject **templates;     /* a scope template per listener (scope.c) */
    size_t template_count;
    PyObject *header_names[URSA_COMMON_HEADERS]; /* lower-case bytes */
    const char *root_path;    /* script_name's bytes */
    size_t root_path_length;
} asgi_server;

/* How serve() says what to run the ASGI app with: `lifespan` may be NULL. */
typedef struct asgi_setup {
    PyObject *lifespan;
} asgi_setup;

extern const interface asgi_interface;

/* Whether this Python can run ASGI apps (3.11 and later). */
#define ASGI_SUPPORTED (PY_VERSION_HEX >= 0x030B0000)

#endif
