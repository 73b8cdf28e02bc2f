#include "common/options.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/networks.h"

#define KiB 1024
#define MiB (1024 * 1024)
/* Beyond any real limit, and far from overflowing a size_t or a double's
 * exact integers. */
#define SIZE_CEILING (1ULL << 50)
#define SECONDS_MINIMUM 0.001
#define SECONDS_MAXIMUM 1e7 /* about four months */
#define RATE_MAXIMUM 1e12

/* Defaults: gunicorn's and nginx's habits where users have them. */
static const server_options defaults = {
    .max_request_line = 8 * KiB,
    .max_header_line = 8 * KiB,
    .max_headers = 100,
    .max_header_bytes = 64 * KiB,
    .max_body_size = 1024ULL * MiB, /* waitress's default */
    .body_buffer_size = 1 * MiB,
    .max_buffered_bytes = 64 * MiB,
    .max_spill_bytes = 4096ULL * MiB,
    .max_connections = 10000,
    .header_timeout = 10.0,
    .body_timeout = 15.0,
    .min_body_rate = 500.0, /* mod_reqtimeout's MinRate */
    .keepalive_timeout = 5.0,
    .write_timeout = 30.0,
    .graceful_timeout = 30.0,
    .max_requests = 0,
    .websocket_max_message_size = 16 * MiB,
    .websocket_ping_interval = 20.0, /* uvicorn's (the websockets library's) */
    .websocket_ping_timeout = 20.0,
    .websocket_close_timeout = 10.0,
    /* uvicorn's --ws-per-message-deflate is on by default; the window is
     * the websockets library's (4 KiB: a fair ratio for the small
     * messages WebSockets mostly carry, at an eighth of zlib's memory). */
    .websocket_per_message_deflate = 1,
    .websocket_deflate_window_bits = 12,
    .multiprocess = 0,
    .keepalive = 1,
    .tcp_nodelay = 1,
    .shared_listeners = 0,
};

typedef enum {
    OPT_BYTES,
    OPT_COUNT,
    OPT_SECONDS,
    OPT_RATE,
    OPT_BOOL,
    OPT_CALLABLE,
    OPT_STR,
    OPT_NETWORKS, /* a str: "*", or addresses and networks separated by commas */
    OPT_PREFIX,   /* a str: "" or "/path", without a trailing "/" */
    OPT_BUFFER,
    OPT_OBJECT,   /* anything */
} option_kind;

static const char *const kind_names[] = {"bytes", "count",  "seconds", "rate",   "bool",  "callable",
                                         "str",   "networks", "prefix", "buffer", "object"};

typedef struct option_spec {
    const char *name;
    size_t offset;
    unsigned field_is_size_t : 1; /* else uint64_t, for the integer kinds */
    unsigned api_only : 1;        /* not in DEFAULT_OPTIONS, nor on the command line */
    option_kind kind;
    double minimum;               /* bounds of the numeric kinds, inclusive */
    double maximum;
    const char *text;             /* the default of the str kinds */
} option_spec;

