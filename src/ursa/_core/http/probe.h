/* The HTTP layer as the in-process tests see it (_core._parse_requests):
 * a client's bytes, cut into reads where asked, through reader.c, each
 * request or refusal described as a dict. */
#ifndef URSA_PROBE_H
#define URSA_PROBE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "common/options.h"
#include "http/reader.h"

/* A list with one dict per request (method, target, version, headers,
 * body, keep_alive, chunked, in_file) or refusal (refused, reason), in
 * order, and {"incomplete": True} when bytes of one more are left. `cuts`
 * are offsets where one read ends and the next begins. */
PyObject *http_probe(const server_options *limits, const char *data, size_t length, const size_t *cuts,
                     size_t cut_count);

#endif
