#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/target.h"

#include <string.h>
#include <strings.h>

void target_split(const char *target, size_t length, target_parts *parts)
{
    const char *end = target + length;
    const char *fragment = memchr(target, '#', length);
    if (fragment != NULL)
        end = fragment;
    const char *path = target;
    if (length > 7 && (strncasecmp(target, "http://", 7) == 0 || strncasecmp(target, "https://", 8) == 0)) {
        const char *authority = target + ((target[4] | 0x20) == 's' ? 8 : 7);
        path = memchr(authority, '/', (size_t)(end - authority));
        if (path == NULL)
            path = end;
    }
    const char *query = memchr(path, '?', (size_t)(end - path));
    parts->path = path;
    parts->path_length = (size_t)((query ? query : end) - path);
    parts->query = query ? query + 1 : NULL;
    parts->query_length = query ? (size_t)(end - query - 1) : 0;
}

int target_under_prefix(const char *path, size_t length, const char *prefix, size_t prefix_length)
{
    return length >= prefix_length && memcmp(path, prefix, prefix_length) == 0 &&
           (length == prefix_length || path[prefix_length] == '/');
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 0x20);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

size_t target_decode(const char *path, size_t length, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        int high, low;
        if (path[i] == '%' && i + 2 < length && (high = hex_value(path[i + 1])) >= 0 &&
            (low = hex_value(path[i + 2])) >= 0) {
            out[n++] = (char)(high * 16 + low);
            i += 2;
        } else {
            out[n++] = path[i];
        }
    }
    return n;
}
