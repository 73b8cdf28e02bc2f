/* A response's fields as an app gives them, for every interface: which
 * bytes a name or value may hold, and what the server does with the fields
 * it owns. Content-Length is read (the exchange frames by it), a
 * Transfer-Encoding other than chunked is refused, Connection: close is
 * noted, hop-by-hop fields are dropped, Date and Server are noted (the
 * server adds its own otherwise); every other field goes into the head
 * as given. No Python here: an interface says what went wrong in its own
 * words. */
#ifndef URSA_FIELDS_H
#define URSA_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buffer.h"

/* What an app's response head says, beyond its status line and fields. */
typedef struct response_head {
    int status_code;
    int64_t content_length; /* the app's Content-Length, or -1 */
    unsigned has_date : 1;
    unsigned has_server : 1;
    unsigned wants_close : 1; /* the app sent Connection: close */
} response_head;

typedef enum {
    FIELD_OK,
    FIELD_NO_MEMORY,       /* MemoryError is set */
    FIELD_NAME_EMPTY,
    FIELD_NAME_CHARACTER,  /* a byte that is not a tchar: field_bad_byte says which */
    FIELD_VALUE_BREAK,     /* CR, LF or NUL: it would end the field early */
    FIELD_VALUE_CONTROL,   /* another control character (RFC 9110 5.5) */
    FIELD_LENGTH_INVALID,  /* Content-Length that is not a non-negative integer */
    FIELD_LENGTH_TWICE,    /* two different Content-Length values */
    FIELD_CODING,          /* a transfer coding the server would have to apply */
} field_check;

/* A new response head: `status_code` and no fields. */
void response_head_init(response_head *r, int status_code);

/* Check one field and apply the rules above, adding it to `head` when it
 * goes out as given. *bad_byte is set for FIELD_NAME_CHARACTER and the
 * FIELD_VALUE_* checks. */
field_check response_field_add(response_head *r, buffer *head, const char *name, size_t name_length,
                               const char *value, size_t value_length, unsigned char *bad_byte);

/* The reason for a refused field, for an error message. */
const char *field_check_text(field_check check);

#endif
