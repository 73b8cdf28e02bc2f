/* Character classes of RFC 9110 and 9112 as one lookup table: checking a
 * header name or a Host value costs a load per byte. */
#ifndef URSA_CHARCLASS_H
#define URSA_CHARCLASS_H

enum {
    CHAR_TOKEN = 1, /* tchar: field names, methods */
    CHAR_HOST = 2,  /* uri-host [":" port]: reg-name, IPv4, IP literal */
};

/* Rows of 16, from 0x00; bytes 0x80 and up are in no class. */
static const unsigned char char_classes[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 3, 0, 1, 3, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 0,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 0, 2, 0, 0,
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 0, 2, 1, 3,
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 1, 0, 3, 0,
};

static inline int is_token_char(unsigned char ch)
{
    return char_classes[ch] & CHAR_TOKEN;
}

static inline int is_host_char(unsigned char ch)
{
    return char_classes[ch] & CHAR_HOST;
}

#endif
