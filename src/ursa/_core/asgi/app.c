#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "asgi/asgi.h"

#include <string.h>
#include <unistd.h>

#include "asgi/call.h"
#include "common/exceptions.h"
#include "asgi/loop.h"
#include "asgi/scope.h"
#include "asgi/task.h"
#include "transport/serve.h"

/* Bytes written for one connection per event before the others get a turn. */
#define WRITE_BUDGET (1024 * 1024)

static void task_finished(asgi_call *call, task_outcome outcome, PyObject *exception);
static void log_access(server *s, PyObject *scope, int status, uint64_t body_bytes, double duration);

/* ---- writing ---- */

/* Write what the app has sent. The app answers in its own time: when all
 * it sent is out and its body is not over, the connection waits for it
 * (CONN_PENDING) until send() kicks it. */
static conn_progress pump(exchange *x)
{
    asgi_call *call = asgi_call_of(x);
    if ((call->app_done || call->abandoned) && !exchange_ended(x)) {
        /* The app is done without a whole response: a 500 if nothing
         * went out yet; else what it sent goes out, then only a close
         * tells the client (exchange_flush ends in CONN_ABORT). */
        int head_was_sent = exchange_head_sent(x);
        if (exchange_fail(x) < 0 && !head_was_sent)
            return CONN_ABORT;
    }
    size_t budget = WRITE_BUDGET;
    conn_progress progress = exchange_flush(x, &budget);
    if (progress == CONN_DONE && !exchange_ended(x))
        progress = CONN_PENDING;
    if (progress != CONN_ABORT)
        asgi_wake_sender(call);
    return progress;
}

/* ---- the app's task ---- */

/* asgi/task.c's hook: the app's coroutine ended. */
static void on_task_done(PyObject *owner, PyObject *task, task_outcome outcome, PyObject *exception)
{
    asgi_call *call = (asgi_call *)owner;
    if (call->task == task)
        Py_CLEAR(call->task);
    task_finished(call, outcome, exception);
}

/* Log the current exception, unless it is the disconnect the app was told
 * of (send() after the client left). */
static void report_app_exception(asgi_call *call, server *s)
{
    if (call->disconnected && PyErr_ExceptionMatches(call->state->client_disconnected)) {
        PyErr_Clear();
        return;
    }
    if (call->send_error != NULL) {
        /* What send() refused, told already; unless the app raised anew. */
        PyObject *raised = exception_take();
        int same = raised == call->send_error;
        exception_raise(raised);
        if (same) {
            PyErr_Clear();
            return;
        }
    }
    server_report_exception(s, "ursa: the ASGI application raised");
}

static void task_finished(asgi_call *call, task_outcome outcome, PyObject *exception)
{
    module_state *state = call->state;
    exchange *x = call->exchange;
    call->app_done = 1;
    if (call->websocket)
        asgi_websocket_app_done(call, outcome != TASK_RETURNED);
    if (x == NULL) {
        /* The response is over: only an error is worth telling. */
        if (exception != NULL) {
            Py_INCREF(exception);
            exception_raise(exception);
            if ((call->disconnected && PyErr_ExceptionMatches(state->client_disconnected)) ||
                exception == call->send_error)
                PyErr_Clear();
            else
                log_error(state, "ursa: the ASGI application raised after its response");
        }
        return;
    }
    server *s = exchange_server(x);
    if (outcome == TASK_CANCELLED) {
        if (!call->abandoned)
            log_error(state, "ursa: the ASGI application's task was cancelled before its response was complete");
    } else if (exception != NULL) {
        Py_INCREF(exception);
        exception_raise(exception);
        report_app_exception(call, s);
    } else if (call->abandoned) {
        /* its invalid message was told */
    } else if (!call->started) {
        log_error(state, "ursa: the ASGI application returned without sending a response");
    } else if (!call->complete) {
        log_error(state, "ursa: the ASGI application returned without completing its response");
    }
    /* The report may have stopped the server at once (a second Ctrl-C). */
    if (call->exchange != NULL && !call->dispatching && !exchange_ended(call->exchange))
        exchange_kick(call->exchange);
}

/* The app could not even be started: a 500 (logged with `message`). */
static conn_progress fail_request(exchange *x, const char *message)
{
    server_report_exception(exchange_server(x), message);
    if (exchange_is_gone(x))
        return CONN_ABORT;
    asgi_call *call = asgi_call_of(x);
    if (call != NULL) {
        call->app_done = 1;
        call->dispatching = 0;
    }
    if (exchange_fail(x) < 0)
        return CONN_ABORT;
    size_t budget = WRITE_BUDGET;
    return exchange_flush(x, &budget);
}

