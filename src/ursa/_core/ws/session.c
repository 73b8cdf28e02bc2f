#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "ws/session.h"

#include <wslay/wslay.h>

#include "common/state.h"
#include "ws/deflate.h"
#include "ws/utf8.h"

/* wslay frames into `out` until this much waits for the socket: one write
 * then carries many small messages, and a large one goes in pieces. */
#define OUT_CHUNK (64 * 1024)
/* Bytes written for one connection per event before the others get a turn. */
#define WRITE_BUDGET (1024 * 1024)
/* An emptied output buffer larger than this is given back: an idle
 * connection keeps little. */
#define OUT_KEEP (4 * 1024)
/* A close reason fits a control frame with its code. */
#define CLOSE_REASON_MAX 123
/* A received message's buffer (or a sent one's compressed copy) larger
 * than this is given back once the message is through, as `out` is. */
#define MESSAGE_KEEP OUT_KEEP

struct ws_session {
    server *server;
    conn *conn;                  /* NULL until the 101 is written */
    wslay_event_context_ptr wslay;
    const ws_handler *handler;
    PyObject *owner;
    ws_deflate *deflate;         /* permessage-deflate's streams (NULL: not agreed) */
    buffer message;              /* the data message being received, inflated if it was compressed */
    buffer compressed;           /* a message the app sends, compressed, until wslay copied it */
    ws_utf8 utf8;                /* the inflated text of the message checked so far */
    buffer out;                  /* framed bytes for the socket */
    size_t out_sent;             /* of out.len, written */
    const char *feed;            /* what wslay reads from, during ws_feed */
    size_t feed_length;
    size_t feed_used;
    double next_ping;            /* when the next ping goes (0: pings are off) */
    double pong_due;             /* a ping awaits its pong until then (0: none) */
    double close_due;            /* our close frame awaits the peer's until then (0) */
    uint32_t pings;              /* sent, for their payloads */
    /* A close frame the owner asked for waits until the messages queued
     * before it are framed: wslay sends control frames ahead of data. */
    uint8_t close_reason[CLOSE_REASON_MAX];
    uint8_t close_reason_length;
    uint16_t close_code;         /* 0: none waits */
    uint8_t peer_reason[CLOSE_REASON_MAX]; /* the reason of the peer's close frame */
    uint8_t peer_reason_length;
    unsigned paused : 1;         /* the owner holds enough: reading waits for it */
    unsigned control_frame : 1;  /* the frame being read is a control frame (wslay keeps those) */
    unsigned message_text : 1;
    unsigned message_compressed : 1;
    unsigned close_written : 1;  /* our 1002 replaced wslay's close (answer_protocol_error) */
};

static double network_now(const ws_session *w)
{
    return server_network_time(w->server);
}

/* ---- wslay's callbacks ---- */

/* wslay reads the bytes the transport gave ws_feed; none left (or the
 * owner paused reading) is "would block". */
static ssize_t on_wslay_recv(wslay_event_context_ptr ctx, uint8_t *into, size_t length, int flags, void *data)
{
    (void)flags;
    ws_session *w = data;
    size_t left = w->feed_length - w->feed_used;
    if (w->feed == NULL || left == 0 || w->paused) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = length < left ? length : left;
    memcpy(into, w->feed + w->feed_used, n);
    w->feed_used += n;
    return (ssize_t)n;
}

/* wslay's framed bytes gather in `out`, written by ws_pump. */
static ssize_t on_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t length, int flags,
                             void *user_data)
{
    (void)flags;
    ws_session *w = user_data;
    size_t waiting = w->out.len - w->out_sent;
    if (waiting >= OUT_CHUNK) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = OUT_CHUNK - waiting < length ? OUT_CHUNK - waiting : length;
    if (buffer_append(&w->out, data, n) < 0) {
        PyErr_Clear();
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)n;
}

