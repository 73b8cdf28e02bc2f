#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/scope.h"

#include <string.h>
#include <sys/socket.h>

#include "http/header_names.h"
#include "http/target.h"
#include "transport/listener.h"
#include "ws/handshake.h"

static int set_item(PyObject *dict, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int result = PyDict_SetItem(dict, key, value);
    Py_DECREF(value);
    return result;
}

int scope_init_header_names(asgi_server *a)
{
    for (int i = 0; i < URSA_COMMON_HEADERS; i++) {
        a->header_names[i] = PyBytes_FromString(common_header_names[i]);
        if (a->header_names[i] == NULL)
            return -1;
    }
    return 0;
}

/* ---- the template ---- */

/* "server": (host, port), or (path, None) for a unix socket. */
static PyObject *server_address(const listener *l)
{
    char host[256];
    unsigned port;
    int family = listener_address(l, host, sizeof host, &port);
    if (family == AF_INET || family == AF_INET6)
        return Py_BuildValue("(sI)", host, port);
    if (family == AF_UNIX)
        return Py_BuildValue("(sO)", host, Py_None);
    Py_RETURN_NONE;
}

PyObject *scope_template_new(module_state *state, const listener *l, PyObject *url_scheme)
{
    PyObject *scope = PyDict_New();
    if (scope == NULL)
        return NULL;
    PyObject *asgi = Py_BuildValue("{ssss}", "version", "3.0", "spec_version", "2.4");
    PyObject *extensions = Py_BuildValue("{s{}}", "http.response.pathsend");
    if (set_item(scope, state->str_type, (Py_INCREF(state->str_http), state->str_http)) < 0 ||
        set_item(scope, state->str_asgi, asgi) < 0 || PyDict_SetItem(scope, state->str_http_version, state->str_v1_1) < 0 ||
        set_item(scope, state->str_server, server_address(l)) < 0 ||
        PyDict_SetItem(scope, state->str_scheme, url_scheme) < 0 ||
        PyDict_SetItem(scope, state->str_root_path, state->str_empty) < 0 ||
        set_item(scope, state->str_query_string, PyBytes_FromStringAndSize(NULL, 0)) < 0 ||
        set_item(scope, state->str_extensions, extensions) < 0) {
        Py_DECREF(scope);
        return NULL;
    }
    /* Each request sets these: a copy of the template already has their
     * room, so that filling it in never grows the dict. */
    PyObject *per_request[] = {state->str_method, state->str_path, state->str_raw_path, state->str_headers,
                               state->str_client};
    for (size_t i = 0; i < sizeof per_request / sizeof *per_request; i++) {
        if (PyDict_SetItem(scope, per_request[i], Py_None) < 0) {
            Py_DECREF(scope);
            return NULL;
        }
    }
    return scope;
}

/* ---- one request ---- */

/* "path" is the target's path percent-decoded and read as UTF-8, as other
 * ASGI servers give it (an invalid sequence becomes U+FFFD); "raw_path"
 * is its bytes as sent. Mounted under root_path (script_name), a path
 * under it keeps it (the app's router strips it); one outside gets "". */
static int set_target(asgi_server *a, PyObject *scope, module_state *state, const char *target, size_t length)
{
    target_parts parts;
    target_split(target, length, &parts);
    PyObject *raw_path = PyBytes_FromStringAndSize(parts.path, (Py_ssize_t)parts.path_length);
    if (raw_path == NULL)
        return -1;
    PyObject *path;
    if (memchr(parts.path, '%', parts.path_length) == NULL) {
        path = PyUnicode_DecodeUTF8(parts.path, (Py_ssize_t)parts.path_length, "replace");
    } else {
        char *decoded = PyMem_Malloc(parts.path_length + 1);
        if (decoded == NULL) {
            Py_DECREF(raw_path);
            PyErr_NoMemory();
            return -1;
        }
        size_t n = target_decode(parts.path, parts.path_length, decoded);
        path = PyUnicode_DecodeUTF8(decoded, (Py_ssize_t)n, "replace");
        PyMem_Free(decoded);
    }
    if (set_item(scope, state->str_raw_path, raw_path) < 0 || set_item(scope, state->str_path, path) < 0)
        return -1;
    if (parts.query != NULL &&
        set_item(scope, state->str_query_string,
                 PyBytes_FromStringAndSize(parts.query, (Py_ssize_t)parts.query_length)) < 0)
        return -1;
    if (a->root_path_length > 0 &&
        target_under_prefix(parts.path, parts.path_length, a->root_path, a->root_path_length)) {
        PyObject *root_path = PyUnicode_DecodeUTF8(a->root_path, (Py_ssize_t)a->root_path_length, NULL);
        if (set_item(scope, state->str_root_path, root_path) < 0)
            return -1;
    }
    return 0;
}

