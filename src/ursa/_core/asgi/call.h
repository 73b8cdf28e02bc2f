/* One ASGI request's state, shared by the files of this layer. It is a
 * Python object, and `send` itself: the app may keep send and receive
 * past the response, so the request's state cannot live in the exchange.
 * The exchange holds a reference until the response is over; a WebSocket
 * session holds one for the connection's life. */
#ifndef URSA_ASGI_CALL_H
#define URSA_ASGI_CALL_H

#include "asgi/asgi.h"
#include "http/exchange.h"
#include "ws/handshake.h"
#include "ws/session.h"

typedef struct asgi_call {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* send(message) */
    module_state *state;
    exchange *exchange;        /* NULL once the response is over */
    PyObject *event_loop;
    PyObject *task;            /* the app's, until it is done */
    PyObject *receive_waiter;  /* a future receive() returned: the disconnect */
    PyObject *send_waiter;     /* a future send() returned: the output drained */
    PyObject *scope;           /* for the access log */
    double started_at;         /* for the access log's duration */
    int file;                  /* http.response.pathsend's open file, or -1 */
    response_head response;    /* what http.response.start said */
    unsigned started : 1;      /* http.response.start was sent */
    unsigned complete : 1;     /* the last http.response.body was sent */
    unsigned request_read : 1; /* receive() returned the body's last part */
    unsigned dispatching : 1;  /* inside on_request, which writes what was sent */
    unsigned hung_up : 1;      /* the client finished sending: receive() says so */
    unsigned disconnected : 1; /* the connection closed before the response was written */
    unsigned app_done : 1;     /* the app's task is done */
    unsigned abandoned : 1;    /* it sent an invalid message: the response ends as it failed */
    PyObject *send_error;      /* the exception that send() raised then, logged once */
    /* A WebSocket (websocket.c): */
    ws_session *session;       /* from websocket.accept until the connection is gone */
    PyObject *inbox;           /* messages received, not yet given: a list, read from inbox_first */
    Py_ssize_t inbox_first;
    size_t inbox_bytes;        /* their payloads' size: reading pauses past a mark */
    int close_code;            /* websocket.disconnect's, once the connection is gone */
    PyObject *close_reason;    /* its reason (str), NULL for none */
    char ws_accept[WS_ACCEPT_LENGTH + 1]; /* Sec-WebSocket-Accept of the handshake */
    ws_deflate_params ws_deflate;  /* the permessage-deflate offer the handshake took, if any */
    unsigned websocket : 1;    /* the scope is a WebSocket's */
    unsigned ws_connected : 1; /* receive() gave websocket.connect */
    unsigned ws_accepted : 1;  /* websocket.accept was sent */
    unsigned ws_closed : 1;    /* the app closed (websocket.close, or a denial) */
    unsigned ws_gone : 1;      /* the upgraded connection is over: close_code says how */
} asgi_call;

/* What the exchange keeps for the interface (interface.state_size). */
typedef struct asgi_slot {
    asgi_call *call;
} asgi_slot;

static inline asgi_call *asgi_call_of(exchange *x)
{
    return ((asgi_slot *)exchange_state(x))->call;
}

static inline asgi_server *asgi_server_of(const server *s)
{
    return ((http_server *)s->protocol_state)->iface_state;
}

/* ---- channel.c: send and receive ---- */

asgi_call *asgi_call_new(module_state *state, exchange *x, PyObject *event_loop);
/* The receive callable of a call. */
PyObject *asgi_receive_new(asgi_call *call);
/* Resolve what the app awaits: receive()'s future with http.disconnect,
 * send()'s with None. */
void asgi_wake_receiver(asgi_call *call);
void asgi_wake_sender(asgi_call *call);
/* More of the request body arrived, or its end: a receive() waiting gets it. */
void asgi_body_arrived(asgi_call *call);

/* A future of the call's event loop. */
PyObject *asgi_new_future(asgi_call *call);
/* Resolve `*slot` with `value` unless it is done, and forget it. */
void asgi_resolve(asgi_call *call, PyObject **slot, PyObject *value);
/* Whether a receive() future waits (one the app cancelled is forgotten). */
int asgi_receiver_waits(asgi_call *call);

/* ---- response.c: what send() does with each message ---- */

/* 0, or -1 with an exception for the app. */
int asgi_response_message(asgi_call *call, PyObject *message);
/* Whether a field name is the server's to write, not the app's. */
typedef int (*server_field_test)(const char *name, size_t length);

/* The message's "headers" into `head`, checked as a response's fields
 * (http/fields.c) into call->response; a name `servers` says is the
 * server's (NULL: none) is refused; errors name `message_type`. 0, or -1
 * with an exception. */
int asgi_add_headers(asgi_call *call, buffer *head, PyObject *message, const char *message_type,
                     server_field_test servers);

/* ---- websocket.c: a WebSocket's messages ---- */

/* Make `call` a WebSocket's, for the valid handshake `h`. 0, or -1. */
int asgi_websocket_init(asgi_call *call, const ws_handshake *h);
/* receive() and send() of a WebSocket: an awaitable, or NULL. */
PyObject *asgi_websocket_receive(asgi_call *call);
PyObject *asgi_websocket_send(asgi_call *call, PyObject *message);
/* websocket.disconnect with the code of the end. */
PyObject *asgi_websocket_disconnect(asgi_call *call);
/* The app's task ended (`failed`: raised or cancelled): a handshake it
 * left unanswered gets a 403, an open connection a close frame (1000, or
 * 1011 after a failure). */
void asgi_websocket_app_done(asgi_call *call, int failed);
/* The handshake's exchange is over: the 101 was written (`completed`), or
 * the connection closed before. */
void asgi_websocket_exchange_done(asgi_call *call, int completed);

PyType_Spec *asgi_send_type_spec(void);
PyType_Spec *asgi_receive_type_spec(void);

#endif
