/* Response heads, the app's and the server's own, serialised in one place:
 * the status line and the fields as given, then what the server adds
 * (Date, Server, the framing, Connection) and the blank line. */
#ifndef URSA_HEAD_H
#define URSA_HEAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/buffer.h"

typedef enum {
    FRAMING_NONE,    /* no body: HEAD, 204, 304 */
    FRAMING_LENGTH,  /* Content-Length */
    FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
    FRAMING_CLOSE,   /* HTTP/1.0 without a length: the close ends the body */
} framing;

/* What the server adds to a head. */
typedef struct head_tail {
    const char *date_line;  /* "Date: ...\r\n", or NULL when the app sent one */
    int add_server;         /* the app sent no Server */
    framing framing;
    int64_t add_length;     /* a Content-Length the server adds, or -1 */
    int keep_alive;
    int http10;             /* keep-alive must then be said */
} head_tail;

/* "HTTP/1.1 " status "\r\n", replacing what `head` held. 0, or -1 with
 * MemoryError. Inline, as this and head_field run a dozen times per
 * response. */
static inline int head_begin(buffer *head, const char *status, size_t length)
{
    head->len = 0;
    if (buffer_reserve(head, length + 11) < 0)
        return -1;
    buffer_append(head, "HTTP/1.1 ", 9);
    buffer_append(head, status, length);
    buffer_append(head, "\r\n", 2);
    return 0;
}

/* "name: value\r\n". 0, or -1 with MemoryError. */
static inline int head_field(buffer *head, const char *name, size_t name_length, const char *value,
                             size_t value_length)
{
    if (buffer_reserve(head, name_length + value_length + 4) < 0)
        return -1;
    buffer_append(head, name, name_length);
    buffer_append(head, ": ", 2);
    buffer_append(head, value, value_length);
    buffer_append(head, "\r\n", 2);
    return 0;
}
/* The server's fields and the blank line. 0, or -1 with MemoryError. */
int head_end(buffer *head, const head_tail *tail);

/* The HTTP date of `second`, as a "Date: ...\r\n" line, cached per second. */
typedef struct date_cache {
    time_t second;
    char line[48]; /* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
} date_cache;

const char *date_line(date_cache *cache, time_t second);

/* The registered reason phrase of a status, or "" for an unregistered one. */
const char *head_reason_phrase(int status);

#endif