/* A header name in lower case, as bytes. */
static PyObject *header_name(asgi_server *a, const char *name, size_t length)
{
    int common = common_header_index(name, length);
    if (common >= 0) {
        Py_INCREF(a->header_names[common]);
        return a->header_names[common];
    }
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
    if (bytes == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(bytes);
    for (size_t i = 0; i < length; i++)
        out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    return bytes;
}

static PyObject *headers_of(asgi_server *a, const request *req, const char *base)
{
    PyObject *headers = PyList_New(req->header_count);
    if (headers == NULL)
        return NULL;
    for (uint32_t i = 0; i < req->header_count; i++) {
        const header_span *h = &req->headers[i];
        PyObject *name = header_name(a, base + h->name.offset, h->name.length);
        PyObject *value = name ? PyBytes_FromStringAndSize(base + h->value.offset, h->value.length) : NULL;
        PyObject *pair = value ? PyTuple_Pack(2, name, value) : NULL;
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_DECREF(headers);
            return NULL;
        }
        PyList_SET_ITEM(headers, i, pair);
    }
    return headers;
}

/* "client": the peer, or the client a trusted proxy named (its port is
 * not known: 0) when `f` is what it said; None for a unix peer. */
static PyObject *client_of(exchange *x, const forwarded *f)
{
    if (f != NULL && f->has_client)
        return Py_BuildValue("(Ni)",
                             PyUnicode_DecodeLatin1(exchange_request_bytes(x) + f->client.offset, f->client.length,
                                                    NULL),
                             0);
    PyObject *port_text = exchange_remote_port(x);
    if (port_text == NULL)
        Py_RETURN_NONE;
    /* The peer's port is kept as text (WSGI's REMOTE_PORT); its digits are
     * read here without int()'s general parser. */
    Py_ssize_t length;
    const char *digits = PyUnicode_AsUTF8AndSize(port_text, &length);
    if (digits == NULL)
        return NULL;
    long number = 0;
    for (Py_ssize_t i = 0; i < length && i < 6; i++)
        number = number * 10 + (digits[i] - '0');
    PyObject *port = PyLong_FromLong(number);
    if (port == NULL)
        return NULL;
    PyObject *client = PyTuple_Pack(2, exchange_remote_addr(x), port);
    Py_DECREF(port);
    return client;
}

PyObject *scope_build(asgi_server *a, exchange *x)
{
    server *s = exchange_server(x);
    module_state *state = s->state;
    const request *req = exchange_request(x);
    const char *base = exchange_request_bytes(x);
    PyObject *scope = PyDict_Copy(a->templates[exchange_listener(x)]);
    if (scope == NULL)
        return NULL;
    PyObject *method = req->method < URSA_METHOD_NAMES ? state->method_names[req->method] : NULL;
    if (method == NULL) {
        PyErr_SetString(PyExc_ValueError, "unknown request method");
        goto error;
    }
    const forwarded *f = exchange_forwarded(x);
    if (PyDict_SetItem(scope, state->str_method, method) < 0 ||
        (req->http_minor == 0 && PyDict_SetItem(scope, state->str_http_version, state->str_v1_0) < 0) ||
        set_target(a, scope, state, base + req->url.offset, req->url.length) < 0 ||
        set_item(scope, state->str_headers, headers_of(a, req, base)) < 0 ||
        set_item(scope, state->str_client, client_of(x, f)) < 0)
        goto error;
    if (f->scheme != SCHEME_UNSAID &&
        PyDict_SetItem(scope, state->str_scheme, f->scheme == SCHEME_HTTPS ? state->str_https : state->str_http) < 0)
        goto error;
    if (a->lifespan_state != NULL && set_item(scope, state->str_state, PyDict_Copy(a->lifespan_state)) < 0)
        goto error;
    return scope;
error:
    Py_DECREF(scope);
    return NULL;
}

