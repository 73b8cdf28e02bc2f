/* wsgi.file_wrapper: wraps a file-like for the response. Iterating reads
 * blocks; the response path sends regular files with sendfile(2). */
#ifndef URSA_FILEWRAPPER_H
#define URSA_FILEWRAPPER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/state.h"

typedef struct {
    PyObject_HEAD
    PyObject *filelike;
    Py_ssize_t block_size;
} FileWrapperObject;

PyType_Spec *file_wrapper_type_spec(void);

/* If `wrapper` holds a regular file whose fileno() and tell() work, set
 * its fd, current offset and the bytes left, and return 1. Return 0 when
 * it must be iterated instead, -1 with an exception on a real error. */
int file_wrapper_sendfile_source(module_state *state, PyObject *wrapper, int *fd, off_t *offset,
                                 uint64_t *remaining);

#endif
