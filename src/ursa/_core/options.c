#include "options.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define KiB 1024
#define MiB (1024 * 1024)

/* Defaults: gunicorn's and nginx's habits where users have them. */
static const server_options defaults = {
    .max_request_line = 8 * KiB,
    .max_header_line = 8 * KiB,
    .max_headers = 100,
    .max_header_bytes = 64 * KiB,
    .max_body_size = 1024ULL * MiB, /* waitress's default */
    .body_buffer_size = 1 * MiB,
    .max_connections = 10000,
    .header_timeout = 10.0,
    .body_timeout = 15.0,
    .keepalive_timeout = 5.0,
    .write_timeout = 30.0,
    .graceful_timeout = 30.0,
    .max_requests = 0,
    .multiprocess = 0,
};

typedef enum { OPT_SIZE, OPT_U64, OPT_SECONDS, OPT_BOOL, OPT_CALLABLE, OPT_STR } option_kind;

typedef struct option_spec {
    const char *name;
    option_kind kind;
    size_t offset;
    uint64_t minimum; /* for sizes: smallest sane value */
} option_spec;

#define SPEC(name, kind, minimum) {#name, kind, offsetof(server_options, name), minimum}
static const option_spec specs[] = {
    SPEC(max_request_line, OPT_SIZE, 16),
    SPEC(max_header_line, OPT_SIZE, 16),
    SPEC(max_headers, OPT_SIZE, 1),
    SPEC(max_header_bytes, OPT_SIZE, 64),
    SPEC(max_body_size, OPT_U64, 0),
    SPEC(body_buffer_size, OPT_SIZE, 0),
    SPEC(max_connections, OPT_SIZE, 1),
    SPEC(header_timeout, OPT_SECONDS, 0),
    SPEC(body_timeout, OPT_SECONDS, 0),
    SPEC(keepalive_timeout, OPT_SECONDS, 0),
    SPEC(write_timeout, OPT_SECONDS, 0),
    SPEC(graceful_timeout, OPT_SECONDS, 0),
    SPEC(max_requests, OPT_U64, 0),
    SPEC(access_log, OPT_CALLABLE, 0),
    SPEC(url_scheme, OPT_STR, 0),
    SPEC(multiprocess, OPT_BOOL, 0),
};
#undef SPEC
#define SPEC_COUNT (sizeof(specs) / sizeof(specs[0]))

static PyObject *default_value(const option_spec *spec)
{
    const char *field = (const char *)&defaults + spec->offset;
    switch (spec->kind) {
    case OPT_SIZE:
        return PyLong_FromSize_t(*(const size_t *)field);
    case OPT_U64:
        return PyLong_FromUnsignedLongLong(*(const uint64_t *)field);
    case OPT_SECONDS:
        return PyFloat_FromDouble(*(const double *)field);
    case OPT_BOOL:
        return PyBool_FromLong(*(const int *)field);
    case OPT_CALLABLE:
        Py_RETURN_NONE;
    case OPT_STR:
        return PyUnicode_FromString("http");
    }
    Py_UNREACHABLE();
}

PyObject *options_defaults(void)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        PyObject *value = default_value(&specs[i]);
        if (value == NULL || PyDict_SetItemString(dict, specs[i].name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(value);
    }
    return dict;
}

static int parse_unsigned(const option_spec *spec, PyObject *value, uint64_t *out)
{
    if (!PyLong_Check(value) || PyBool_Check(value)) {
        PyErr_Format(PyExc_TypeError, "option %s must be an int, not %.100s", spec->name,
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    unsigned long long n = PyLong_AsUnsignedLongLong(value);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "option %s must be a non-negative int", spec->name);
        return -1;
    }
    if (n < spec->minimum) {
        PyErr_Format(PyExc_ValueError, "option %s must be at least %llu, got %llu", spec->name,
                     (unsigned long long)spec->minimum, n);
        return -1;
    }
    if (spec->kind == OPT_SIZE && n > SIZE_MAX / 2) {
        PyErr_Format(PyExc_ValueError, "option %s is too large: %llu", spec->name, n);
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_seconds(const option_spec *spec, PyObject *value, double *out)
{
    if (!PyFloat_Check(value) && !(PyLong_Check(value) && !PyBool_Check(value))) {
        PyErr_Format(PyExc_TypeError, "option %s must be a number of seconds, not %.100s", spec->name,
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred())
        return -1;
    if (!(seconds > 0) || !isfinite(seconds)) {
        PyErr_Format(PyExc_ValueError, "option %s must be a positive number of seconds, got %R", spec->name,
                     value);
        return -1;
    }
    *out = seconds;
    return 0;
}

static int parse_one(server_options *opts, const option_spec *spec, PyObject *value)
{
    char *field = (char *)opts + spec->offset;
    uint64_t n;
    switch (spec->kind) {
    case OPT_SIZE:
        if (parse_unsigned(spec, value, &n) < 0)
            return -1;
        *(size_t *)field = (size_t)n;
        return 0;
    case OPT_U64:
        return parse_unsigned(spec, value, (uint64_t *)field);
    case OPT_SECONDS:
        return parse_seconds(spec, value, (double *)field);
    case OPT_BOOL: {
        int truth = PyObject_IsTrue(value);
        if (truth < 0)
            return -1;
        *(int *)field = truth;
        return 0;
    }
    case OPT_CALLABLE:
        if (value == Py_None)
            return 0;
        if (!PyCallable_Check(value)) {
            PyErr_Format(PyExc_TypeError, "option %s must be callable or None, not %.100s", spec->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_INCREF(value);
        Py_XSETREF(*(PyObject **)field, value);
        return 0;
    case OPT_STR:
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "option %s must be a str, not %.100s", spec->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        Py_INCREF(value);
        Py_XSETREF(*(PyObject **)field, value);
        return 0;
    }
    Py_UNREACHABLE();
}

static const option_spec *find_spec(PyObject *name)
{
    const char *text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (text == NULL)
        return NULL;
    for (size_t i = 0; i < SPEC_COUNT; i++)
        if (strcmp(specs[i].name, text) == 0)
            return &specs[i];
    return NULL;
}

int options_parse(server_options *opts, PyObject *kwargs)
{
    *opts = defaults;
    opts->url_scheme = PyUnicode_FromString("http");
    if (opts->url_scheme == NULL)
        return -1;
    if (kwargs == NULL)
        return 0;
    PyObject *name, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &name, &value)) {
        const option_spec *spec = find_spec(name);
        if (spec == NULL) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "unknown server option %R (see ursa.OPTIONS)", name);
            goto error;
        }
        if (parse_one(opts, spec, value) < 0)
            goto error;
    }
    return 0;
error:
    options_clear(opts);
    return -1;
}

void options_clear(server_options *opts)
{
    Py_CLEAR(opts->access_log);
    Py_CLEAR(opts->url_scheme);
}
