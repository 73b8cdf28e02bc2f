#include "ws/utf8.h"

#include <string.h>

#define ASCII_MASK 0x8080808080808080ULL

/* A lead byte: how many continuation bytes follow, and the range of the
 * first of them. 0 with `needed` left unset: not a lead byte. */
static int read_lead(ws_utf8 *u, uint8_t byte)
{
    uint8_t low = 0x80, high = 0xbf;
    if (byte >= 0xc2 && byte <= 0xdf) {
        u->needed = 1;
    } else if (byte >= 0xe0 && byte <= 0xef) {
        u->needed = 2;
        if (byte == 0xe0)
            low = 0xa0; /* below: overlong */
        else if (byte == 0xed)
            high = 0x9f; /* above: the surrogates U+D800-DFFF */
    } else if (byte >= 0xf0 && byte <= 0xf4) {
        u->needed = 3;
        if (byte == 0xf0)
            low = 0x90; /* below: overlong */
        else if (byte == 0xf4)
            high = 0x8f; /* above: past U+10FFFF */
    } else {
        return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5-0xff */
    }
    u->low = low;
    u->high = high;
    return 1;
}

int ws_utf8_feed(ws_utf8 *u, const uint8_t *bytes, size_t length)
{
    size_t i = 0;
    while (i < length) {
        if (u->needed == 0) {
            /* Text is mostly ASCII: eight bytes at a time while it is. */
            while (length - i >= 8) {
                uint64_t word;
                memcpy(&word, bytes + i, sizeof word);
                if (word & ASCII_MASK)
                    break;
                i += 8;
            }
            if (i == length)
                break;
            uint8_t byte = bytes[i++];
            if (byte < 0x80)
                continue;
            if (!read_lead(u, byte))
                return -1;
        } else {
            uint8_t byte = bytes[i++];
            if (byte < u->low || byte > u->high)
                return -1;
            u->needed--;
            u->low = 0x80;
            u->high = 0xbf;
        }
    }
    return 0;
}
