#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/filewrapper.h"

#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_BLOCK_SIZE 8192

static PyObject *file_wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t block_size = DEFAULT_BLOCK_SIZE;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", keywords, &filelike, &block_size))
        return NULL;
    if (block_size <= 0) {
        PyErr_Format(PyExc_ValueError, "file_wrapper: blksize must be positive, got %zd", block_size);
        return NULL;
    }
    FileWrapperObject *self = (FileWrapperObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(filelike);
    self->filelike = filelike;
    self->block_size = block_size;
    return (PyObject *)self;
}

static PyObject *file_wrapper_iternext(FileWrapperObject *self)
{
    PyObject *block = PyObject_CallMethod(self->filelike, "read", "n", self->block_size);
    if (block == NULL)
        return NULL;
    Py_ssize_t length = PyObject_Length(block);
    if (length <= 0) {
        Py_DECREF(block);
        return NULL; /* StopIteration at the end, or the error */
    }
    return block;
}

static PyObject *file_wrapper_close(FileWrapperObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *close = PyObject_GetAttrString(self->filelike, "close");
    if (close == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *result = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return result;
}

static int file_wrapper_traverse(FileWrapperObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->filelike);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int file_wrapper_clear(FileWrapperObject *self)
{
    Py_CLEAR(self->filelike);
    return 0;
}

static void file_wrapper_dealloc(FileWrapperObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    file_wrapper_clear(self);
    type->tp_free(self);
    Py_DECREF(type);
}

/* Ask the file-like for a number; NULL-free 0 when it has no such method
 * or says it is unsupported (io.UnsupportedOperation). */
static int call_for_number(PyObject *filelike, PyObject *method, long long *out)
{
    PyObject *value = PyObject_CallMethodNoArgs(filelike, method);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError) || PyErr_ExceptionMatches(PyExc_OSError) ||
            PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    *out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

int file_wrapper_sendfile_source(module_state *state, PyObject *wrapper, int *fd, off_t *offset,
                                 uint64_t *remaining)
{
    PyObject *filelike = ((FileWrapperObject *)wrapper)->filelike;
    long long fileno, position;
    int found = call_for_number(filelike, state->str_fileno, &fileno);
    if (found <= 0)
        return found;
    struct stat st;
    if (fileno < 0 || fileno > INT32_MAX || fstat((int)fileno, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    /* tell() counts what a buffered reader has already consumed. */
    found = call_for_number(filelike, state->str_tell, &position);
    if (found < 0)
        return -1;
    if (found == 0)
        position = lseek((int)fileno, 0, SEEK_CUR);
    if (position < 0)
        return 0;
    *fd = (int)fileno;
    *offset = (off_t)position;
    *remaining = st.st_size > position ? (uint64_t)(st.st_size - position) : 0;
    return 1;
}

static PyMethodDef file_wrapper_methods[] = {
    {"close", (PyCFunction)file_wrapper_close, METH_NOARGS, "close() the wrapped file-like."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot file_wrapper_slots[] = {
    {Py_tp_new, file_wrapper_new},
    {Py_tp_dealloc, file_wrapper_dealloc},
    {Py_tp_traverse, file_wrapper_traverse},
    {Py_tp_clear, file_wrapper_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, file_wrapper_iternext},
    {Py_tp_methods, file_wrapper_methods},
    {Py_tp_doc, "wsgi.file_wrapper(filelike, blksize=8192): a response body read from a file."},
    {0, NULL},
};

static PyType_Spec file_wrapper_spec = {
    .name = "ursa._core.FileWrapper",
    .basicsize = sizeof(FileWrapperObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = file_wrapper_slots,
};

PyType_Spec *file_wrapper_type_spec(void)
{
    return &file_wrapper_spec;
}