/* An invalid WebSocket handshake is answered here; the app never sees it. */
static conn_progress refuse_handshake(exchange *x, const ws_handshake *h)
{
    if (ws_handshake_refuse(x, h) < 0)
        return fail_request(x, "ursa: cannot answer an invalid WebSocket handshake");
    server *s = exchange_server(x);
    if (s->opts.access_log != NULL) {
        PyObject *scope = scope_build_partial(asgi_server_of(s), x);
        if (scope != NULL) {
            log_access(s, scope, h->status, 0, exchange_elapsed(x));
            Py_DECREF(scope);
        } else {
            server_report_exception(s, "ursa: cannot describe a refused request for the access log");
        }
    }
    if (exchange_is_gone(x))
        return CONN_ABORT;
    size_t budget = WRITE_BUDGET;
    return exchange_flush(x, &budget);
}

static conn_progress asgi_on_request(exchange *x)
{
    server *s = exchange_server(x);
    asgi_server *a = asgi_server_of(s);
    asgi_slot *slot = exchange_state(x);
    ws_handshake handshake;
    if (ws_handshake_read(x, &handshake) < 0)
        return fail_request(x, "ursa: cannot compute the WebSocket accept key");
    if (handshake.result == WS_INVALID)
        return refuse_handshake(x, &handshake);
    asgi_call *call = asgi_call_new(s->state, x, a->event_loop);
    if (call == NULL)
        return fail_request(x, "ursa: out of memory");
    slot->call = call;
    if (handshake.result == WS_VALID && asgi_websocket_init(call, &handshake) < 0)
        return fail_request(x, "ursa: out of memory");
    call->scope = call->websocket ? scope_build_websocket(a, x) : scope_build(a, x);
    if (call->scope == NULL)
        return fail_request(x, "ursa: cannot build the ASGI scope");
    call->started_at = s->opts.access_log ? ev_time() : 0;
    PyObject *receive = asgi_receive_new(call);
    if (receive == NULL)
        return fail_request(x, "ursa: out of memory");
    /* Whatever the app sends while it runs from here (all of it, for an
     * app that never waits) goes out in one write below. */
    call->dispatching = 1;
    PyObject *args[3] = {call->scope, receive, (PyObject *)call};
    /* The app runs here up to its first wait (all of it with eager tasks):
     * its time is not its clients', as for a WSGI app's call. */
    double called_at = ev_now(s->loop);
    PyObject *coroutine = PyObject_Vectorcall(s->app, args, 3, NULL);
    Py_DECREF(receive);
    PyObject *task = coroutine != NULL ? request_task_start(s->state, a->event_loop, coroutine, (PyObject *)call,
                                                            on_task_done)
                                       : NULL;
    server_app_returned(s, called_at);
    if (coroutine == NULL)
        return fail_request(x, "ursa: the ASGI application raised");
    Py_DECREF(coroutine);
    if (task == NULL)
        return fail_request(x, "ursa: cannot run the ASGI application (is it an async function?)");
    /* An app that never waited is done already: its end was told. */
    if (request_task_is_done(task))
        Py_DECREF(task);
    else
        call->task = task;
    if (exchange_is_gone(x))
        return CONN_ABORT;
    call->dispatching = 0;
    return pump(x);
}

static conn_progress asgi_on_writable(exchange *x)
{
    return pump(x);
}

static void asgi_on_body(exchange *x)
{
    asgi_body_arrived(asgi_call_of(x));
}

static void asgi_on_hangup(exchange *x)
{
    asgi_call *call = asgi_call_of(x);
    call->hung_up = 1;
    asgi_wake_receiver(call);
}

/* ---- the end ---- */

/* `duration` is in seconds. The hook is app code: its time is the app's. */
static void log_access(server *s, PyObject *scope, int status, uint64_t body_bytes, double duration)
{
    double called_at = ev_now(s->loop);
    PyObject *ok = PyObject_CallFunction(s->opts.access_log, "OiKL", scope, status, (unsigned long long)body_bytes,
                                         (long long)(duration * 1e6));
    if (ok == NULL)
        server_report_exception(s, "ursa: the access_log callable raised");
    Py_XDECREF(ok);
    server_app_returned(s, called_at);
}

static void asgi_on_done(exchange *x, int completed)
{
    asgi_slot *slot = exchange_state(x);
    asgi_call *call = slot->call;
    if (call == NULL)
        return;
    server *s = exchange_server(x);
    slot->call = NULL;
    call->exchange = NULL;
    PyObject *task = NULL;
    if (call->websocket)
        asgi_websocket_exchange_done(call, completed);
    if (!completed) {
        call->disconnected = 1;
        /* Cancelled below, once told; a WebSocket app is told with
         * websocket.disconnect, which it waits for. */
        task = call->websocket ? NULL : call->task;
        Py_XINCREF(task);
    }
    if (completed && s->opts.access_log != NULL && call->scope != NULL)
        log_access(s, call->scope, x->response.status_code, exchange_body_bytes(x), ev_time() - call->started_at);
    if (call->file >= 0) {
        close(call->file);
        call->file = -1;
    }
    if (call->session == NULL) /* an upgraded WebSocket goes on: its session says when it ends */
        asgi_wake_receiver(call);
    asgi_wake_sender(call);
    Py_CLEAR(call->scope);
    Py_DECREF(call);
    if (task != NULL) {
        /* The client is gone before its response: the app is stopped where
         * it next waits (a receive() it waits on gives CancelledError, not
         * http.disconnect, as the task is cancelled in the same turn). */
        if (request_task_cancel(task) < 0)
            log_error(s->state, "ursa: cannot cancel the ASGI application's task");
        Py_DECREF(task);
    }
}

