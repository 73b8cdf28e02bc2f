/* WSGI (PEP 3333) as an interface of the HTTP exchange: the environ, the
 * app call, start_response and write(), the response iterable and
 * wsgi.file_wrapper. */
#ifndef URSA_WSGI_H
#define URSA_WSGI_H

#include "http/exchange.h"

/* What every WSGI request of one server shares. */
typedef struct wsgi_server {
    PyObject **templates;  /* an environ template per listener (environ.c) */
    size_t template_count;
    PyObject *spare_start_response; /* a detached, unshared one: see start_response.c */
    const char *script_name;  /* the option's bytes (it outlives the server's requests) */
    size_t script_name_length;
} wsgi_server;

extern const interface wsgi_interface;

#endif
