#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/header_names.h"

#include <string.h>
#include <strings.h>

const char *const common_header_names[URSA_COMMON_HEADERS] = {
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-type",
    "content-length",
    "cookie",
    "referer",
    "cache-control",
    "origin",
    "authorization",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-requested-with",
    "if-none-match",
    "if-modified-since",
    "upgrade-insecure-requests",
    "pragma",
    "expect",
    "transfer-encoding",
};

int common_header_index(const char *name, size_t length)
{
    for (int i = 0; i < URSA_COMMON_HEADERS; i++) {
        const char *candidate = common_header_names[i];
        if (strncasecmp(candidate, name, length) == 0 && candidate[length] == '\0')
            return i;
    }
    return -1;
}
