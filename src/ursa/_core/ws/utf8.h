/* UTF-8 (RFC 3629) checked as it arrives, a piece at a time: a code point
 * may be split across pieces. wslay checks the text it frames itself; the
 * text of a compressed message exists only once inflated, so this checks
 * it then (ws/session.c). */
#ifndef URSA_WS_UTF8_H
#define URSA_WS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Where a check stands between pieces: the continuation bytes the current
 * code point still needs, and the range the next one must fall in (the
 * second byte's range excludes overlong forms, surrogates and code points
 * past U+10FFFF). Zeroed: at the start of a text. */
typedef struct ws_utf8 {
    uint8_t needed;
    uint8_t low;
    uint8_t high;
} ws_utf8;

static inline void ws_utf8_reset(ws_utf8 *u)
{
    u->needed = u->low = u->high = 0;
}

/* Check the next `length` bytes: 0, or -1 at the first byte that cannot
 * be UTF-8 (the state is then meaningless). */
int ws_utf8_feed(ws_utf8 *u, const uint8_t *bytes, size_t length);

/* Whether the text checked so far ends between code points. */
static inline int ws_utf8_complete(const ws_utf8 *u)
{
    return u->needed == 0;
}

#endif
