#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"

/* Bytes scanned per pread while looking for a line end in a spilled body. */
#define LINE_SCAN_BLOCK 8192

typedef struct {
    PyObject_HEAD
    char *memory; /* the body, when it stayed in memory */
    size_t memory_capacity;
    int file;     /* the spilled body's anonymous file, or -1 */
    uint64_t size;
    uint64_t position;
} InputObject;

PyObject *input_new(module_state *state, body *b)
{
    InputObject *self = PyObject_New(InputObject, state->input_type);
    if (self == NULL)
        return NULL;
    self->memory = b->memory;
    self->memory_capacity = b->memory_capacity;
    self->file = b->file;
    self->size = b->size;
    self->position = 0;
    body_init(b); /* moved */
    return (PyObject *)self;
}

static uint64_t remaining(const InputObject *self)
{
    return self->size - self->position;
}

/* Copy `n` bytes at the current position to `out`. Returns 0, or -1 with
 * OSError. */
static int copy_out(InputObject *self, char *out, size_t n, uint64_t at)
{
    if (n == 0)
        return 0;
    if (self->file < 0) {
        memcpy(out, self->memory + at, n);
        return 0;
    }
    while (n > 0) {
        ssize_t got = pread(self->file, out, n, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            PyErr_SetString(PyExc_OSError, "wsgi.input: the spilled request body could not be read back");
            return -1;
        }
        out += got;
        at += (uint64_t)got;
        n -= (size_t)got;
    }
    return 0;
}

static PyObject *take(InputObject *self, uint64_t n)
{
    if (n > PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (bytes == NULL)
        return NULL;
    if (copy_out(self, PyBytes_AS_STRING(bytes), (size_t)n, self->position) < 0) {
        Py_DECREF(bytes);
        return NULL;
    }
    self->position += n;
    return bytes;
}

/* A size argument: None or a negative number mean "all". */
static int size_arg(PyObject *const *args, Py_ssize_t nargs, const char *method, int64_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "wsgi.input.%s() takes at most 1 argument (%zd given)", method, nargs);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    long long n = PyLong_AsLongLong(args[0]);
    if (n == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "wsgi.input.%s() argument must be an int or None, not %.100s", method,
                         Py_TYPE(args[0])->tp_name);
        }
        return -1;
    }
    *size = n;
    return 0;
}

static PyObject *input_read(InputObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t size;
    if (size_arg(args, nargs, "read", &size) < 0)
        return NULL;
    uint64_t n = remaining(self);
    if (size >= 0 && (uint64_t)size < n)
        n = (uint64_t)size;
    return take(self, n);
}

/* How many bytes the next line takes, its "\n" included, at most `limit`. */
static int line_length(InputObject *self, uint64_t limit, uint64_t *length)
{
    if (limit == 0) {
        *length = 0;
        return 0;
    }
    if (self->file < 0) {
        const char *start = self->memory + self->position;
        const char *newline = memchr(start, '\n', (size_t)limit);
        *length = newline ? (uint64_t)(newline - start) + 1 : limit;
        return 0;
    }
    char block[LINE_SCAN_BLOCK];
    uint64_t scanned = 0;
    while (scanned < limit) {
        size_t n = limit - scanned < sizeof block ? (size_t)(limit - scanned) : sizeof block;
        if (copy_out(self, block, n, self->position + scanned) < 0)
            return -1;
        const char *newline = memchr(block, '\n', n);
        if (newline != NULL) {
            *length = scanned + (uint64_t)(newline - block) + 1;
            return 0;
        }
        scanned += n;
    }
    *length = limit;
    return 0;
}

static PyObject *readline_limited(InputObject *self, int64_t size)
{
    uint64_t limit = remaining(self);
    if (size >= 0 && (uint64_t)size < limit)
        limit = (uint64_t)size;
    uint64_t length;
    if (line_length(self, limit, &length) < 0)
        return NULL;
    return take(self, length);
}

static PyObject *input_readline(InputObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t size;
    if (size_arg(args, nargs, "readline", &size) < 0)
        return NULL;
    return readline_limited(self, size);
}

static PyObject *input_readlines(InputObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t hint;
    if (size_arg(args, nargs, "readlines", &hint) < 0)
        return NULL;
    PyObject *lines = PyList_New(0);
    if (lines == NULL)
        return NULL;
    uint64_t total = 0;
    while (remaining(self) > 0) {
        PyObject *line = readline_limited(self, -1);
        if (line == NULL || PyList_Append(lines, line) < 0) {
            Py_XDECREF(line);
            Py_DECREF(lines);
            return NULL;
        }
        total += (uint64_t)PyBytes_GET_SIZE(line);
        Py_DECREF(line);
        if (hint > 0 && total >= (uint64_t)hint)
            break;
    }
    return lines;
}

static PyObject *input_iternext(InputObject *self)
{
    if (remaining(self) == 0)
        return NULL; /* StopIteration */
    return readline_limited(self, -1);
}

/* The body is whole before the app runs, so it can be read again: Zope
 * retries a request after a database conflict by seeking back to 0, and
 * bjoern's BytesIO allowed it. */
static PyObject *input_seek(InputObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "wsgi.input.seek() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    long long offset = PyLong_AsLongLong(args[0]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    int whence = 0;
    if (nargs == 2) {
        whence = PyLong_AsLong(args[1]);
        if (whence == -1 && PyErr_Occurred())
            return NULL;
    }
    long long base;
    switch (whence) {
    case 0: base = 0; break;
    case 1: base = (long long)self->position; break;
    case 2: base = (long long)self->size; break;
    default:
        PyErr_Format(PyExc_ValueError, "wsgi.input.seek(): whence must be 0, 1 or 2, not %d", whence);
        return NULL;
    }
    long long target = base + offset;
    if ((offset > 0 && target < base) || target < 0) {
        PyErr_Format(PyExc_ValueError, "wsgi.input.seek(): negative position %lld", target);
        return NULL;
    }
    /* A position past the end is the end: the bodiless requests share
     * one empty wsgi.input, whose position must stay 0. */
    self->position = (uint64_t)target < self->size ? (uint64_t)target : self->size;
    return PyLong_FromUnsignedLongLong((unsigned long long)self->position);
}

static PyObject *input_tell(InputObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong((unsigned long long)self->position);
}

static PyObject *input_true(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_TRUE;
}

static void input_dealloc(InputObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    mem_free(self->memory, self->memory_capacity);
    if (self->file >= 0)
        close(self->file);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, "read(size=-1) -> bytes"},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL, "readline(size=-1) -> bytes"},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL, "readlines(hint=-1) -> list"},
    {"seek", (PyCFunction)(void (*)(void))input_seek, METH_FASTCALL, "seek(offset, whence=0) -> position"},
    {"tell", (PyCFunction)input_tell, METH_NOARGS, "tell() -> position"},
    {"seekable", input_true, METH_NOARGS, "seekable() -> True: the body is whole and can be read again"},
    {"readable", input_true, METH_NOARGS, "readable() -> True"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot input_slots[] = {
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, input_dealloc},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, input_iternext},
    {Py_tp_methods, input_methods},
    {Py_tp_doc, "wsgi.input: the request body, complete before the app is called."},
    {0, NULL},
};

static PyType_Spec input_spec = {
    .name = "ursa._core.Input",
    .basicsize = sizeof(InputObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = input_slots,
};

PyType_Spec *input_type_spec(void)
{
    return &input_spec;
}
