#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/fields.h"

#include <string.h>
#include <strings.h>

#include "common/charclass.h"
#include "http/head.h"

typedef enum {
    KIND_OTHER,
    KIND_CONTENT_LENGTH,
    KIND_TRANSFER_ENCODING,
    KIND_CONNECTION,
    KIND_HOP_BY_HOP, /* the server's to send (PEP 3333, RFC 9110 7.6.1): dropped */
    KIND_DATE,
    KIND_SERVER,
} field_kind;

static int name_is(const char *name, size_t length, const char *lower, size_t lower_length)
{
    return length == lower_length && strncasecmp(name, lower, lower_length) == 0;
}

#define NAME_IS(name, length, lower) name_is(name, length, lower, sizeof lower - 1)

static field_kind field_kind_of(const char *name, size_t length)
{
    switch (length) {
    case 2:
        return NAME_IS(name, length, "te") ? KIND_HOP_BY_HOP : KIND_OTHER;
    case 4:
        return NAME_IS(name, length, "date") ? KIND_DATE : KIND_OTHER;
    case 6:
        return NAME_IS(name, length, "server") ? KIND_SERVER : KIND_OTHER;
    case 7:
        return NAME_IS(name, length, "trailer") || NAME_IS(name, length, "upgrade") ? KIND_HOP_BY_HOP : KIND_OTHER;
    case 10:
        if (NAME_IS(name, length, "connection"))
            return KIND_CONNECTION;
        return NAME_IS(name, length, "keep-alive") ? KIND_HOP_BY_HOP : KIND_OTHER;
    case 14:
        return NAME_IS(name, length, "content-length") ? KIND_CONTENT_LENGTH : KIND_OTHER;
    case 16:
        return NAME_IS(name, length, "proxy-connection") ? KIND_HOP_BY_HOP : KIND_OTHER;
    case 17:
        return NAME_IS(name, length, "transfer-encoding") ? KIND_TRANSFER_ENCODING : KIND_OTHER;
    default:
        return KIND_OTHER;
    }
}

/* Whether a Connection value holds "close", in any case. */
static int mentions_close(const char *value, size_t length)
{
    for (size_t i = 0; i + 5 <= length; i++)
        if (strncasecmp(value + i, "close", 5) == 0)
            return 1;
    return 0;
}

void response_head_init(response_head *r, int status_code)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    r->status_code = status_code;
}

static field_check check_name(const char *name, size_t length, unsigned char *bad_byte)
{
    if (length == 0)
        return FIELD_NAME_EMPTY;
    for (size_t i = 0; i < length; i++) {
        if (!is_token_char((unsigned char)name[i])) {
            *bad_byte = (unsigned char)name[i];
            return FIELD_NAME_CHARACTER;
        }
    }
    return FIELD_OK;
}

static field_check check_value(const char *value, size_t length, unsigned char *bad_byte)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            *bad_byte = ch;
            return ch == '\r' || ch == '\n' || ch == '\0' ? FIELD_VALUE_BREAK : FIELD_VALUE_CONTROL;
        }
    }
    return FIELD_OK;
}

static int parse_length(const char *value, size_t length, int64_t *out)
{
    int64_t n = 0;
    if (length == 0 || length > 18)
        return -1;
    for (size_t i = 0; i < length; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        n = n * 10 + (value[i] - '0');
    }
    *out = n;
    return 0;
}

field_check response_field_add(response_head *r, buffer *head, const char *name, size_t name_length,
                               const char *value, size_t value_length, unsigned char *bad_byte)
{
    field_check check = check_name(name, name_length, bad_byte);
    if (check == FIELD_OK)
        check = check_value(value, value_length, bad_byte);
    if (check != FIELD_OK)
        return check;
    switch (field_kind_of(name, name_length)) {
    case KIND_CONTENT_LENGTH: {
        int64_t length;
        if (parse_length(value, value_length, &length) < 0)
            return FIELD_LENGTH_INVALID;
        /* Two lengths would let a client and a proxy frame the response
         * differently; the same one twice is harmless and sent once. */
        if (r->content_length >= 0 && length != r->content_length)
            return FIELD_LENGTH_TWICE;
        /* RFC 9110 8.6: a 204 has no Content-Length, nor a 304 another
         * response's length; gunicorn drops both too. */
        if (r->content_length >= 0 || r->status_code == 204 || r->status_code == 304)
            return FIELD_OK;
        r->content_length = length;
        break;
    }
    case KIND_TRANSFER_ENCODING:
        /* The server frames the body itself: "chunked" from the app is
         * dropped; a coding it would have to apply is an error. */
        return NAME_IS(value, value_length, "chunked") ? FIELD_OK : FIELD_CODING;
    case KIND_CONNECTION:
        if (mentions_close(value, value_length))
            r->wants_close = 1;
        return FIELD_OK;
    case KIND_HOP_BY_HOP:
        return FIELD_OK;
    case KIND_DATE:
        r->has_date = 1;
        break;
    case KIND_SERVER:
        r->has_server = 1;
        break;
    case KIND_OTHER:
        break;
    }
    return head_field(head, name, name_length, value, value_length) < 0 ? FIELD_NO_MEMORY : FIELD_OK;
}

const char *field_check_text(field_check check)
{
    switch (check) {
    case FIELD_OK: return "is valid";
    case FIELD_NO_MEMORY: return "does not fit in memory";
    case FIELD_NAME_EMPTY: return "has an empty name";
    case FIELD_NAME_CHARACTER: return "has a name with a character not allowed in a field name";
    case FIELD_VALUE_BREAK: return "has a value with CR, LF or NUL, which would break the response";
    case FIELD_VALUE_CONTROL: return "has a value with a control character";
    case FIELD_LENGTH_INVALID: return "must be a non-negative integer";
    case FIELD_LENGTH_TWICE: return "is given twice with different values";
    case FIELD_CODING:
        return "names a transfer coding: the server chooses the framing, and an app cannot apply a transfer "
               "coding (use Content-Encoding)";
    }
    return "is not valid";
}
