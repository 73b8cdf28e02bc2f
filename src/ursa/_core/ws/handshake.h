/* The WebSocket opening handshake (RFC 6455 4.2), read from a request the
 * HTTP layer parsed: whether the client asks for a WebSocket, whether its
 * handshake is valid (a clear 400 or 426 otherwise), the accept key, the
 * permessage-deflate offer taken (ws/deflate_offer.c), and the heads of
 * the answers (the 101, the refusals). */
#ifndef URSA_WS_HANDSHAKE_H
#define URSA_WS_HANDSHAKE_H

#include <stddef.h>

#include "common/buffer.h"
#include "http/exchange.h"
#include "ws/deflate_offer.h"

/* Sec-WebSocket-Accept: base64 of a SHA-1, and its NUL. */
#define WS_ACCEPT_LENGTH 28

typedef enum {
    WS_NOT_ASKED, /* no Upgrade: websocket; an ordinary request */
    WS_VALID,     /* a valid handshake: `accept` is set */
    WS_INVALID,   /* answer `status` (400, 426) with `reason` */
} ws_handshake_result;

typedef struct ws_handshake {
    ws_handshake_result result;
    int status;
    const char *reason;
    char accept[WS_ACCEPT_LENGTH + 1];
    ws_deflate_params deflate; /* the offer taken, if the options allow one */
} ws_handshake;

/* Read the request's handshake into `h` (h->result says what it is).
 * 0, or -1 with an exception (the accept key could not be computed). */
int ws_handshake_read(const exchange *x, ws_handshake *h);

/* Answer an invalid handshake: its status, a one-line reason, and for a
 * 426 the version the server speaks. The connection closes after it.
 * 0, or -1 with an exception. */
int ws_handshake_refuse(exchange *x, const ws_handshake *h);

/* Begin the 101 in `head`: the status line, Upgrade, Connection, the
 * accept key (ws_handshake.accept), the subprotocol chosen (NULL: none)
 * and permessage-deflate's answer when an offer was taken. The app's
 * fields may follow; exchange_switch_protocols ends it. 0, or -1 with
 * MemoryError. */
int ws_handshake_accept_head(buffer *head, const char *accept, const char *subprotocol, size_t length,
                             const ws_deflate_params *deflate);

/* Whether a field name is one ws_handshake_accept_head writes (in any
 * case): an app's copy would be a second field the client fails the
 * connection on, or an extension nothing here speaks. */
int ws_handshake_writes_field(const char *name, size_t length);

/* Comma-separated list elements (RFC 9110 5.6.1) of a field value: the
 * next one from *at (advanced past it), without its whitespace; empty
 * elements are skipped. Returns 0 at the end. */
int ws_next_element(const char **at, const char *end, const char **element, size_t *length);

/* Whether a field name is `lower` (given in lower case), in any case. */
int ws_name_is(const char *name, size_t length, const char *lower);

#endif