static void schedule(ws_session *w)
{
    if (w->conn == NULL || w->conn->state != CONN_UPGRADED)
        return;
    double due = w->pong_due != 0 ? w->pong_due : w->next_ping;
    if (w->close_due != 0 && (due == 0 || w->close_due < due))
        due = w->close_due;
    conn_wake_at(w->conn, due);
}

/* Fail the connection from our side: a close frame with `code`, and
 * nothing more is read. */
static void fail_with(ws_session *w, int code)
{
    wslay_event_queue_close(w->wslay, (uint16_t)code, NULL, 0);
    wslay_event_shutdown_read(w->wslay);
}

static uint64_t max_message_size(const ws_session *w)
{
    return w->server->opts.websocket_max_message_size;
}

/* The data message ends: its buffer is kept for the next one if small. */
static void end_message(ws_session *w)
{
    w->message.len = 0;
    if (w->message.cap > MESSAGE_KEEP)
        buffer_free(&w->message);
}

/* wslay frames data messages without buffering them (it keeps control
 * frames): the session gathers each message in `message`, inflating a
 * compressed one as it arrives, so that neither a message nor its inflated
 * form is ever held past websocket_max_message_size.
 *
 * At a frame's start, RFC 6455 strictness wslay leaves to its user: a
 * close frame's payload is empty or holds a code (two bytes or more). And
 * RFC 7692's: RSV1 marks the first frame of a compressed message only
 * (wslay refuses it elsewhere and without permessage-deflate; checked
 * again here, as that is what keeps the inflater's input whole). */
static void on_wslay_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                                 void *user_data)
{
    (void)ctx;
    ws_session *w = user_data;
    int rsv1 = wslay_get_rsv1(arg->rsv);
    w->control_frame = wslay_is_ctrl_frame(arg->opcode);
    if (w->control_frame) {
        if (rsv1 || (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1))
            fail_with(w, WSLAY_CODE_PROTOCOL_ERROR);
        return;
    }
    if (!wslay_event_get_read_enabled(w->wslay))
        return;
    if (arg->opcode != WSLAY_CONTINUATION_FRAME) {
        if (rsv1 && w->deflate == NULL) {
            fail_with(w, WSLAY_CODE_PROTOCOL_ERROR);
            return;
        }
        end_message(w);
        w->message_text = arg->opcode == WSLAY_TEXT_FRAME;
        w->message_compressed = rsv1;
        ws_utf8_reset(&w->utf8);
    } else if (rsv1) {
        fail_with(w, WSLAY_CODE_PROTOCOL_ERROR);
        return;
    }
    /* A compressed frame's length says nothing of what it inflates to:
     * that is checked as it inflates. */
    if (!w->message_compressed && arg->payload_length > max_message_size(w) - w->message.len)
        fail_with(w, WSLAY_CODE_MESSAGE_TOO_BIG);
}

/* What inflating gave: the failure it means (1009 past the size limit;
 * 1007 for data that is not DEFLATE, as for text that is not UTF-8: the
 * payload does not fit the message), else the UTF-8 of the text it added,
 * from byte `from` of the message. 0, or -1 once the connection failed. */
static int check_inflated(ws_session *w, ws_inflate_result result, size_t from)
{
    switch (result) {
    case WS_INFLATE_OK:
        break;
    case WS_INFLATE_TOO_BIG:
        fail_with(w, WSLAY_CODE_MESSAGE_TOO_BIG);
        return -1;
    case WS_INFLATE_INVALID:
        fail_with(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA);
        return -1;
    case WS_INFLATE_NO_MEMORY:
        log_error(w->server->state, "ursa: out of memory inflating a WebSocket message");
        fail_with(w, WSLAY_CODE_INTERNAL_SERVER_ERROR);
        return -1;
    }
    if (w->message_text &&
        ws_utf8_feed(&w->utf8, (const uint8_t *)w->message.data + from, w->message.len - from) < 0) {
        fail_with(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA);
        return -1;
    }
    return 0;
}