#define FIELD(name) #name, offsetof(server_options, name)
#define SIZE_T(name) FIELD(name), sizeof(((server_options *)0)->name) == sizeof(size_t)
static const option_spec specs[] = {
    {SIZE_T(max_request_line), .kind = OPT_BYTES, .minimum = 16, .maximum = SIZE_CEILING},
    {SIZE_T(max_header_line), .kind = OPT_BYTES, .minimum = 16, .maximum = SIZE_CEILING},
    {SIZE_T(max_headers), .kind = OPT_COUNT, .minimum = 1, .maximum = 1 << 20},
    {SIZE_T(max_header_bytes), .kind = OPT_BYTES, .minimum = 64, .maximum = 1 << 30},
    {FIELD(max_body_size), 0, 0, .kind = OPT_BYTES, .minimum = 0, .maximum = SIZE_CEILING},
    {SIZE_T(body_buffer_size), .kind = OPT_BYTES, .minimum = 0, .maximum = SIZE_CEILING},
    {FIELD(max_buffered_bytes), 0, 0, .kind = OPT_BYTES, .minimum = 64 * KiB, .maximum = SIZE_CEILING},
    {FIELD(max_spill_bytes), 0, 0, .kind = OPT_BYTES, .minimum = 0, .maximum = SIZE_CEILING},
    {SIZE_T(max_connections), .kind = OPT_COUNT, .minimum = 1, .maximum = 1 << 24},
    {FIELD(header_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(body_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(min_body_rate), 0, 0, .kind = OPT_RATE, .minimum = 0, .maximum = RATE_MAXIMUM},
    {FIELD(keepalive_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(write_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(graceful_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(max_requests), 0, 0, .kind = OPT_COUNT, .minimum = 0, .maximum = SIZE_CEILING},
    {FIELD(websocket_max_message_size), 0, 0, .kind = OPT_BYTES, .minimum = 1, .maximum = SIZE_CEILING},
    {FIELD(websocket_ping_interval), 0, 0, .kind = OPT_SECONDS, .minimum = 0, .maximum = SECONDS_MAXIMUM},
    {FIELD(websocket_ping_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(websocket_close_timeout), 0, 0, .kind = OPT_SECONDS, .minimum = SECONDS_MINIMUM, .maximum = SECONDS_MAXIMUM},
    {FIELD(websocket_per_message_deflate), 0, 0, .kind = OPT_BOOL},
    /* zlib's raw deflate takes 9 to 15 (8 is refused: see ws/deflate_offer.h). */
    {FIELD(websocket_deflate_window_bits), 0, 0, .kind = OPT_COUNT, .minimum = 9, .maximum = 15},
    {FIELD(access_log), 0, 0, .kind = OPT_CALLABLE},
    {FIELD(url_scheme), 0, 0, .kind = OPT_STR, .text = "http"},
    {FIELD(forwarded_allow_ips), 0, 0, .kind = OPT_NETWORKS, .text = "127.0.0.1,::1"}, /* gunicorn's */
    {FIELD(proxy_protocol), 0, 0, .kind = OPT_BOOL},
    {FIELD(script_name), 0, 0, .kind = OPT_PREFIX, .text = ""},
    {FIELD(multiprocess), 0, 0, .kind = OPT_BOOL},
    {FIELD(keepalive), 0, 1, .kind = OPT_BOOL},
    {FIELD(tcp_nodelay), 0, 1, .kind = OPT_BOOL},
    {FIELD(shared_listeners), 0, 1, .kind = OPT_BOOL},
    {FIELD(heartbeat), 0, 1, .kind = OPT_BUFFER},
    {FIELD(heartbeat_slot), 0, 1, .kind = OPT_COUNT, .minimum = 0, .maximum = 1 << 16},
    {FIELD(wsgi_errors), 0, 1, .kind = OPT_OBJECT},
};
#undef SIZE_T
#undef FIELD
#define SPEC_COUNT (sizeof(specs) / sizeof(specs[0]))

/* A heartbeat table is whole slots of this size: see heartbeat.h. */
#define HEARTBEAT_SLOT_BYTES 256

static int is_integer_kind(option_kind kind)
{
    return kind == OPT_BYTES || kind == OPT_COUNT;
}

static int is_number_kind(option_kind kind)
{
    return is_integer_kind(kind) || kind == OPT_SECONDS || kind == OPT_RATE;
}

static PyObject *default_value(const option_spec *spec)
{
    const char *field = (const char *)&defaults + spec->offset;
    switch (spec->kind) {
    case OPT_BYTES:
    case OPT_COUNT:
        if (spec->field_is_size_t)
            return PyLong_FromSize_t(*(const size_t *)field);
        return PyLong_FromUnsignedLongLong(*(const uint64_t *)field);
    case OPT_SECONDS:
    case OPT_RATE:
        return PyFloat_FromDouble(*(const double *)field);
    case OPT_BOOL:
        return PyBool_FromLong(*(const int *)field);
    case OPT_CALLABLE:
    case OPT_BUFFER:
    case OPT_OBJECT:
        Py_RETURN_NONE;
    case OPT_STR:
    case OPT_NETWORKS:
    case OPT_PREFIX:
        return PyUnicode_FromString(spec->text);
    }
    Py_UNREACHABLE();
}

PyObject *options_defaults(void)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        if (specs[i].api_only)
            continue;
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

static PyObject *bound_value(const option_spec *spec, double bound)
{
    if (!is_number_kind(spec->kind))
        Py_RETURN_NONE;
    if (is_integer_kind(spec->kind))
        return PyLong_FromUnsignedLongLong((unsigned long long)bound);
    return PyFloat_FromDouble(bound);
}

PyObject *options_specs(void)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        const option_spec *spec = &specs[i];
        PyObject *minimum = bound_value(spec, spec->minimum);
        PyObject *maximum = bound_value(spec, spec->maximum);
        PyObject *entry = minimum && maximum ? Py_BuildValue("(sOO)", kind_names[spec->kind], minimum, maximum) : NULL;
        Py_XDECREF(minimum);
        Py_XDECREF(maximum);
        if (entry == NULL || PyDict_SetItemString(dict, spec->name, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(entry);
    }
    return dict;
}

PyObject *options_api_only(void)
{
    PyObject *names = PyList_New(0);
    if (names == NULL)
        return NULL;
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        if (!specs[i].api_only)
            continue;
        PyObject *name = PyUnicode_FromString(specs[i].name);
        if (name == NULL || PyList_Append(names, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(names);
            return NULL;
        }
        Py_DECREF(name);
    }
    PyObject *tuple = PyList_AsTuple(names);
    Py_DECREF(names);
    return tuple;
}

/* The messages name no option: the caller says which one (an option of
 * serve(), a command-line flag, a line of a config file). */

static int parse_integer(const option_spec *spec, PyObject *value, uint64_t *out)
{
    if (!PyLong_Check(value) || PyBool_Check(value)) {
        PyErr_Format(PyExc_TypeError, "must be a whole number of %s, not %.100s",
                     spec->kind == OPT_BYTES ? "bytes" : "items", Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (overflow || n < (long long)spec->minimum || (double)n > spec->maximum) {
        PyErr_Format(PyExc_ValueError, "must be between %llu and %llu, got %R", (unsigned long long)spec->minimum,
                     (unsigned long long)spec->maximum, value);
        return -1;
    }
    *out = (uint64_t)n;
    return 0;
}

static int parse_real(const option_spec *spec, PyObject *value, double *out)
{
    const char *unit = spec->kind == OPT_SECONDS ? "seconds" : "bytes per second";
    if (!PyFloat_Check(value) && !(PyLong_Check(value) && !PyBool_Check(value))) {
        PyErr_Format(PyExc_TypeError, "must be a number of %s, not %.100s", unit, Py_TYPE(value)->tp_name);
        return -1;
    }
    double x = PyFloat_AsDouble(value);
    if (x == -1.0 && PyErr_Occurred())
        return -1;
    if (!(x >= spec->minimum && x <= spec->maximum)) { /* NaN fails too */
        /* PyErr_Format has no %g. */
        char range[96];
        if (spec->kind == OPT_RATE)
            snprintf(range, sizeof range, "0 (off) and %g", spec->maximum);
        else
            snprintf(range, sizeof range, "%g and %g", spec->minimum, spec->maximum);
        PyErr_Format(PyExc_ValueError, "must be between %s %s, got %R", range, unit, value);
        return -1;
    }
    *out = x;
    return 0;
}

static int check_buffer(PyObject *value)
{
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_WRITABLE) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "must be a writable buffer (an mmap), not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_ssize_t length = view.len;
    PyBuffer_Release(&view);
    if (length < HEARTBEAT_SLOT_BYTES || length % HEARTBEAT_SLOT_BYTES != 0) {
        PyErr_Format(PyExc_ValueError, "must be a whole number of %d-byte slots, got %zd bytes",
                     HEARTBEAT_SLOT_BYTES, length);
        return -1;
    }
    return 0;
}

/* A prefix an app is mounted under: "" or "/a/b". */
static int check_prefix(const char *text)
{
    size_t length = strlen(text);
    if (length == 0)
        return 0;
    if (text[0] != '/' || text[length - 1] == '/' || strpbrk(text, "?# \t") != NULL) {
        PyErr_Format(PyExc_ValueError, "must be \"\" or a path like /app (a leading \"/\", none at the end), "
                                       "got '%s'", text);
        return -1;
    }
    return 0;
}

static int check_text(const option_spec *spec, PyObject *value)
{
    const char *text = PyUnicode_AsUTF8(value);
    if (text == NULL)
        return -1;
    if (spec->kind == OPT_PREFIX)
        return check_prefix(text);
    networks set;
    if (networks_parse(&set, text) < 0)
        return -1;
    networks_free(&set);
    return 0;
}

/* Check `value` and, with `opts`, store it there. 0, or -1 with an error. */
static int parse_one(server_options *opts, const option_spec *spec, PyObject *value)
{
    char *field = opts ? (char *)opts + spec->offset : NULL;
    uint64_t n;
    double x;
    switch (spec->kind) {
    case OPT_BYTES:
    case OPT_COUNT:
        if (parse_integer(spec, value, &n) < 0)
            return -1;
        if (field && spec->field_is_size_t)
            *(size_t *)field = (size_t)n;
        else if (field)
            *(uint64_t *)field = n;
        return 0;
    case OPT_SECONDS:
    case OPT_RATE:
        if (parse_real(spec, value, &x) < 0)
            return -1;
        if (field)
            *(double *)field = x;
        return 0;
    case OPT_BOOL: {
        int truth = PyObject_IsTrue(value);
        if (truth < 0)
            return -1;
        if (field)
            *(int *)field = truth;
        return 0;
    }
    case OPT_CALLABLE:
        if (value != Py_None && !PyCallable_Check(value)) {
            PyErr_Format(PyExc_TypeError, "must be callable or None, not %.100s", Py_TYPE(value)->tp_name);
            return -1;
        }
        break;
    case OPT_STR:
    case OPT_NETWORKS:
    case OPT_PREFIX:
        if (!PyUnicode_Check(value)) {
            PyErr_Format(PyExc_TypeError, "must be a str, not %.100s", Py_TYPE(value)->tp_name);
            return -1;
        }
        if (spec->kind != OPT_STR && check_text(spec, value) < 0)
            return -1;
        break;
    case OPT_OBJECT:
        break;
    case OPT_BUFFER:
        if (value != Py_None && check_buffer(value) < 0)
            return -1;
        break;
    }
    /* The object kinds: None leaves the default. */
    if (field && value != Py_None) {
        Py_INCREF(value);
        Py_XSETREF(*(PyObject **)field, value);
    }
    return 0;
}

static const option_spec *find_spec(PyObject *name)
{
    const char *text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (text == NULL) {
        PyErr_Clear();
        return NULL;
    }
    for (size_t i = 0; i < SPEC_COUNT; i++)
        if (strcmp(specs[i].name, text) == 0)
            return &specs[i];
    return NULL;
}

static void prefix_error(const char *prefix, PyObject *name)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    if (text != NULL)
        PyErr_Format(type, "%s %U %U", prefix, name, text);
    else
        PyErr_Restore(type, value, traceback), type = value = traceback = NULL;
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

PyObject *options_check(PyObject *name, PyObject *value)
{
    const option_spec *spec = find_spec(name);
    if (spec == NULL) {
        PyErr_Format(PyExc_KeyError, "unknown server option %R", name);
        return NULL;
    }
    if (parse_one(NULL, spec, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

int options_parse(server_options *opts, PyObject *kwargs)
{
    *opts = defaults;
    /* The str options start as new references to their defaults. */
    for (size_t i = 0; i < SPEC_COUNT; i++) {
        const option_spec *spec = &specs[i];
        if (spec->text == NULL)
            continue;
        PyObject **field = (PyObject **)((char *)opts + spec->offset);
        *field = PyUnicode_FromString(spec->text);
        if (*field == NULL)
            goto error;
    }
    if (kwargs == NULL)
        return 0;
    PyObject *name, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &name, &value)) {
        const option_spec *spec = find_spec(name);
        if (spec == NULL) {
            PyErr_Format(PyExc_TypeError, "unknown server option %R (see ursa.OPTIONS)", name);
            goto error;
        }
        if (parse_one(opts, spec, value) < 0) {
            prefix_error("option", name);
            goto error;
        }
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
    Py_CLEAR(opts->forwarded_allow_ips);
    Py_CLEAR(opts->script_name);
    Py_CLEAR(opts->heartbeat);
    Py_CLEAR(opts->wsgi_errors);
}
