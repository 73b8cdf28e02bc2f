#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/start_response.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

#include "http/fields.h"
#include "http/head.h"
#include "wsgi/call.h"
#include "wsgi/write.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* the app calls it once per request: no arg tuple */
    exchange *exchange;        /* NULL once the response has ended */
    WriteObject *write;        /* made on the first call, kept with the object */
} StartResponseObject;

/* ---- checking what the app gives ---- */

/* The latin-1 bytes of a str, or NULL with ValueError. */
static const char *latin1_of(PyObject *text, Py_ssize_t *length, const char *what)
{
    if (PyUnicode_READY(text) < 0)
        return NULL;
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError, "%s must be latin-1 encodable: %R", what, text);
        return NULL;
    }
    *length = PyUnicode_GET_LENGTH(text);
    return (const char *)PyUnicode_1BYTE_DATA(text);
}

static const char *check_status(PyObject *status, Py_ssize_t *length, int *code)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "start_response: status must be a str like '200 OK', not %.100s",
                     Py_TYPE(status)->tp_name);
        return NULL;
    }
    Py_ssize_t n;
    const char *s = latin1_of(status, &n, "start_response: status");
    if (s == NULL)
        return NULL;
    if (n < 5 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        s[3] != ' ') {
        PyErr_Format(PyExc_ValueError,
                     "start_response: status must be three digits, a space and a reason, like '200 OK': %R",
                     status);
        return NULL;
    }
    for (Py_ssize_t i = 4; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            PyErr_Format(PyExc_ValueError, "start_response: status contains a control character: %R", status);
            return NULL;
        }
    }
    *code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    *length = n;
    return s;
}

static const char *check_header_text(PyObject *name, PyObject *text, Py_ssize_t *length, const char *what)
{
    if (!PyUnicode_Check(text)) {
        if (text == name)
            PyErr_Format(PyExc_TypeError, "start_response: header name must be a str, not %.100s",
                         Py_TYPE(text)->tp_name);
        else
            PyErr_Format(PyExc_TypeError, "start_response: value of header %R must be a str, not %.100s", name,
                         Py_TYPE(text)->tp_name);
        return NULL;
    }
    return latin1_of(text, length, what);
}

/* Check one (name, value) and add it to the head (http/fields.c). */
static int add_header(response_head *r, buffer *head, PyObject *item, Py_ssize_t index)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_Format(PyExc_TypeError, "start_response: header %zd must be a (name, value) tuple, not %R", index,
                     item);
        return -1;
    }
    PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
    Py_ssize_t name_length, value_length;
    const char *n = check_header_text(name, name, &name_length, "start_response: header name");
    const char *v = n ? check_header_text(name, value, &value_length, "start_response: header value") : NULL;
    if (v == NULL)
        return -1;
    unsigned char bad_byte = 0;
    field_check check = response_field_add(r, head, n, (size_t)name_length, v, (size_t)value_length, &bad_byte);
    switch (check) {
    case FIELD_OK:
        return 0;
    case FIELD_NO_MEMORY:
        return -1;
    case FIELD_NAME_CHARACTER:
    case FIELD_VALUE_BREAK:
    case FIELD_VALUE_CONTROL:
        PyErr_Format(PyExc_ValueError, "start_response: header %R %s (0x%02x): %R", name, field_check_text(check),
                     bad_byte, value);
        return -1;
    default:
        PyErr_Format(PyExc_ValueError, "start_response: header %R %s: %R", name, field_check_text(check), value);
        return -1;
    }
}

/* Check the status and headers and write the head so far: status line and
 * the app's headers (the response path adds its own and the blank line). */
static int set_head(response_head *r, buffer *head, PyObject *status, PyObject *headers)
{
    int code;
    Py_ssize_t status_length;
    const char *status_text = check_status(status, &status_length, &code);
    if (status_text == NULL)
        return -1;
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError,
                     "start_response: headers must be a list of (name, value) tuples, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    /* WSGI has no interim responses: a 1xx would be taken for the final
     * answer by ursa and for an interim one by the client. */
    if (code < 200) {
        PyErr_Format(PyExc_ValueError,
                     "start_response: %R is an interim (1xx) status; a WSGI app can only give a final one",
                     status);
        return -1;
    }
    response_head_init(r, code);
    if (head_begin(head, status_text, (size_t)status_length) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++)
        if (add_header(r, head, PyList_GET_ITEM(headers, i), i) < 0)
            return -1;
    return 0;
}

/* ---- start_response ---- */

