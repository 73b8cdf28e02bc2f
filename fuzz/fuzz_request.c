/* libFuzzer harness for ursa's request path: bytes as a client sends them,
 * through the HTTP layer's socket-free reader (http/reader.c: request_parse
 * and request_parse_body the way a connection drives them, llhttp and
 * ursa's callbacks, chunked decoding, limits, pipelining) and environ_build
 * (the WSGI environ and wsgi.input).
 *
 * Input layout: byte 0 holds flags, bytes 1-2 a split point; the rest is
 * what the client sends, delivered as two reads cut at that point.
 *   flag 0x01  the small limits below instead of ursa's defaults
 *   flag 0x02  read wsgi.input line by line instead of all at once
 *
 * CPython is embedded (initialised once) and ursa._core's module state
 * comes from PyInit__core, so environ_build runs on its real interned
 * strings and types. No socket, connection or server exists: the reader
 * and environ_build need none.
 *
 * A refused request goes through environ_build_partial (what the access
 * log is given).
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

#include "common/options.h"
#include "common/state.h"
#include "http/reader.h"
#include "wsgi/environ.h"

PyMODINIT_FUNC PyInit__core(void);

#define FLAG_SMALL_LIMITS 0x01
#define FLAG_READ_LINES 0x02
#define CONTROL_BYTES 3

static module_state *state;
static PyObject *environ_template;
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

static void check_span(const http_reader *r, span s)
{
    if ((uint64_t)s.offset + s.length > r->in.len)
        fail("a request span points past the read buffer");
}

static void check_spans(const http_reader *r)
{
    check_span(r, r->req.url);
    if (r->req.header_count > r->req.header_capacity)
        fail("more headers than the header array holds");
    for (uint32_t i = 0; i < r->req.header_count; i++) {
        check_span(r, r->req.headers[i].name);
        check_span(r, r->req.headers[i].value);
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

static environ_source source_of(const http_reader *r)
{
    PyObject *no_port = NULL;
    environ_source source = {state, environ_template, &r->req, r->in.data, r->parser.method, state->str_empty,
                             no_port, NULL, "", 0};
    return source;
}

/* What the exchange does with a request, without an app: the environ and
 * wsgi.input it would be given, checked. */
static int on_event(http_reader *r, parse_result result, void *by_lines)
{
    unpoison_all(&r->in);
    if (r->parsed > r->in.len)
        fail("parsed past the end of the read buffer");
    environ_source source = source_of(r);
    if (result == PARSE_ERROR) {
        int status = r->req.error_status;
        if (status < 400 || status > 599 || r->req.error_reason == NULL)
            fail("a refusal without an error status and reason");
        check_span(r, r->req.url);
        PyObject *environ = environ_build_partial(&source);
        if (environ == NULL)
            fail("environ_build_partial failed on a refused request");
        Py_DECREF(environ);
        return 0;
    }
    check_spans(r);
    uint64_t body_size = r->req.body.size;
    PyObject *environ = environ_build(&source, &r->req.body);
    if (environ == NULL)
        fail("environ_build failed on a request the parser accepted");
    if (!PyDict_Check(environ) || PyDict_GetItem(environ, state->str_PATH_INFO) == NULL)
        fail("environ without PATH_INFO");
    drain_input(environ, body_size, *(int *)by_lines);
    Py_DECREF(environ);
    return 1;
}

static int receive(http_reader *r, const uint8_t *data, size_t size)
{
    if (size == 0)
        return 1;
    unpoison_all(&r->in);
    int going = http_reader_read(r, (const char *)data, size);
    if (going < 0)
        fail("the reader failed");
    poison_spare(&r->in);
    return going;
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

    /* No socket: SERVER_NAME and SERVER_PORT take their defaults. */
    PyObject *scheme = PyUnicode_FromString("http");
    environ_defaults defaults = {NULL, scheme, state->str_empty, NULL, 0};
    environ_template = scheme ? environ_template_new(state, &defaults) : NULL;
    Py_XDECREF(scheme);
    if (environ_template == NULL)
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

    http_reader reader;
    http_reader_init(&reader, (flags & FLAG_SMALL_LIMITS) ? &small_limits : &default_limits, on_event, &by_lines);
    if (receive(&reader, data, split) > 0)
        receive(&reader, data + split, size - split);
    unpoison_all(&reader.in);
    http_reader_free(&reader);
    if (PyErr_Occurred())
        fail("an exception was left set");
    return 0;
}
