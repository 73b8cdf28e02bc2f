#define ZLIB_CONST 1
#include "ws/deflate.h"

#include <Python.h>
#include <limits.h>
#include <string.h>
#include <zlib.h>

/* zlib counts bytes in a uInt: longer inputs go in pieces of this. */
#define PIECE_MAX (1U << 30)
/* The first room an inflated message gets; it doubles from there. */
#define INFLATE_ROOM_FIRST 4096

/* What a sync flush ends with, and what the receiver puts back (7.2.1). */
static const uint8_t flush_tail[4] = {0x00, 0x00, 0xff, 0xff};

struct ws_deflate {
    ws_deflate_params params;
    z_stream compressor;
    z_stream inflater;
    size_t message_input;        /* compressed bytes of the message being inflated */
    unsigned compressing : 1;    /* the compressor was made */
    unsigned inflating : 1;      /* the inflater was made */
    unsigned inflate_ended : 1;  /* the client's DEFLATE data of this message ended (a final block) */
    unsigned after_end : 1;      /* and the byte that may follow it came */
};

ws_deflate *ws_deflate_new(const ws_deflate_params *params)
{
    ws_deflate *d = PyMem_RawCalloc(1, sizeof *d);
    if (d == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    d->params = *params;
    return d;
}

void ws_deflate_free(ws_deflate *d)
{
    if (d == NULL)
        return;
    if (d->compressing)
        deflateEnd(&d->compressor);
    if (d->inflating)
        inflateEnd(&d->inflater);
    PyMem_RawFree(d);
}

static uInt piece_of(size_t length)
{
    return length > PIECE_MAX ? PIECE_MAX : (uInt)length;
}

/* ---- compressing ---- */

static int start_compressor(ws_deflate *d)
{
    if (d->compressing)
        return 0;
    /* Negative window bits: raw DEFLATE, without zlib's header and check. */
    if (deflateInit2(&d->compressor, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)d->params.server_window_bits,
                     WS_DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
        PyErr_NoMemory();
        return -1;
    }
    d->compressing = 1;
    return 0;
}

int ws_deflate_compress(ws_deflate *d, const char *data, size_t length, buffer *out)
{
    if (start_compressor(d) < 0)
        return -1;
    z_stream *z = &d->compressor;
    out->len = 0;
    size_t left = length;
    z->next_in = (const Bytef *)data;
    do {
        uInt piece = piece_of(left);
        int flush = piece == left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        z->avail_in = piece;
        /* Room for the piece as it is and then some: incompressible data
         * grows by a few bytes per stored block. */
        size_t room = (size_t)piece + piece / 64 + 64;
        do {
            if (buffer_reserve(out, room) < 0)
                return -1;
            uInt given = piece_of(out->cap - out->len);
            z->next_out = (Bytef *)out->data + out->len;
            z->avail_out = given;
            if (deflate(z, flush) == Z_STREAM_ERROR) {
                PyErr_SetString(PyExc_RuntimeError, "zlib could not compress a WebSocket message");
                return -1;
            }
            out->len += given - z->avail_out;
            room = 64 * 1024;
            /* Out of room, zlib may hold more: it is called again. */
        } while (z->avail_out == 0);
        left -= piece;
    } while (left > 0);
    /* A sync flush ends with an empty stored block: the peer puts its four
     * bytes back (7.2.1). */
    if (out->len >= sizeof flush_tail && memcmp(out->data + out->len - sizeof flush_tail, flush_tail,
                                                sizeof flush_tail) == 0)
        out->len -= sizeof flush_tail;
    if (d->params.server_no_context_takeover)
        deflateReset(z);
    return 0;
}

/* ---- inflating ---- */

static int start_inflater(ws_deflate *d)
{
    if (d->inflating)
        return 0;
    /* A client told 8 bits uses at most 256 bytes, which a 512-byte window
     * (zlib's smallest raw one) covers. */
    int bits = d->params.client_window_bits < WS_DEFLATE_MIN_WINDOW_BITS ? WS_DEFLATE_MIN_WINDOW_BITS
                                                                          : d->params.client_window_bits;
    memset(&d->inflater, 0, sizeof d->inflater);
    if (inflateInit2(&d->inflater, -bits) != Z_OK)
        return -1;
    d->inflating = 1;
    return 0;
}

/* More room at the end of a full `out`, up to `limit` bytes in all: 1
 * when there is some, 0 when `out` is at the limit, -1 out of memory. */
static int grow_within(buffer *out, size_t limit)
{
    if (out->cap >= limit)
        return 0;
    size_t extra = out->cap < INFLATE_ROOM_FIRST ? INFLATE_ROOM_FIRST - out->len : 1; /* then it doubles */
    if (buffer_reserve_within(out, extra < limit - out->len ? extra : limit - out->len, limit) < 0) {
        PyErr_Clear();
        return -1;
    }
    return 1;
}

/* Inflate what the inflater was given onto `out`. At the limit, a byte of
 * scratch space tells whether more would come: a message one byte over is
 * never held whole. */
static ws_inflate_result run_inflater(ws_deflate *d, buffer *out, size_t limit)
{
    z_stream *z = &d->inflater;
    for (;;) {
        uint8_t probe;
        int room = out->len < out->cap ? 1 : grow_within(out, limit);
        if (room < 0)
            return WS_INFLATE_NO_MEMORY;
        uInt given;
        if (room) {
            given = piece_of(out->cap - out->len);
            z->next_out = (Bytef *)out->data + out->len;
        } else {
            given = 1;
            z->next_out = &probe;
        }
        z->avail_out = given;
        int status = inflate(z, Z_SYNC_FLUSH);
        size_t produced = given - z->avail_out;
        if (!room && produced > 0)
            return WS_INFLATE_TOO_BIG;
        out->len += produced;
        switch (status) {
        case Z_STREAM_END:
            d->inflate_ended = 1;
            return WS_INFLATE_OK;
        case Z_OK:
        case Z_BUF_ERROR: /* no progress: the input is used up, or the room */
            break;
        case Z_MEM_ERROR:
            return WS_INFLATE_NO_MEMORY;
        default: /* Z_DATA_ERROR, Z_NEED_DICT (a preset dictionary: never in RFC 7692) */
            return WS_INFLATE_INVALID;
        }
        if (z->avail_in == 0 && z->avail_out > 0)
            return WS_INFLATE_OK; /* all taken, and all it gave is out */
    }
}

/* What follows a final block (RFC 7692 7.2.3.3's other flush): the header
 * bits of the empty stored block the receiver completes, one 0x00 byte,
 * or nothing (a sender that skipped it). Anything else is not this
 * message's DEFLATE data. */
static ws_inflate_result after_final_block(ws_deflate *d, const uint8_t *data, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        if (data[i] != 0x00 || d->after_end)
            return WS_INFLATE_INVALID;
        d->after_end = 1;
    }
    return WS_INFLATE_OK;
}

