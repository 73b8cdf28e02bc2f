#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "wsgi/write.h"

#include "wsgi/call.h"

/* write(data): queue `data` and send what the socket takes now. The rest
 * goes once the app has returned, from memory up to body_buffer_size and
 * from a temporary file past it: waiting here would hold the loop, and
 * every other connection, for one slow client. 0, or -1 with an
 * exception. */
static int wsgi_write(exchange *x, PyObject *data)
{
    wsgi_call *call = wsgi_call_of(x);
    if (!call->headers_set) {
        PyErr_SetString(PyExc_RuntimeError, "write() called before start_response()");
        return -1;
    }
    if (x->failed) {
        PyErr_SetString(PyExc_OSError, "write(): the client has gone away");
        return -1;
    }
    PyObject *bytes = wsgi_body_bytes(data);
    if (bytes == NULL)
        return -1;
    int queued = (x->head_sent || wsgi_send_head(x, -1) == 0) &&
                 exchange_send_body(x, bytes, PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes)) == 0;
    Py_DECREF(bytes);
    if (!queued)
        return -1;
    size_t budget = SIZE_MAX;
    if (exchange_flush(x, &budget) == CONN_ABORT) {
        x->failed = 1;
        PyErr_SetString(PyExc_OSError, "write(): the client has gone away");
        return -1;
    }
    return exchange_bound_memory(x);
}

static PyObject *write_call(WriteObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *data;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:write", (char *[]){"data", NULL}, &data))
        return NULL;
    if (self->exchange == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after its response ended");
        return NULL;
    }
    if (wsgi_write(self->exchange, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

WriteObject *write_new(module_state *state, exchange *x)
{
    WriteObject *self = PyObject_New(WriteObject, state->write_type);
    if (self == NULL)
        return NULL;
    self->exchange = x;
    return self;
}

static void write_dealloc(WriteObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyType_Slot write_slots[] = {
    {Py_tp_new, refuse_instantiation},
    {Py_tp_dealloc, write_dealloc},
    {Py_tp_call, write_call},
    {Py_tp_doc, "write(data): send body bytes (PEP 3333's legacy imperative API)"},
    {0, NULL},
};

static PyType_Spec write_spec = {
    .name = "ursa._core.Write",
    .basicsize = sizeof(WriteObject),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = write_slots,
};

PyType_Spec *write_type_spec(void)
{
    return &write_spec;
}
