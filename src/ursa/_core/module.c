/* ursa._core: module init, above every layer. It makes the module state
 * and puts the layers together: serve() runs the transport's server with
 * the HTTP protocol over the WSGI or the ASGI interface. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <string.h>

#include "asgi/asgi.h"
#include "asgi/call.h"
#include "asgi/ready.h"
#include "asgi/register.h"
#include "asgi/task.h"
#include "common/options.h"
#include "common/state.h"
#include "http/exchange.h"
#include "http/probe.h"
#include "transport/door.h"
#include "transport/serve.h"
#include "wsgi/environ.h"
#include "wsgi/filewrapper.h"
#include "wsgi/input.h"
#include "wsgi/start_response.h"
#include "wsgi/wsgi.h"
#include "wsgi/write.h"

static module_state *state_of(PyObject *module)
{
    return (module_state *)PyModule_GetState(module);
}

static int listen_fds_of(PyObject *sequence, int **fds, size_t *count)
{
    PyObject *fast = PySequence_Fast(sequence, "serve(): listen_fds must be a list of file descriptors");
    if (fast == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "serve(): needs at least one listening socket");
        goto error;
    }
    *fds = PyMem_Calloc((size_t)n, sizeof **fds);
    if (*fds == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (fd == -1 && PyErr_Occurred())
            goto error;
        if (fd < 0 || fd > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "serve(): %ld is not a file descriptor", fd);
            goto error;
        }
        (*fds)[i] = (int)fd;
    }
    *count = (size_t)n;
    Py_DECREF(fast);
    return 0;
error:
    PyMem_Free(*fds);
    *fds = NULL;
    Py_DECREF(fast);
    return -1;
}

PyDoc_STRVAR(serve_doc, "serve(listen_fds, app, signal_fd, interface='wsgi', lifespan=None, **options)\n\n"
                        "Serve `app` on the listening sockets `listen_fds` until stopped: a WSGI app,\n"
                        "or with interface='asgi' an ASGI 3 app, whose lifespan object (startup(loop),\n"
                        "shutdown(loop)) runs around the serving. `signal_fd` is the read end of\n"
                        "Python's signal wake-up fd, or -1.");

/* The keyword arguments that are not server options, taken out of a copy
 * of `kwargs` (returned, a new reference). */
static PyObject *take_interface_arguments(PyObject *kwargs, int *asgi, PyObject **lifespan)
{
    *asgi = 0;
    *lifespan = NULL;
    PyObject *options = kwargs ? PyDict_Copy(kwargs) : PyDict_New();
    if (options == NULL)
        return NULL;
    PyObject *interface = PyDict_GetItemString(options, "interface");
    if (interface != NULL) {
        if (!PyUnicode_Check(interface) ||
            (PyUnicode_CompareWithASCIIString(interface, "wsgi") != 0 &&
             PyUnicode_CompareWithASCIIString(interface, "asgi") != 0)) {
            PyErr_Format(PyExc_ValueError, "serve(): interface must be 'wsgi' or 'asgi', not %R", interface);
            goto error;
        }
        *asgi = PyUnicode_CompareWithASCIIString(interface, "asgi") == 0;
        if (PyDict_DelItemString(options, "interface") < 0)
            goto error;
    }
    PyObject *given = PyDict_GetItemString(options, "lifespan");
    if (given != NULL) {
        if (given != Py_None) {
            Py_INCREF(given);
            *lifespan = given;
        }
        if (PyDict_DelItemString(options, "lifespan") < 0)
            goto error;
    }
    return options;
error:
    Py_CLEAR(*lifespan);
    Py_DECREF(options);
    return NULL;
}