static void asgi_on_refused(exchange *x, int status, size_t body_bytes)
{
    server *s = exchange_server(x);
    if (s->opts.access_log == NULL)
        return;
    PyObject *scope = scope_build_partial(asgi_server_of(s), x);
    if (scope == NULL) {
        server_report_exception(s, "ursa: cannot describe a refused request for the access log");
        return;
    }
    log_access(s, scope, status, body_bytes, exchange_elapsed(x));
    Py_DECREF(scope);
}

/* ---- one server ---- */

#if ASGI_SUPPORTED
static void on_loop_fatal(void *data)
{
    server_report_exception(data, "ursa: the event loop failed");
}

/* The app's callbacks ran: their time is not its clients' (see
 * server_network_time), as for a WSGI app's call. */
static void after_app_callbacks(void *data, double started)
{
    server_app_returned(data, started);
}
#endif

static void asgi_server_end(server *s);

static int asgi_server_start(server *s)
{
    asgi_server *a = asgi_server_of(s);
#if !ASGI_SUPPORTED
    (void)a;
    PyErr_SetString(PyExc_RuntimeError, "ursa serves ASGI apps on Python 3.11 and later");
    return -1;
#else
    Py_ssize_t root_path_length;
    a->root_path = PyUnicode_AsUTF8AndSize(s->opts.script_name, &root_path_length);
    if (a->root_path == NULL)
        return -1;
    a->root_path_length = (size_t)root_path_length;
    if (scope_init_header_names(a) < 0)
        goto error;
    a->templates = PyMem_Calloc(s->listener_count, sizeof *a->templates);
    if (a->templates == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (size_t i = 0; i < s->listener_count; i++) {
        a->templates[i] = scope_template_new(s->state, &s->listeners[i], s->opts.url_scheme);
        if (a->templates[i] == NULL)
            goto error;
        a->template_count++;
    }
    a->event_loop = event_loop_new(s->state, s->loop);
    if (a->event_loop == NULL || request_task_kit_init(s->state) < 0)
        goto error;
    if (a->lifespan != NULL) {
        /* The app's startup runs to its end before the first connection
         * is accepted; a failed startup fails serve(). */
        PyObject *state = PyObject_CallMethod(a->lifespan, "startup", "O", a->event_loop);
        if (state == NULL)
            goto error;
        if (state == Py_None)
            Py_DECREF(state);
        else
            a->lifespan_state = state;
    }
    if (event_loop_enter(a->event_loop) < 0)
        goto error;
    a->loop_entered = 1;
    event_loop_on_fatal(a->event_loop, on_loop_fatal, s);
    event_loop_after_callbacks(a->event_loop, after_app_callbacks, s);
    return 0;
error:
    asgi_server_end(s);
    return -1;
#endif
}

static void asgi_server_end(server *s)
{
    asgi_server *a = asgi_server_of(s);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback); /* a failed start's, raised by serve() */
    if (a->event_loop != NULL)
        event_loop_after_callbacks(a->event_loop, NULL, NULL);
    if (a->loop_entered) {
        a->loop_entered = 0;
        if (event_loop_exit(a->event_loop) < 0)
            log_error(s->state, "ursa: the event loop ended with an exception");
    }
    if (a->event_loop != NULL) {
        /* Tasks left when the connections are gone are cancelled, and the
         * app's shutdown runs. */
        if (a->lifespan != NULL) {
            PyObject *ok = PyObject_CallMethod(a->lifespan, "shutdown", "O", a->event_loop);
            if (ok == NULL)
                log_error(s->state, "ursa: the ASGI application's shutdown failed");
            Py_XDECREF(ok);
        }
        if (event_loop_close(a->event_loop) < 0)
            log_error(s->state, "ursa: cannot close the event loop");
        Py_CLEAR(a->event_loop);
    }
    for (size_t i = 0; i < a->template_count; i++)
        Py_XDECREF(a->templates[i]);
    PyMem_Free(a->templates);
    a->templates = NULL;
    a->template_count = 0;
    for (int i = 0; i < URSA_COMMON_HEADERS; i++)
        Py_CLEAR(a->header_names[i]);
    Py_CLEAR(a->lifespan_state);
    PyErr_Restore(type, value, traceback);
}

const interface asgi_interface = {
    .state_size = sizeof(asgi_slot),
    .streams_body = 1,
    .server_start = asgi_server_start,
    .server_end = asgi_server_end,
    .on_request = asgi_on_request,
    .on_writable = asgi_on_writable,
    .on_hangup = asgi_on_hangup,
    .on_body = asgi_on_body,
    .on_done = asgi_on_done,
    .on_refused = asgi_on_refused,
};
