/* A WebSocket connection after its handshake: wslay's event API does the
 * framing (masking, fragments, control frames, UTF-8 of text, close codes,
 * each frame's size) over the connection's own buffers; this file feeds it
 * what the transport read, gathers the messages (inflated by ws/deflate.c
 * when permessage-deflate was agreed, and the message size limit kept),
 * writes what it framed, keeps the ping/pong and closing deadlines on the
 * connection's one timer, and tells its owner (the interface above,
 * through a ws_handler) of messages, of room to send, and of the end.
 *
 * A session is made when the app accepts, before the 101 is written:
 * messages it sends meanwhile wait in it. `ws_protocol` is the transport
 * protocol of the upgraded connection; its state is the session, which the
 * connection frees when it closes. */
#ifndef URSA_WS_SESSION_H
#define URSA_WS_SESSION_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/conn.h"
#include "ws/deflate_offer.h"

/* The close codes a session reports that no close frame carried. */
#define WS_CODE_NO_STATUS 1005 /* the peer's close frame had no code */
#define WS_CODE_ABNORMAL 1006  /* the connection ended without a close frame */

typedef struct ws_session ws_session;

/* What the owner is told; `owner` is the object given to ws_session_new. */
typedef struct ws_handler {
    /* A whole message (text is valid UTF-8). Returns 1 when the owner holds
     * enough that reading should pause (ws_session_resume), 0, or -1 with
     * an exception (logged; the session closes with 1011). */
    int (*on_message)(PyObject *owner, int text, const char *data, size_t length);
    /* What waits to be written fell to the low-water mark. */
    void (*on_drained)(PyObject *owner);
    /* The connection is over: `code` is the peer's close code, or
     * WS_CODE_NO_STATUS, or WS_CODE_ABNORMAL, and `reason` (valid UTF-8,
     * `length` bytes, maybe none) the reason its close frame gave. The
     * session is freed next. */
    void (*on_gone)(PyObject *owner, int code, const char *reason, size_t length);
} ws_handler;

extern const protocol ws_protocol;

/* Bytes waiting to be written past which a sender should wait for
 * on_drained, and the mark at which it is called. */
#define WS_SEND_HIGH_WATER (64 * 1024)
#define WS_SEND_LOW_WATER (16 * 1024)

/* A session for server `s`; it holds a reference to `owner` until it is
 * freed. Messages are compressed as `deflate` says (nothing when it is not
 * enabled). NULL with an exception. */
ws_session *ws_session_new(server *s, const ws_handler *handler, PyObject *owner, const ws_deflate_params *deflate);
/* Free a session no connection took (it closed before the 101 was out). */
void ws_session_free(ws_session *w);

/* Queue a message: 0, or -1 with an exception (the session is closing:
 * nothing more can be sent). */
int ws_session_send(ws_session *w, int text, const char *data, size_t length);
/* Queue the close frame; the connection ends once the peer answers, or
 * after websocket_close_timeout. 0, or -1 with an exception. */
int ws_session_close(ws_session *w, int code, const char *reason, size_t length);
/* Bytes queued and not yet written. */
size_t ws_session_pending(const ws_session *w);
/* The owner took what it held: reading goes on. */
void ws_session_resume(ws_session *w);
/* Whether a close frame was queued (by either side's doing). */
int ws_session_closing(const ws_session *w);

/* Whether `code` may be sent in a close frame (RFC 6455 7.4, and the
 * IANA registry's 1012-1014). */
int ws_close_code_valid(int code);

#endif