static PyObject *ursa_serve(PyObject *module, PyObject *args, PyObject *kwargs)
{
    module_state *state = state_of(module);
    PyObject *fd_list, *app;
    int signal_fd;
    if (!PyArg_ParseTuple(args, "OOi:serve", &fd_list, &app, &signal_fd))
        return NULL;
    if (!PyCallable_Check(app)) {
        PyErr_Format(PyExc_TypeError, "the application must be callable, not %.100s", Py_TYPE(app)->tp_name);
        return NULL;
    }
    if (state->running != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a server is already running in this process: stop it first");
        return NULL;
    }
    int asgi;
    PyObject *lifespan;
    PyObject *options = take_interface_arguments(kwargs, &asgi, &lifespan);
    if (options == NULL)
        return NULL;
    int *fds = NULL;
    size_t fd_count = 0;
    server_options opts;
    int result = -1;
    if (listen_fds_of(fd_list, &fds, &fd_count) < 0)
        goto done;
    if (options_parse(&opts, options) < 0)
        goto done;
    wsgi_server wsgi;
    asgi_server asgi_state;
    memset(&asgi_state, 0, sizeof asgi_state);
    asgi_state.lifespan = lifespan;
    http_server http = {.iface = &wsgi_interface, .iface_state = &wsgi};
    if (asgi) {
        http.iface = &asgi_interface;
        http.iface_state = &asgi_state;
    }
    result = server_serve(state, app, fds, fd_count, signal_fd, &opts, &http_protocol, &http);
    options_clear(&opts);
done:
    PyMem_Free(fds);
    Py_XDECREF(lifespan);
    Py_DECREF(options);
    if (result < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(stop_doc, "stop()\n\nAsk the running server to stop gracefully. Returns whether one was running.");

static PyObject *ursa_stop(PyObject *module, PyObject *unused)
{
    (void)unused;
    module_state *state = state_of(module);
    if (state->running == NULL)
        Py_RETURN_FALSE;
    server_begin_stop(state->running);
    Py_RETURN_TRUE;
}

PyDoc_STRVAR(check_option_doc, "check_option(name, value)\n\n"
                               "Check `value` against the rules of server option `name` (see OPTION_SPECS).\n"
                               "Returns None, or raises TypeError/ValueError saying what it must be, or\n"
                               "KeyError for an unknown option.");

static PyObject *ursa_check_option(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "check_option() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return options_check(args[0], args[1]);
}

static int fd_argument(PyObject *arg, int *fd)
{
    *fd = PyObject_AsFileDescriptor(arg);
    return *fd < 0 ? -1 : 0;
}

PyDoc_STRVAR(close_door_doc, "close_door(sock_or_fd) -> bool\n\n"
                             "New TCP connections to this listening socket are dropped at the SYN, while\n"
                             "those already queued can still be accepted. False for a socket that has no\n"
                             "such door (a unix socket).");

static PyObject *ursa_close_door(PyObject *module, PyObject *arg)
{
    (void)module;
    int fd;
    if (fd_argument(arg, &fd) < 0)
        return NULL;
    int closed = door_close(fd);
    if (closed < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyBool_FromLong(closed);
}

PyDoc_STRVAR(open_door_doc, "open_door(sock_or_fd)\n\nUndo close_door().");

static PyObject *ursa_open_door(PyObject *module, PyObject *arg)
{
    (void)module;
    int fd;
    if (fd_argument(arg, &fd) < 0)
        return NULL;
    if (door_open(fd) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(parse_requests_doc, "_parse_requests(data, cuts=(), **options) -> list\n\n"
                                 "For tests: parse `data` as a client's bytes, read in pieces cut at the\n"
                                 "offsets `cuts`, the way a connection does, with the server options given.\n"
                                 "One dict per request or refusal (see http/probe.h).");

static PyObject *ursa_parse_requests(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    Py_buffer data;
    PyObject *cut_list = NULL;
    if (!PyArg_ParseTuple(args, "y*|O:_parse_requests", &data, &cut_list))
        return NULL;
    PyObject *result = NULL;
    size_t *cuts = NULL;
    server_options opts;
    int opts_made = 0;
    PyObject *fast = cut_list ? PySequence_Fast(cut_list, "_parse_requests: cuts must be a sequence") : NULL;
    if (cut_list != NULL && fast == NULL)
        goto cleanup;
    Py_ssize_t cut_count = fast ? PySequence_Fast_GET_SIZE(fast) : 0;
    cuts = PyMem_Calloc((size_t)cut_count + 1, sizeof *cuts);
    if (cuts == NULL) {
        PyErr_NoMemory();
        goto cleanup;
    }
    for (Py_ssize_t i = 0; i < cut_count; i++) {
        cuts[i] = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(fast, i));
        if (cuts[i] == (size_t)-1 && PyErr_Occurred())
            goto cleanup;
    }
    if (options_parse(&opts, kwargs) < 0)
        goto cleanup;
    opts_made = 1;
    result = http_probe(&opts, data.buf, (size_t)data.len, cuts, (size_t)cut_count);
cleanup:
    if (opts_made)
        options_clear(&opts);
    PyMem_Free(cuts);
    Py_XDECREF(fast);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef module_methods[] = {
    {"_parse_requests", (PyCFunction)(void (*)(void))ursa_parse_requests, METH_VARARGS | METH_KEYWORDS,
     parse_requests_doc},
    {"serve", (PyCFunction)(void (*)(void))ursa_serve, METH_VARARGS | METH_KEYWORDS, serve_doc},
    {"stop", ursa_stop, METH_NOARGS, stop_doc},
    {"check_option", (PyCFunction)(void (*)(void))ursa_check_option, METH_FASTCALL, check_option_doc},
    {"close_door", ursa_close_door, METH_O, close_door_doc},
    {"open_door", ursa_open_door, METH_O, open_door_doc},
    {NULL, NULL, 0, NULL},
};

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *state = state_of(module);
    if (state == NULL)
        return 0;
    Py_VISIT(state->start_response_type);
    Py_VISIT(state->write_type);
    Py_VISIT(state->input_type);
    Py_VISIT(state->file_wrapper_type);
    Py_VISIT(state->asgi_send_type);
    Py_VISIT(state->asgi_receive_type);
    Py_VISIT(state->ready_type);
    Py_VISIT(state->ready_none);
    Py_VISIT(state->client_disconnected);
    Py_VISIT(state->empty_input);
    Py_VISIT(state->error_logger);
    int visited = request_task_kit_traverse(state, visit, arg);
    if (visited != 0)
        return visited;
    return event_loop_types_traverse(state, visit, arg);
}

static int module_clear(PyObject *module)
{
    module_state *state = state_of(module);
    if (state == NULL)
        return 0;
    Py_CLEAR(state->empty_input);
    Py_CLEAR(state->start_response_type);
    Py_CLEAR(state->write_type);
    Py_CLEAR(state->input_type);
    Py_CLEAR(state->file_wrapper_type);
    Py_CLEAR(state->ready_none);
    Py_CLEAR(state->asgi_send_type);
    Py_CLEAR(state->asgi_receive_type);
    Py_CLEAR(state->ready_type);
    Py_CLEAR(state->client_disconnected);
    Py_CLEAR(state->wsgi_version);
    Py_CLEAR(state->error_logger);
    request_task_kit_clear(state);
    event_loop_types_clear(state);
    for (int i = 0; i < URSA_METHOD_NAMES; i++)
        Py_CLEAR(state->method_names[i]);
    for (int i = 0; i < URSA_COMMON_HEADERS; i++)
        Py_CLEAR(state->header_keys[i]);
#define URSA_CLEAR_STR(field, text) Py_CLEAR(state->str_##field);
    URSA_INTERNED_STRINGS(URSA_CLEAR_STR)
#undef URSA_CLEAR_STR
    return 0;
}

static void module_free(void *module)
{
    module_clear((PyObject *)module);
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ursa._core",
    .m_doc = "The C core of ursa: the event loop, HTTP/1.x, WSGI and ASGI.",
    .m_size = sizeof(module_state),
    .m_methods = module_methods,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

static int init_state(PyObject *module, module_state *state)
{
#define URSA_INTERN_STR(field, text)                                                                          \
    if ((state->str_##field = PyUnicode_InternFromString(text)) == NULL)                                       \
        return -1;
    URSA_INTERNED_STRINGS(URSA_INTERN_STR)
#undef URSA_INTERN_STR
    state->start_response_type = (PyTypeObject *)PyType_FromSpec(start_response_type_spec());
    state->write_type = (PyTypeObject *)PyType_FromSpec(write_type_spec());
    state->input_type = (PyTypeObject *)PyType_FromSpec(input_type_spec());
    state->file_wrapper_type = (PyTypeObject *)PyType_FromSpec(file_wrapper_type_spec());
    state->asgi_send_type = (PyTypeObject *)PyType_FromSpec(asgi_send_type_spec());
    state->asgi_receive_type = (PyTypeObject *)PyType_FromSpec(asgi_receive_type_spec());
    state->ready_type = (PyTypeObject *)PyType_FromSpec(ready_type_spec());
    state->wsgi_version = Py_BuildValue("(ii)", 1, 0);
    if (state->start_response_type == NULL || state->write_type == NULL || state->input_type == NULL ||
        state->file_wrapper_type == NULL || state->asgi_send_type == NULL || state->asgi_receive_type == NULL ||
        state->ready_type == NULL || state->wsgi_version == NULL)
        return -1;
    state->ready_none = ready_new(state, Py_None);
    /* What send() raises once the client is gone (ASGI: an OSError). */
    state->client_disconnected = PyErr_NewExceptionWithDoc(
        "ursa.ClientDisconnected", "The client disconnected before the response was sent.", PyExc_OSError, NULL);
    if (state->ready_none == NULL || state->client_disconnected == NULL)
        return -1;
    Py_INCREF(state->client_disconnected);
    if (PyModule_AddObject(module, "ClientDisconnected", state->client_disconnected) < 0) {
        Py_DECREF(state->client_disconnected);
        return -1;
    }
    body empty;
    body_init(&empty);
    state->empty_input = input_new(state, &empty);
    if (state->empty_input == NULL || environ_init_state(state) < 0 || event_loop_types_init(module, state) < 0)
        return -1;
    PyObject *defaults = options_defaults();
    if (defaults == NULL || PyModule_AddObject(module, "DEFAULT_OPTIONS", defaults) < 0) {
        Py_XDECREF(defaults);
        return -1;
    }
    PyObject *specs = options_specs();
    if (specs == NULL || PyModule_AddObject(module, "OPTION_SPECS", specs) < 0) {
        Py_XDECREF(specs);
        return -1;
    }
    PyObject *api_only = options_api_only();
    if (api_only == NULL || PyModule_AddObject(module, "API_ONLY_OPTIONS", api_only) < 0) {
        Py_XDECREF(api_only);
        return -1;
    }
    Py_INCREF(state->file_wrapper_type);
    if (PyModule_AddObject(module, "FileWrapper", (PyObject *)state->file_wrapper_type) < 0) {
        Py_DECREF(state->file_wrapper_type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (init_state(module, state_of(module)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