static int reraise_exc_info(PyObject *exc_info)
{
    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError, "start_response: exc_info must be a (type, value, traceback) tuple");
        return -1;
    }
    PyObject *type = PyTuple_GET_ITEM(exc_info, 0), *value = PyTuple_GET_ITEM(exc_info, 1),
             *traceback = PyTuple_GET_ITEM(exc_info, 2);
    Py_INCREF(type);
    Py_INCREF(value);
    Py_INCREF(traceback);
    PyErr_Restore(type, value, traceback == Py_None ? (Py_DECREF(traceback), NULL) : traceback);
    return -1;
}

static WriteObject *write_of(StartResponseObject *self)
{
    if (self->write == NULL) {
        self->write = write_new(exchange_server(self->exchange)->state, self->exchange);
        if (self->write == NULL)
            return NULL;
    }
    Py_INCREF(self->write);
    return self->write;
}

static PyObject *start_response_impl(StartResponseObject *self, PyObject *status, PyObject *headers,
                                     PyObject *exc_info)
{
    if (self->exchange == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after its response ended");
        return NULL;
    }
    exchange *x = self->exchange;
    wsgi_call *call = wsgi_call_of(x);
    if (exc_info != Py_None) {
        if (x->head_sent)
            return reraise_exc_info(exc_info), NULL;
    } else if (call->headers_set) {
        PyErr_SetString(PyExc_RuntimeError,
                        "start_response() called a second time without exc_info (PEP 3333 allows that only "
                        "to replace the headers of an error)");
        return NULL;
    }
    if (set_head(&call->response, exchange_head(x), status, headers) < 0) {
        call->headers_set = 0;
        return NULL;
    }
    call->headers_set = 1;
    return (PyObject *)write_of(self);
}

static PyObject *start_response_call(StartResponseObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", keywords, &status, &headers, &exc_info))
        return NULL;
    return start_response_impl(self, status, headers, exc_info);
}

static PyObject *start_response_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    StartResponseObject *self = (StartResponseObject *)callable;
    if (kwnames == NULL && (nargs == 2 || nargs == 3))
        return start_response_impl(self, args[0], args[1], nargs == 3 ? args[2] : Py_None);
    /* Keywords or a wrong count: the general path says what is wrong. */
    PyObject *tuple = PyTuple_New(nargs);
    PyObject *kwargs = kwnames ? PyDict_New() : NULL;
    PyObject *result = NULL;
    if (tuple == NULL || (kwnames && kwargs == NULL))
        goto cleanup;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++)
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            goto cleanup;
    result = start_response_call(self, tuple, kwargs);
cleanup:
    Py_XDECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

/* ---- one pair per request, reused when nobody else holds it ---- */

static void bind_to(StartResponseObject *sr, exchange *x)
{
    sr->exchange = x;
    if (sr->write != NULL)
        write_bind(sr->write, x);
}

PyObject *start_response_attach(exchange *x)
{
    server *s = exchange_server(x);
    wsgi_server *w = wsgi_server_of(s);
    StartResponseObject *sr = (StartResponseObject *)w->spare_start_response;
    w->spare_start_response = NULL;
    if (sr == NULL) {
        sr = PyObject_New(StartResponseObject, s->state->start_response_type);
        if (sr == NULL)
            return NULL;
        sr->vectorcall = start_response_vectorcall;
        sr->write = NULL;
    }
    bind_to(sr, x);
    return (PyObject *)sr;
}

void start_response_detach(server *s, PyObject *start_response)
{
    wsgi_server *w = wsgi_server_of(s);
    StartResponseObject *sr = (StartResponseObject *)start_response;
    bind_to(sr, NULL);
    /* An app that kept either callable sees them stay detached; otherwise
     * the next request can have them without two allocations. */
    int unshared = Py_REFCNT(sr) == 1 && (sr->write == NULL || Py_REFCNT(sr->write) == 1);
    if (unshared && w->spare_start_response == NULL)
        w->spare_start_response = start_response;
    else
        Py_DECREF(start_response);
}

static void start_response_dealloc(StartResponseObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(self->write);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyMemberDef start_response_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(StartResponseObject, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot start_response_slots[] = {
    {Py_tp_members, start_response_members},
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, start_response_dealloc},
    {Py_tp_call, start_response_call},
    {Py_tp_doc, "start_response(status, headers, exc_info=None) -> write"},
    {0, NULL},
};

static PyType_Spec start_response_spec = {
    .name = "ursa._core.StartResponse",
    .basicsize = sizeof(StartResponseObject),
    .flags = Py_TPFLAGS_DEFAULT | URSA_TPFLAGS_HEAPTYPE_VECTORCALL,
    .slots = start_response_slots,
};

PyType_Spec *start_response_type_spec(void)
{
    return &start_response_spec;
}