ws_inflate_result ws_deflate_inflate(ws_deflate *d, const uint8_t *data, size_t length, buffer *out, size_t limit)
{
    if (start_inflater(d) < 0)
        return WS_INFLATE_NO_MEMORY;
    z_stream *z = &d->inflater;
    d->message_input += length;
    while (length > 0) {
        if (d->inflate_ended)
            return after_final_block(d, data, length);
        uInt piece = piece_of(length);
        z->next_in = data;
        z->avail_in = piece;
        ws_inflate_result result = run_inflater(d, out, limit);
        if (result != WS_INFLATE_OK)
            return result;
        size_t used = piece - z->avail_in;
        data += used;
        length -= used;
    }
    return WS_INFLATE_OK;
}

ws_inflate_result ws_deflate_inflate_end(ws_deflate *d, buffer *out, size_t limit)
{
    ws_inflate_result result = WS_INFLATE_OK;
    /* An empty payload is an empty message: not DEFLATE data to complete
     * (0x00 is the empty message's), yet there is no doubt what it says. */
    if (d->message_input > 0 && !d->inflate_ended) {
        result = ws_deflate_inflate(d, flush_tail, sizeof flush_tail, out, limit);
        /* The four bytes end an empty stored block: the inflater must now
         * be between blocks (zlib's data_type 128), or the message ended
         * inside one, and what the tail was taken for is garbage. */
        if (result == WS_INFLATE_OK && !d->inflate_ended && !(d->inflater.data_type & 128))
            result = WS_INFLATE_INVALID;
    }
    if (result == WS_INFLATE_OK && d->inflating && (d->params.client_no_context_takeover || d->inflate_ended)) {
        inflateReset(&d->inflater);
        d->inflate_ended = d->after_end = 0;
    }
    d->message_input = 0;
    return result;
}
