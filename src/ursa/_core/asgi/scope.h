/* The ASGI HTTP connection scope of a request, made from a template per
 * listening socket (the keys every request shares, with their most common
 * values) and the request's spans. */
#ifndef URSA_SCOPE_H
#define URSA_SCOPE_H

#include "asgi/asgi.h"

/* The template of the listener `l`. NULL with an exception. */
PyObject *scope_template_new(module_state *state, const listener *l, PyObject *url_scheme);
/* The scope of the complete request of `x`. NULL with an exception. */
PyObject *scope_build(asgi_server *a, exchange *x);
/* The WebSocket scope of a valid handshake (ws/handshake.h): the HTTP
 * scope's keys without the method, scheme ws or wss, the subprotocols the
 * client offered, the websocket.http.response extension. */
PyObject *scope_build_websocket(asgi_server *a, exchange *x);
/* What is known of a request refused before it was complete: the client,
 * and the method and target when they were read. For the access log. */
PyObject *scope_build_partial(asgi_server *a, exchange *x);
/* Lower-case bytes of the common header names, for scope_build. */
int scope_init_header_names(asgi_server *a);

#endif
