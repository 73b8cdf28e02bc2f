/* permessage-deflate's compression (RFC 7692 7.2) for one connection:
 * zlib's raw DEFLATE, a compressor for the messages the app sends and an
 * inflater for those the client compressed, each made on first use and
 * kept for the connection's life (context takeover), or started afresh
 * for each message when the negotiation said so.
 *
 * Memory: the compressor takes (1 << (window_bits + 2)) + (1 << (memLevel
 * + 9)) bytes and 6 KiB of zlib's state, the inflater 1 << window_bits and
 * 7 KiB; with ursa's default window of 12 bits and memLevel 5 that is
 * 38 KiB and 11 KiB, and 38 KiB + 39 KiB when the client does not let the
 * server choose its window (README: WebSockets). An inflated message is
 * never given more room than the message size limit. */
#ifndef URSA_WS_DEFLATE_H
#define URSA_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buffer.h"
#include "ws/deflate_offer.h"

/* zlib's memLevel for our compressor: its hash table and pending output
 * take 16 KiB at 5 (zlib's default of 8 takes 128 KiB), for a ratio a few
 * percent worse on large messages. The websockets library's choice too. */
#define WS_DEFLATE_MEM_LEVEL 5

/* A message the app sends shorter than this goes uncompressed (RFC 7692
 * lets each message choose): the frame's and TCP/IP's headers outweigh
 * what DEFLATE saves on so little, and each compressed message costs a
 * zlib call and a copy. */
#define WS_DEFLATE_THRESHOLD 128

typedef struct ws_deflate ws_deflate;

typedef enum {
    WS_INFLATE_OK,
    WS_INFLATE_TOO_BIG,   /* the message inflates past the limit */
    WS_INFLATE_INVALID,   /* not DEFLATE data, or data after its final block */
    WS_INFLATE_NO_MEMORY,
} ws_inflate_result;

/* The streams of a connection that agreed on `params` (none is made yet).
 * NULL with MemoryError. */
ws_deflate *ws_deflate_new(const ws_deflate_params *params);
void ws_deflate_free(ws_deflate *d);

/* A message's payload compressed into `out` (its contents replaced): the
 * DEFLATE blocks, flushed, without the 0x00 0x00 0xff 0xff that ends them
 * (7.2.1). 0, or -1 with MemoryError. */
int ws_deflate_compress(ws_deflate *d, const char *data, size_t length, buffer *out);

/* The next piece of a compressed message's payload, inflated onto the end
 * of `out`, which never grows past `limit` bytes. */
ws_inflate_result ws_deflate_inflate(ws_deflate *d, const uint8_t *data, size_t length, buffer *out, size_t limit);
/* The end of a compressed message: the 0x00 0x00 0xff 0xff the sender
 * left out is inflated (7.2.2), and the inflater starts afresh if the
 * client takes no context over (or ended its DEFLATE data). */
ws_inflate_result ws_deflate_inflate_end(ws_deflate *d, buffer *out, size_t limit);

#endif