/* The Sec-WebSocket-Protocol fields' elements, in order. */
static PyObject *subprotocols_of(const request *req, const char *base)
{
    PyObject *list = PyList_New(0);
    if (list == NULL)
        return NULL;
    for (uint32_t i = 0; i < req->header_count; i++) {
        const header_span *h = &req->headers[i];
        if (!ws_name_is(base + h->name.offset, h->name.length, "sec-websocket-protocol"))
            continue;
        const char *at = base + h->value.offset, *end = at + h->value.length, *element;
        size_t length;
        while (ws_next_element(&at, end, &element, &length)) {
            PyObject *name = PyUnicode_DecodeLatin1(element, (Py_ssize_t)length, NULL);
            if (name == NULL || PyList_Append(list, name) < 0) {
                Py_XDECREF(name);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(name);
        }
    }
    return list;
}

PyObject *scope_build_websocket(asgi_server *a, exchange *x)
{
    module_state *state = exchange_server(x)->state;
    PyObject *scope = scope_build(a, x);
    if (scope == NULL)
        return NULL;
    /* "wss" when the request came over TLS (a proxy's word, or url_scheme). */
    PyObject *scheme = PyDict_GetItemWithError(scope, state->str_scheme);
    int secure = scheme != NULL && PyUnicode_Check(scheme) && PyUnicode_Compare(scheme, state->str_https) == 0;
    if (PyErr_Occurred())
        goto error;
    PyObject *extensions = Py_BuildValue("{O{}}", state->str_websocket_http_response);
    if (PyDict_SetItem(scope, state->str_type, state->str_websocket) < 0 ||
        PyDict_DelItem(scope, state->str_method) < 0 ||
        PyDict_SetItem(scope, state->str_scheme, secure ? state->str_wss : state->str_ws) < 0 ||
        set_item(scope, state->str_subprotocols, subprotocols_of(exchange_request(x), exchange_request_bytes(x))) < 0 ||
        set_item(scope, state->str_extensions, extensions) < 0)
        goto error;
    return scope;
error:
    Py_DECREF(scope);
    return NULL;
}

PyObject *scope_build_partial(asgi_server *a, exchange *x)
{
    module_state *state = exchange_server(x)->state;
    const request *req = exchange_request(x);
    PyObject *scope = PyDict_Copy(a->templates[exchange_listener(x)]);
    if (scope == NULL)
        return NULL;
    unsigned method_number = exchange_method_seen(x);
    PyObject *method = method_number < URSA_METHOD_NAMES ? state->method_names[method_number] : NULL;
    if (set_item(scope, state->str_client, client_of(x, NULL)) < 0)
        goto error;
    if (PyDict_DelItem(scope, state->str_headers) < 0)
        goto error;
    if (req->url.length > 0 && method != NULL) {
        if (PyDict_SetItem(scope, state->str_method, method) < 0 ||
            set_target(a, scope, state, exchange_request_bytes(x) + req->url.offset, req->url.length) < 0)
            goto error;
    } else if (PyDict_DelItem(scope, state->str_method) < 0 || PyDict_DelItem(scope, state->str_path) < 0 ||
               PyDict_DelItem(scope, state->str_raw_path) < 0) {
        goto error;
    }
    if (!req->headers_complete && PyDict_DelItem(scope, state->str_http_version) < 0)
        goto error;
    return scope;
error:
    Py_DECREF(scope);
    return NULL;
}
