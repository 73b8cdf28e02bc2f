/* libFuzzer harness for ursa's request path: bytes as a client sends them,
 * through request_parse (llhttp and ursa's callbacks, chunked decoding,
 * limits) and environ_build (the WSGI environ and wsgi.input), the way
 * conn.c drives them, with pipelining.
 *
 * Input layout: byte 0 holds flags, bytes 1-2 a split point; the rest is
 * what the client sends, delivered as two reads cut at that point.
 *   flag 0x01  the small limits below instead of ursa's defaults
 *   flag 0x02  read wsgi.input line by line instead of all at once
 *
 * CPython is embedded (initialised once) and ursa._core's module state
 * comes from PyInit__core, so environ_build runs on its real interned
 * strings and types. No socket, listener or event loop exists: the conn,
 * server and listener structs are filled in by hand with what the request
 * path reads from them.
 *
 * A refused request goes through environ_build_partial (what the access
 * log is given) when the core has it.
 *
 * Besides the sanitizers, it aborts when an invariant breaks: a span of
 * the request outside the read buffer, a refusal without a status, or a
 * body whose length is not what wsgi.input gives back. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "environ.h"
#include "module.h"
#include "options.h"
#include "request.h"

PyMODINIT_FUNC PyInit__core(void);

#define FLAG_SMALL_LIMITS 0x01
#define FLAG_READ_LINES 0x02
#define CONTROL_BYTES 3

static module_state *state;
static server fake_server;
static listener fake_listener;
static server_options default_limits, small_limits;
static void fail(const char *what)
{
    fprintf(stderr, "fuzz_request: invariant broken: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    abort();
}

/* Bytes past the buffer's length are never valid request data: poisoned,
 * an over-read of the read buffer is caught even inside its capacity. */
static void poison_spare(const buffer *in)
{
    if (in->data != NULL)
        ASAN_POISON_MEMORY_REGION(in->data + in->len, in->cap - in->len);
}

static void unpoison_all(const buffer *in)
{
    if (in->data != NULL)
        ASAN_UNPOISON_MEMORY_REGION(in->data, in->cap);
}

static void check_span(const conn *c, span s)
{
    if ((uint64_t)s.offset + s.length > c->in.len)
        fail("a request span points past the read buffer");
}

static void check_spans(const conn *c)
{
    check_span(c, c->x->req.url);
    if (c->x->req.header_count > c->x->req.header_capacity)
        fail("more headers than the header array holds");
    for (uint32_t i = 0; i < c->x->req.header_count; i++) {
        check_span(c, c->x->req.headers[i].name);
        check_span(c, c->x->req.headers[i].value);
    }
}

/* Read the whole wsgi.input back and compare with the body received. */
static void drain_input(PyObject *environ, uint64_t expected, int by_lines)
{
    PyObject *input = PyDict_GetItem(environ, state->str_wsgi_input);
    if (input == NULL)
        fail("no wsgi.input in the environ");
    uint64_t total = 0;
    for (;;) {
        PyObject *piece = by_lines ? PyObject_CallMethod(input, "readline", NULL)
                                   : PyObject_CallMethodNoArgs(input, state->str_read);
        if (piece == NULL || !PyBytes_Check(piece))
            fail("wsgi.input read failed");
        Py_ssize_t n = PyBytes_GET_SIZE(piece);
        Py_DECREF(piece);
        if (n == 0)
            break;
        total += (uint64_t)n;
    }
    if (total != expected)
        fail("wsgi.input does not hold the body that was received");

    PyObject *length = PyDict_GetItem(environ, state->str_CONTENT_LENGTH);
    if (length != NULL) {
        PyObject *number = PyLong_FromUnicodeObject(length, 10);
        if (number == NULL || PyLong_AsUnsignedLongLong(number) != expected)
            fail("CONTENT_LENGTH differs from the body received");
        Py_DECREF(number);
    }
}

/* What conn_respond and conn_finish_request do, without an app: returns
 * 0 when the connection would stay open for the next request. */
