#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/environ.h"

#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http/header_names.h"
#include "http/target.h"
#include "transport/listener.h"
#include "wsgi/input.h"

/* The CGI key of a header name: the name in upper case with "-" as "_",
 * after "HTTP_" when `prefix` is 5 (RFC 3875 4.1.18). */
static PyObject *cgi_key(const char *name, size_t length, size_t prefix)
{
    PyObject *key = PyUnicode_New((Py_ssize_t)(length + prefix), 127);
    if (key == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(key);
    memcpy(out, "HTTP_", prefix);
    for (size_t i = 0; i < length; i++) {
        char ch = name[i];
        out[prefix + i] = (Py_UCS1)(ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? ch - 32 : ch);
    }
    return key;
}

int environ_init_state(module_state *state)
{
    for (int i = 0; i < URSA_COMMON_HEADERS; i++) {
        const char *name = common_header_names[i];
        /* CONTENT_TYPE and CONTENT_LENGTH have no HTTP_ (RFC 3875 4.1). */
        size_t prefix = strncmp(name, "content-", 8) == 0 ? 0 : 5;
        state->header_keys[i] = cgi_key(name, strlen(name), prefix);
        if (state->header_keys[i] == NULL)
            return -1;
        PyUnicode_InternInPlace(&state->header_keys[i]);
    }
    /* HTTP methods only: llhttp's RTSP ones never reach a request parser. */
#define URSA_METHOD_NAME(number, name, text)                                                                  \
    if (number < URSA_METHOD_NAMES &&                                                                          \
        (state->method_names[number] = PyUnicode_InternFromString(#text)) == NULL)                             \
        return -1;
    HTTP_METHOD_MAP(URSA_METHOD_NAME)
#undef URSA_METHOD_NAME
    return 0;
}

static int set_item(PyObject *environ, PyObject *key, PyObject *value)
{
    if (value == NULL)
        return -1;
    int result = PyDict_SetItem(environ, key, value);
    Py_DECREF(value);
    return result;
}

/* ---- the request target ---- */

/* PATH_INFO: the path percent-decoded, as latin-1 (PEP 3333). */
static PyObject *decode_path(const char *path, size_t length)
{
    if (memchr(path, '%', length) == NULL)
        return PyUnicode_DecodeLatin1(path, (Py_ssize_t)length, NULL);
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
    if (result == NULL)
        return NULL;
    size_t n = target_decode(path, length, PyBytes_AS_STRING(result));
    PyObject *text = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(result), (Py_ssize_t)n, NULL);
    Py_DECREF(result);
    return text;
}

/* Split the target into the app's prefix, the path and the query
 * (http/target.c). The template holds QUERY_STRING "", so only a query
 * replaces it. */
static int set_target(PyObject *environ, const environ_source *source, const char *target, size_t length)
{
    module_state *state = source->state;
    PyObject *raw = PyUnicode_DecodeLatin1(target, (Py_ssize_t)length, NULL);
    if (raw == NULL)
        return -1;
    int result = -1;
    PyObject *path_info = NULL;
    if (PyDict_SetItem(environ, state->str_RAW_URI, raw) < 0 ||
        PyDict_SetItem(environ, state->str_REQUEST_URI, raw) < 0)
        goto done;

    target_parts parts;
    target_split(target, length, &parts);
    const char *path = parts.path;
    size_t path_length = parts.path_length;
    size_t prefix = source->script_name_length;
    if (prefix > 0) {
        /* Mounted under a prefix: a path under it is split into
         * SCRIPT_NAME (the template's) and PATH_INFO; one outside is the
         * app's as it is, with SCRIPT_NAME "" (health checks, say). */
        if (target_under_prefix(path, path_length, source->script_name, prefix)) {
            path += prefix;
            path_length -= prefix;
        } else if (PyDict_SetItem(environ, state->str_SCRIPT_NAME, state->str_empty) < 0) {
            goto done;
        }
    }
    if (path_length == 1 && path[0] == '*') {
        path_info = state->str_empty; /* OPTIONS * */
        Py_INCREF(path_info);
    } else if (path_length == length && memchr(path, '%', path_length) == NULL) {
        path_info = raw; /* the usual "/some/path": nothing to split or decode */
        Py_INCREF(path_info);
    } else {
        path_info = decode_path(path, path_length);
    }
    if (path_info == NULL || PyDict_SetItem(environ, state->str_PATH_INFO, path_info) < 0)
        goto done;
    if (parts.query != NULL &&
        set_item(environ, state->str_QUERY_STRING,
                 PyUnicode_DecodeLatin1(parts.query, (Py_ssize_t)parts.query_length, NULL)) < 0)
        goto done;
    result = 0;
done:
    Py_XDECREF(path_info);
    Py_DECREF(raw);
    return result;
}

/* ---- headers ---- */

/* The environ key for a header name, a new reference; NULL with no
 * exception for names with "_", which are dropped: "X_Forwarded_For"
 * would otherwise pass for "X-Forwarded-For". */
static PyObject *header_key(module_state *state, const char *name, size_t length)
{
    if (memchr(name, '_', length) != NULL)
        return NULL;
    int common = common_header_index(name, length);
    if (common >= 0) {
        Py_INCREF(state->header_keys[common]);
        return state->header_keys[common];
    }
    return cgi_key(name, length, 5);
}

static int add_header(PyObject *environ, module_state *state, PyObject *key, PyObject *value)
{
    PyObject *previous = PyDict_SetDefault(environ, key, value);
    if (previous == NULL)
        return -1;
    if (previous == value)
        return 0;
    /* Repeated fields are one comma-separated list (RFC 9110 5.3), but
     * cookie crumbs are joined with "; " (RFC 6265 5.4, RFC 9113 8.2.3):
     * "a=1,session=x" would be one cookie named a. */
    const char *separator = key == state->header_keys[COOKIE_HEADER] ? "; " : ",";
    return set_item(environ, key, PyUnicode_FromFormat("%U%s%U", previous, separator, value));
}

static int set_headers(PyObject *environ, module_state *state, const request *req, const char *base)
{
    for (uint32_t i = 0; i < req->header_count; i++) {
        const header_span *h = &req->headers[i];
        PyObject *key = header_key(state, base + h->name.offset, h->name.length);
        if (key == NULL) {
            if (PyErr_Occurred())
                return -1;
            continue;
        }
        PyObject *text = PyUnicode_DecodeLatin1(base + h->value.offset, h->value.length, NULL);
        int result = text ? add_header(environ, state, key, text) : -1;
        Py_XDECREF(text);
        Py_DECREF(key);
        if (result < 0)
            return -1;
    }
    return 0;
}

/* ---- the environ ---- */

/* The listener's template with the peer's address: what every environ,
 * complete or partial, starts from. */
static PyObject *environ_for_peer(const environ_source *source)
{
    module_state *state = source->state;
    PyObject *environ = PyDict_Copy(source->template);
    if (environ == NULL)
        return NULL;
    /* A unix socket's template has no REMOTE_PORT, nor its peers a port. */
    if (PyDict_SetItem(environ, state->str_REMOTE_ADDR, source->remote_addr) < 0 ||
        (source->remote_port != NULL && PyDict_SetItem(environ, state->str_REMOTE_PORT, source->remote_port) < 0)) {
        Py_DECREF(environ);
        return NULL;
    }
    return environ;
}

/* The template's REQUEST_METHOD is GET and its SERVER_PROTOCOL HTTP/1.1;
 * other requests replace them. */
static int set_request_line(PyObject *environ, module_state *state, PyObject *method, const request *req)
{
    if (method != state->method_names[HTTP_GET] &&
        PyDict_SetItem(environ, state->str_REQUEST_METHOD, method) < 0)
        return -1;
    if (req->http_minor == 0 && PyDict_SetItem(environ, state->str_SERVER_PROTOCOL, state->str_HTTP_1_0) < 0)
        return -1;
    return 0;
}

/* What a trusted proxy said: the scheme its client used, and the client
 * as REMOTE_ADDR, the proxy staying known as ursa.peer. */
static int set_forwarded(PyObject *environ, const environ_source *source)
{
    const forwarded *f = source->forwarded;
    module_state *state = source->state;
    if (f == NULL)
        return 0;
    if (f->scheme != SCHEME_UNSAID &&
        PyDict_SetItem(environ, state->str_wsgi_url_scheme, f->scheme == SCHEME_HTTPS ? state->str_https
                                                                                       : state->str_http) < 0)
        return -1;
    if (!f->has_client)
        return 0;
    if (PyDict_SetItem(environ, state->str_ursa_peer, source->remote_addr) < 0)
        return -1;
    return set_item(environ, state->str_REMOTE_ADDR,
                    PyUnicode_DecodeLatin1(source->bytes + f->client.offset, f->client.length, NULL));
}

PyObject *environ_build(const environ_source *source, body *body)
{
    module_state *state = source->state;
    const request *req = source->req;
    const char *base = source->bytes;
    PyObject *environ = environ_for_peer(source);
    if (environ == NULL)
        return NULL;
    PyObject *method = req->method < URSA_METHOD_NAMES ? state->method_names[req->method] : NULL;
    if (method == NULL) {
        PyErr_SetString(PyExc_ValueError, "unknown request method");
        goto error;
    }
    if (set_request_line(environ, state, method, req) < 0 ||
        set_target(environ, source, base + req->url.offset, req->url.length) < 0 ||
        set_headers(environ, state, req, base) < 0 || set_forwarded(environ, source) < 0)
        goto error;
    if (req->chunked && PyDict_DelItem(environ, state->str_CONTENT_LENGTH) < 0)
        PyErr_Clear(); /* a chunked body has no length to tell */
    /* Without a body, the template's shared empty wsgi.input stays. */
    body_settle(body); /* the app's now: out of the worker's budgets */
    if (body->size != 0 && set_item(environ, state->str_wsgi_input, input_new(state, body)) < 0)
        goto error;
    return environ;
error:
    Py_DECREF(environ);
    return NULL;
}

/* Template entries a refused request may not have got to. */
static int forget(PyObject *environ, PyObject *const *keys, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (PyDict_DelItem(environ, keys[i]) < 0)
            return -1;
    return 0;
}

PyObject *environ_build_partial(const environ_source *source)
{
    module_state *state = source->state;
    const request *req = source->req;
    PyObject *environ = environ_for_peer(source);
    if (environ == NULL)
        return NULL;
    /* The method is known once the target has begun. */
    PyObject *method = source->method < URSA_METHOD_NAMES ? state->method_names[source->method] : NULL;
    PyObject *request_line_keys[] = {state->str_REQUEST_METHOD, state->str_PATH_INFO, state->str_QUERY_STRING,
                                     state->str_RAW_URI, state->str_REQUEST_URI};
    if (req->url.length > 0 && method != NULL) {
        if (set_request_line(environ, state, method, req) < 0 ||
            set_target(environ, source, source->bytes + req->url.offset, req->url.length) < 0)
            goto error;
    } else if (forget(environ, request_line_keys, sizeof request_line_keys / sizeof *request_line_keys) < 0) {
        goto error;
    }
    if (!req->headers_complete && PyDict_DelItem(environ, state->str_SERVER_PROTOCOL) < 0)
        goto error;
    return environ;
error:
    Py_DECREF(environ);
    return NULL;
}

/* SERVER_NAME and SERVER_PORT; `*has_ports` tells whether the socket is
 * TCP, whose peers have a REMOTE_PORT. */
static int set_server_address(PyObject *template, module_state *state, const listener *l, int *has_ports)
{
    char host[256];
    unsigned port;
    int family = listener_address(l, host, sizeof host, &port);
    *has_ports = family == AF_INET || family == AF_INET6;
    /* A unix socket has no host or port; "localhost" and 80 make URLs that
     * apps rebuild from them (without a Host header) still well-formed. */
    if (!*has_ports) {
        strcpy(host, "localhost");
        port = 80;
    }
    if (set_item(template, state->str_SERVER_NAME, PyUnicode_FromString(host)) < 0 ||
        set_item(template, state->str_SERVER_PORT, PyUnicode_FromFormat("%u", port)) < 0)
        return -1;
    return 0;
}

/* The stream given, or sys.stderr as it is when the server starts. */
static int set_wsgi_errors(PyObject *template, module_state *state, PyObject *errors)
{
    if (errors != NULL)
        return PyDict_SetItem(template, state->str_wsgi_errors, errors);
    errors = PySys_GetObject("stderr");
    if (errors == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sys.stderr is not set: wsgi.errors needs it");
        return -1;
    }
    return PyDict_SetItem(template, state->str_wsgi_errors, errors);
}

/* Keys every request has, with their most common values: a GET of HTTP/1.1
 * without a query or body then replaces a few values and inserts no key
 * but its headers. The peer's entries are placeholders; REMOTE_PORT only
 * where peers have ports. */
static int set_request_defaults(PyObject *template, module_state *state, int has_ports)
{
    PyObject *method_get = state->method_names[HTTP_GET];
    if (PyDict_SetItem(template, state->str_REQUEST_METHOD, method_get) < 0 ||
        PyDict_SetItem(template, state->str_SERVER_PROTOCOL, state->str_HTTP_1_1) < 0)
        return -1;
    PyObject *empty_keys[] = {state->str_PATH_INFO, state->str_QUERY_STRING, state->str_RAW_URI,
                              state->str_REQUEST_URI, state->str_REMOTE_ADDR};
    for (size_t i = 0; i < sizeof empty_keys / sizeof *empty_keys; i++)
        if (PyDict_SetItem(template, empty_keys[i], state->str_empty) < 0)
            return -1;
    if (has_ports && PyDict_SetItem(template, state->str_REMOTE_PORT, state->str_empty) < 0)
        return -1;
    return PyDict_SetItem(template, state->str_wsgi_input, state->empty_input);
}

PyObject *environ_template_new(module_state *state, const environ_defaults *defaults)
{
    PyObject *template = PyDict_New();
    if (template == NULL)
        return NULL;
    int has_ports;
    if (set_server_address(template, state, defaults->socket, &has_ports) < 0 ||
        PyDict_SetItem(template, state->str_SCRIPT_NAME, defaults->script_name) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_version, state->wsgi_version) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_url_scheme, defaults->url_scheme) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_multithread, Py_False) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_multiprocess, defaults->multiprocess ? Py_True : Py_False) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_run_once, Py_False) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_file_wrapper, (PyObject *)state->file_wrapper_type) < 0 ||
        PyDict_SetItem(template, state->str_wsgi_input_terminated, Py_True) < 0 ||
        set_wsgi_errors(template, state, defaults->errors) < 0 ||
        set_request_defaults(template, state, has_ports) < 0) {
        Py_DECREF(template);
        return NULL;
    }
    return template;
}