static void on_wslay_frame_chunk(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_chunk_arg *arg,
                                 void *user_data)
{
    (void)ctx;
    ws_session *w = user_data;
    if (w->control_frame || arg->data_length == 0 || !wslay_event_get_read_enabled(w->wslay))
        return;
    if (w->message_compressed) {
        size_t from = w->message.len;
        check_inflated(w, ws_deflate_inflate(w->deflate, arg->data, arg->data_length, &w->message,
                                             max_message_size(w)),
                       from);
        return;
    }
    /* Within the limit: the frame's length was checked at its start. */
    if (buffer_reserve_within(&w->message, arg->data_length, max_message_size(w)) < 0) {
        PyErr_Clear();
        log_error(w->server->state, "ursa: out of memory receiving a WebSocket message");
        fail_with(w, WSLAY_CODE_INTERNAL_SERVER_ERROR);
        return;
    }
    buffer_append(&w->message, arg->data, arg->data_length);
}

static void on_wslay_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                             void *user_data)
{
    (void)ctx;
    ws_session *w = user_data;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME: {
        if (!wslay_event_get_read_enabled(w->wslay))
            return; /* failed meanwhile (the frame callbacks) */
        if (w->message_compressed) {
            size_t from = w->message.len;
            if (check_inflated(w, ws_deflate_inflate_end(w->deflate, &w->message, max_message_size(w)), from) < 0)
                return;
            if (w->message_text && !ws_utf8_complete(&w->utf8)) {
                fail_with(w, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA);
                return;
            }
        }
        int full = w->handler->on_message(w->owner, w->message_text, w->message.data, w->message.len);
        end_message(w);
        if (full < 0) {
            log_error(w->server->state, "ursa: could not give the ASGI application a WebSocket message");
            fail_with(w, WSLAY_CODE_INTERNAL_SERVER_ERROR);
        } else if (full > 0 && !w->paused) {
            w->paused = 1;
            conn_pause_reading(w->conn);
        }
        break;
    }
    case WSLAY_PONG:
        /* Any pong answers the ping (RFC 6455 5.5.3: the latest matters). */
        if (w->pong_due != 0) {
            w->pong_due = 0;
            w->next_ping = network_now(w) + w->server->opts.websocket_ping_interval;
            schedule(w);
        }
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay answers it; the owner hears the reason with the code
         * (wslay has checked that it is UTF-8 and short enough). */
        if (arg->msg_length > 2) {
            size_t length = arg->msg_length - 2;
            if (length > CLOSE_REASON_MAX)
                length = CLOSE_REASON_MAX;
            memcpy(w->peer_reason, arg->msg + 2, length);
            w->peer_reason_length = (uint8_t)length;
        }
        break;
    default:
        break; /* wslay answers pings itself */
    }
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = on_wslay_recv,
    .send_callback = on_wslay_send,
    .on_frame_recv_start_callback = on_wslay_frame_start,
    .on_frame_recv_chunk_callback = on_wslay_frame_chunk,
    .on_msg_recv_callback = on_wslay_message,
};

/* ---- a session ---- */