static int dispatch(conn *c, int by_lines)
{
    check_spans(c);
    uint64_t body_size = c->x->req.body.size;
    PyObject *environ = environ_build(c);
    if (environ == NULL)
        fail("environ_build failed on a request the parser accepted");
    if (!PyDict_Check(environ) || PyDict_GetItem(environ, state->str_PATH_INFO) == NULL)
        fail("environ without PATH_INFO");
    drain_input(environ, body_size, by_lines);
    Py_DECREF(environ);

    int keep_alive = c->x->req.keep_alive;
    request_reset(&c->x->req);
    llhttp_resume(&c->x->parser);
    buffer_discard_front(&c->in, c->parsed);
    c->parsed = 0;
    return keep_alive ? 0 : -1;
}

/* conn_process_input: every complete request in the buffer, in order. */
static int process_input(conn *c, int by_lines)
{
    while (c->in.len > c->parsed) {
        parse_result result =
            request_parse(&c->x->parser, &c->x->req, &c->in, &c->parsed, &fake_server.opts, &fake_server.budget);
        poison_spare(&c->in);
        if (c->parsed > c->in.len)
            fail("parsed past the end of the read buffer");
        if (result == PARSE_ERROR) {
            int status = c->x->req.error_status;
            if (status < 400 || status > 599 || c->x->req.error_reason == NULL)
                fail("a refusal without an error status and reason");
            unpoison_all(&c->in);
            check_span(c, c->x->req.url);
            PyObject *environ = environ_build_partial(c);
            if (environ == NULL)
                fail("environ_build_partial failed on a refused request");
            Py_DECREF(environ);
            return -1;
        }
        if (result == PARSE_NEED_MORE)
            return 0;
        unpoison_all(&c->in);
        if (dispatch(c, by_lines) < 0)
            return -1;
        poison_spare(&c->in);
    }
    return 0;
}

static int receive(conn *c, const uint8_t *data, size_t size, int by_lines)
{
    if (size == 0)
        return 0;
    unpoison_all(&c->in);
    if (buffer_append(&c->in, data, size) < 0)
        fail("out of memory appending to the read buffer");
    poison_spare(&c->in);
    return process_input(c, by_lines);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Every Python object straight from malloc: pymalloc's arenas would hide
     * a use-after-free or a leaked object from ASan and LeakSanitizer. */
    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
    PyStatus status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);

    PyObject *module = PyInit__core();
    if (module == NULL)
        fail("PyInit__core failed");
    state = PyModule_GetState(module);

    if (options_parse(&default_limits, NULL) < 0 || options_parse(&small_limits, NULL) < 0)
        fail("options_parse failed");
    small_limits.max_request_line = 64;
    small_limits.max_header_line = 96;
    small_limits.max_headers = 6;
    small_limits.max_header_bytes = 256;
    small_limits.max_body_size = 512;
    small_limits.body_buffer_size = 64; /* bodies above go to a temporary file */

    fake_server.state = state;
    fake_server.opts = default_limits;
    fake_listener.server = &fake_server;
    fake_listener.fd = -1; /* no socket: SERVER_NAME/PORT take their defaults */
    fake_listener.environ_template = environ_template_new(&fake_listener);
    if (fake_listener.environ_template == NULL)
        fail("environ_template_new failed");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CONTROL_BYTES)
        return 0;
    int flags = data[0];
    size_t split = ((size_t)data[1] << 8 | data[2]);
    data += CONTROL_BYTES;
    size -= CONTROL_BYTES;
    if (split > size)
        split = size;
    int by_lines = (flags & FLAG_READ_LINES) != 0;

    fake_server.opts = (flags & FLAG_SMALL_LIMITS) ? small_limits : default_limits;
    fake_server.budget.memory = (budget){0, fake_server.opts.max_buffered_bytes};
    fake_server.budget.spill = (budget){0, fake_server.opts.max_spill_bytes};
    conn c;
    exchange x;
    memset(&c, 0, sizeof c);
    memset(&x, 0, sizeof x);
    c.x = &x;
    c.server = &fake_server;
    c.listener = &fake_listener;
    c.fd = -1;
    c.remote_addr = state->str_empty;
    Py_INCREF(c.remote_addr);
    llhttp_init(&x.parser, HTTP_REQUEST, request_parser_settings());
    body_init(&x.req.body);

    if (receive(&c, data, split, by_lines) == 0)
        receive(&c, data + split, size - split, by_lines);

    unpoison_all(&c.in);
    request_free(&x.req);
    buffer_free(&c.in);
    Py_DECREF(c.remote_addr);
    if (PyErr_Occurred())
        fail("an exception was left set");
    return 0;
}
