/* The negotiation of permessage-deflate (RFC 7692 5 and 7.1): which of the
 * client's offers in Sec-WebSocket-Extensions the server takes, with what
 * parameters, and the value of the 101's Sec-WebSocket-Extensions.
 *
 * An offer the server cannot take (a parameter RFC 7692 does not define
 * for offers, one given twice, a value out of range, a syntax error, a
 * window of 8 bits, which zlib cannot compress with) is declined: the next
 * offer is tried, and without one the handshake goes on uncompressed. */
#ifndef URSA_WS_DEFLATE_OFFER_H
#define URSA_WS_DEFLATE_OFFER_H

#include <stddef.h>
#include <stdint.h>

/* The LZ77 windows (log2 of their bytes) zlib's raw deflate can use. */
#define WS_DEFLATE_MIN_WINDOW_BITS 9
#define WS_DEFLATE_MAX_WINDOW_BITS 15

/* What was agreed. Zeroed: nothing (no offer taken). */
typedef struct ws_deflate_params {
    uint8_t enabled;                    /* an offer was taken */
    uint8_t server_no_context_takeover; /* our compressor starts afresh for each message */
    uint8_t client_no_context_takeover; /* and the client's: so does our inflater */
    uint8_t server_window_bits;         /* our compressor's window */
    uint8_t client_window_bits;         /* the largest the client may use (15: not limited) */
    uint8_t answer_server_window;       /* the answer names server_max_window_bits */
    uint8_t answer_client_window;       /* the answer names client_max_window_bits */
} ws_deflate_params;

/* Take the first acceptable permessage-deflate offer in one field value of
 * Sec-WebSocket-Extensions, our compressor's window kept to at most
 * `window_cap` bits, and the client's too when its offer lets us choose.
 * 1 with `p` set, or 0 (`p` untouched): no acceptable offer in `value`. */
int ws_deflate_offer_take(const char *value, size_t length, unsigned window_cap, ws_deflate_params *p);

/* Room for the answer below: the extension and all four parameters. */
#define WS_DEFLATE_ANSWER_MAX 160

/* The 101's Sec-WebSocket-Extensions value for an offer taken, written
 * into `out` (WS_DEFLATE_ANSWER_MAX bytes, not NUL-terminated): its
 * length. */
size_t ws_deflate_answer(const ws_deflate_params *p, char *out);

#endif
