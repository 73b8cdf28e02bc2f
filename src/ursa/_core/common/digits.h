/* Numbers as text for heads and peers, where snprintf's format parsing
 * costs more than the number (each response pays it). */
#ifndef URSA_DIGITS_H
#define URSA_DIGITS_H

#include <stddef.h>
#include <stdint.h>

/* The most characters either function writes. */
#define DIGITS_MAX 20

/* `value` in decimal at `out` (room for DIGITS_MAX); returns the length. */
static inline size_t digits_decimal(char *out, uint64_t value)
{
    char reversed[DIGITS_MAX];
    size_t n = 0;
    do {
        reversed[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = reversed[n - 1 - i];
    return n;
}

/* `value` in lower-case hexadecimal (a chunk size). */
static inline size_t digits_hex(char *out, uint64_t value)
{
    static const char hex[] = "0123456789abcdef";
    char reversed[DIGITS_MAX];
    size_t n = 0;
    do {
        reversed[n++] = hex[value & 15];
        value >>= 4;
    } while (value != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = reversed[n - 1 - i];
    return n;
}

#endif