ws_session *ws_session_new(server *s, const ws_handler *handler, PyObject *owner, const ws_deflate_params *deflate)
{
    ws_session *w = PyMem_Calloc(1, sizeof *w);
    if (w == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (deflate->enabled && (w->deflate = ws_deflate_new(deflate)) == NULL)
        goto failed;
    if (wslay_event_context_server_init(&w->wslay, &wslay_callbacks, w) != 0) {
        PyErr_NoMemory();
        goto failed;
    }
    wslay_event_config_set_no_buffering(w->wslay, 1);
    /* Without buffering, wslay checks each frame's length against this;
     * the session checks the message's. */
    wslay_event_config_set_max_recv_msg_length(w->wslay, s->opts.websocket_max_message_size);
    wslay_event_config_set_allowed_rsv_bits(w->wslay, w->deflate != NULL ? WSLAY_RSV1_BIT : WSLAY_RSV_NONE);
    w->server = s;
    w->handler = handler;
    Py_INCREF(owner);
    w->owner = owner;
    return w;
failed:
    ws_deflate_free(w->deflate);
    PyMem_Free(w);
    return NULL;
}

void ws_session_free(ws_session *w)
{
    wslay_event_context_free(w->wslay);
    ws_deflate_free(w->deflate);
    buffer_free(&w->message);
    buffer_free(&w->compressed);
    buffer_free(&w->out);
    Py_DECREF(w->owner);
    PyMem_Free(w);
}

size_t ws_session_pending(const ws_session *w)
{
    return wslay_event_get_queued_msg_length(w->wslay) + (w->out.len - w->out_sent);
}

int ws_session_closing(const ws_session *w)
{
    /* wslay refuses messages once a close is queued or write is off. */
    return w->close_code != 0 || wslay_event_get_close_sent(w->wslay) || wslay_event_get_close_received(w->wslay) ||
           !wslay_event_get_write_enabled(w->wslay) || !wslay_event_get_read_enabled(w->wslay);
}

static void kick(ws_session *w)
{
    if (w->conn != NULL && w->conn->state == CONN_UPGRADED)
        conn_kick(w->conn);
}

static int queue_failed(int result)
{
    if (result == WSLAY_ERR_NOMEM)
        PyErr_NoMemory();
    else
        PyErr_SetString(PyExc_RuntimeError, "the WebSocket is closing: no more messages can be sent");
    return -1;
}

int ws_session_send(ws_session *w, int text, const char *data, size_t length)
{
    struct wslay_event_msg message = {text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, (const uint8_t *)data, length};
    uint8_t rsv = WSLAY_RSV_NONE;
    if (w->deflate != NULL && length >= WS_DEFLATE_THRESHOLD) {
        if (ws_session_closing(w))
            return queue_failed(WSLAY_ERR_NO_MORE_MSG); /* not worth compressing */
        if (ws_deflate_compress(w->deflate, data, length, &w->compressed) < 0)
            return -1;
        message.msg = (const uint8_t *)w->compressed.data;
        message.msg_length = w->compressed.len;
        rsv = WSLAY_RSV1_BIT;
    }
    int result = wslay_event_queue_msg_ex(w->wslay, &message, rsv);
    if (w->compressed.cap > MESSAGE_KEEP)
        buffer_free(&w->compressed);
    if (result != 0) {
        if (rsv != WSLAY_RSV_NONE) {
            /* The compressor went past a message the client will never
             * see: what it compresses next might not inflate there. */
            fail_with(w, WSLAY_CODE_INTERNAL_SERVER_ERROR);
            kick(w);
        }
        return queue_failed(result);
    }
    kick(w);
    return 0;
}

int ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

int ws_session_close(ws_session *w, int code, const char *reason, size_t length)
{
    if (length > CLOSE_REASON_MAX) {
        PyErr_Format(PyExc_ValueError, "a WebSocket close reason is at most %d bytes of UTF-8", CLOSE_REASON_MAX);
        return -1;
    }
    if (ws_session_closing(w)) {
        PyErr_SetString(PyExc_RuntimeError, "the WebSocket is closing already");
        return -1;
    }
    w->close_code = (uint16_t)code;
    if (length > 0)
        memcpy(w->close_reason, reason, length);
    w->close_reason_length = (uint8_t)length;
    kick(w);
    return 0;
}

/* The close frame the owner asked for, once what it sent before is framed. */
static void queue_close_when_due(ws_session *w)
{
    if (w->close_code == 0 || wslay_event_get_queued_msg_count(w->wslay) > 0)
        return;
    /* Refused only when the peer's close came first: its echo ends it. */
    wslay_event_queue_close(w->wslay, w->close_code, w->close_reason, w->close_reason_length);
    w->close_code = 0;
}

void ws_session_resume(ws_session *w)
{
    if (!w->paused)
        return;
    w->paused = 0;
    if (w->conn != NULL && w->conn->state == CONN_UPGRADED) {
        conn_resume_reading(w->conn);
        conn_kick(w->conn); /* bytes kept while paused are read there */
    }
}

/* ---- the connection's events ---- */

static ws_session *session_of(const conn *c)
{
    return c->exchange;
}

static ssize_t append_frame(const uint8_t *data, size_t length, int flags, void *user_data)
{
    (void)flags;
    ws_session *w = user_data;
    return buffer_append(&w->out, data, length) < 0 ? -1 : (ssize_t)length;
}

/* A frame wslay cannot parse (a control frame fragmented or over 125
 * bytes, a length not in its shortest form) it answers with an empty close
 * frame; RFC 6455 7.4.1 asks for 1002. When that close is all wslay has to
 * send, it sends nothing more and the 1002 goes instead, framed by wslay's
 * frame API. (Behind a message half sent, wslay's empty close stays.) */
static void answer_protocol_error(ws_session *w)
{
    if (wslay_event_get_queued_msg_count(w->wslay) != 1 || wslay_event_get_close_sent(w->wslay))
        return;
    struct wslay_frame_callbacks callbacks = {append_frame, NULL, NULL};
    wslay_frame_context_ptr frames;
    if (wslay_frame_context_init(&frames, &callbacks, w) != 0)
        return;
    uint8_t code[2] = {WSLAY_CODE_PROTOCOL_ERROR >> 8, WSLAY_CODE_PROTOCOL_ERROR & 0xff};
    struct wslay_frame_iocb close_frame = {.fin = 1, .opcode = WSLAY_CONNECTION_CLOSE, .payload_length = 2,
                                           .data = code, .data_length = 2};
    if (wslay_frame_send(frames, &close_frame) == 2) {
        wslay_event_shutdown_write(w->wslay);
        w->close_written = 1;
    }
    wslay_frame_context_free(frames);
}

/* Give wslay what the transport read; what it did not take (reading
 * paused) stays in `in`. 0, or -1 once the connection is closed. */
static int ws_feed(ws_session *w)
{
    conn *c = w->conn;
    if (w->paused || c->in.len == 0)
        return 0;
    w->feed = c->in.data;
    w->feed_length = c->in.len;
    w->feed_used = 0;
    int result = wslay_event_recv(w->wslay);
    size_t used = w->feed_used;
    w->feed = NULL;
    if (c->closed)
        return -1;
    if (!wslay_event_get_read_enabled(w->wslay))
        used = c->in.len; /* closed or failed: what follows is not read */
    buffer_discard_front(&c->in, used);
    if (result != 0) {
        /* A frame wslay could not parse (WSLAY_ERR_PROTO underneath) or
         * memory: the close frame it queued goes first, then the end. */
        if (result == WSLAY_ERR_CALLBACK_FAILURE && !wslay_event_get_close_sent(w->wslay) &&
            wslay_event_get_write_enabled(w->wslay)) {
            answer_protocol_error(w);
            return 0;
        }
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Write what wslay framed, as far as the socket and this event's budget
 * go; then see whether the closing handshake is over. */
static void ws_pump(ws_session *w)
{
    conn *c = w->conn;
    size_t written = 0;
    for (;;) {
        if (w->out_sent > 0 && w->out_sent < w->out.len) {
            buffer_discard_front(&w->out, w->out_sent);
            w->out_sent = 0;
        }
        queue_close_when_due(w);
        if (w->out.len < OUT_CHUNK && wslay_event_want_write(w->wslay) && wslay_event_send(w->wslay) != 0) {
            conn_close(c);
            return;
        }
        size_t waiting = w->out.len - w->out_sent;
        if (waiting == 0)
            break;
        ssize_t n = conn_write(c, w->out.data + w->out_sent, waiting);
        if (n < 0) {
            conn_close(c);
            return;
        }
        if (n == 0) {
            conn_want_writable(c, 1);
            goto told;
        }
        w->out_sent += (size_t)n;
        written += (size_t)n;
        if (w->out_sent == w->out.len)
            w->out.len = w->out_sent = 0;
        if (written >= WRITE_BUDGET) {
            conn_kick(c); /* the others get a turn; this goes on in the next iteration */
            goto told;
        }
    }
    conn_want_writable(c, 0);
    if (w->out.cap > OUT_KEEP) {
        buffer_free(&w->out);
        w->out_sent = 0;
    }
    if (w->close_written || wslay_event_get_close_sent(w->wslay)) {
        /* Our close frame is out: the server closes the TCP connection
         * first once the peer's arrived (RFC 6455 7.1.1), or at once when
         * nothing more is read (a failed connection). */
        if (wslay_event_get_close_received(w->wslay) || !wslay_event_get_read_enabled(w->wslay)) {
            conn_linger(c);
            return;
        }
        if (w->close_due == 0) {
            w->close_due = network_now(w) + w->server->opts.websocket_close_timeout;
            schedule(w);
        }
    }
told:
    if (ws_session_pending(w) <= WS_SEND_LOW_WATER)
        w->handler->on_drained(w->owner);
}

static void ws_on_input(conn *c)
{
    ws_session *w = session_of(c);
    if (ws_feed(w) == 0)
        ws_pump(w);
}

static void ws_on_writable(conn *c)
{
    ws_session *w = session_of(c);
    if (w->conn == NULL) {
        /* The first event since the 101 went out. */
        w->conn = c;
        if (w->server->opts.websocket_ping_interval > 0) {
            w->next_ping = network_now(w) + w->server->opts.websocket_ping_interval;
            schedule(w);
        }
    }
    if (ws_feed(w) == 0)
        ws_pump(w);
}

static void ws_on_late(conn *c)
{
    ws_session *w = session_of(c);
    double now = network_now(w);
    if ((w->close_due != 0 && now >= w->close_due) || (w->pong_due != 0 && now >= w->pong_due)) {
        /* The peer never answered our close frame, or our ping: it is
         * gone without a word. */
        conn_close(c);
        return;
    }
    if (w->next_ping != 0 && now >= w->next_ping && w->pong_due == 0 && !ws_session_closing(w)) {
        uint8_t payload[4] = {(uint8_t)(w->pings >> 24), (uint8_t)(w->pings >> 16), (uint8_t)(w->pings >> 8),
                              (uint8_t)w->pings};
        w->pings++;
        struct wslay_event_msg ping = {WSLAY_PING, payload, sizeof payload};
        if (wslay_event_queue_msg(w->wslay, &ping) == 0) {
            w->next_ping = 0;
            w->pong_due = now + w->server->opts.websocket_ping_timeout;
        }
        ws_pump(w);
        if (c->closed)
            return;
    }
    schedule(w);
}

static void ws_on_busy(conn *c)
{
    /* What arrived while reading was paused does not fit the budget. */
    conn_close(c);
}

static void ws_on_stop(conn *c)
{
    ws_session *w = session_of(c);
    if (w->conn == NULL)
        w->conn = c;
    /* Going away: the peer is told, and the connection ends with its
     * answer (bounded by the close timeout and the graceful timeout). */
    if (!ws_session_closing(w))
        ws_session_close(w, WSLAY_CODE_GOING_AWAY, NULL, 0);
    conn_kick(c);
}

static void ws_on_close(conn *c)
{
    ws_session *w = session_of(c);
    c->exchange = NULL;
    int code = WS_CODE_ABNORMAL;
    size_t reason_length = 0;
    if (wslay_event_get_close_received(w->wslay)) {
        code = wslay_event_get_status_code_received(w->wslay);
        reason_length = w->peer_reason_length;
    }
    w->conn = NULL;
    w->handler->on_gone(w->owner, code, (const char *)w->peer_reason, reason_length);
    ws_session_free(w);
}

const protocol ws_protocol = {
    .on_input = ws_on_input,
    .on_writable = ws_on_writable,
    .on_late = ws_on_late,
    .on_busy = ws_on_busy,
    .on_close = ws_on_close,
    .on_stop = ws_on_stop,
};
