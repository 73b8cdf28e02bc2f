/* The request being read on a connection: llhttp's callbacks record spans
 * (offsets into the connection's read buffer) and copy the decoded body
 * aside. No Python objects are made here; environ.c does that once the
 * request is complete. */
#ifndef URSA_REQUEST_H
#define URSA_REQUEST_H

#include <llhttp.h>
#include <stdint.h>

#include "http/body.h"
#include "common/budget.h"
#include "common/buffer.h"
#include "common/options.h"

typedef struct span {
    uint32_t offset;
    uint32_t length;
} span;

typedef struct header_span {
    span name;
    span value;
} header_span;

typedef struct request {
    span url;
    header_span *headers;
    uint32_t header_count;
    uint32_t header_capacity;
    uint32_t head_length;     /* bytes of request line + headers */
    uint32_t trailer_length;  /* bytes of trailer fields */
    uint32_t chunk_extension; /* bytes of the current chunk's extensions */
    uint64_t chunk_left;      /* data bytes of the current chunk still to come */
    uint8_t crlf_pending;     /* bytes of the CRLF after chunk data to check */
    uint8_t method;
    uint8_t http_major, http_minor;
    unsigned started : 1;          /* the first byte has arrived */
    unsigned in_header_value : 1;  /* the last callback was a header value */
    unsigned header_done : 1;      /* the last header's value is complete */
    unsigned headers_complete : 1;
    unsigned complete : 1;
    unsigned keep_alive : 1;
    unsigned expect_continue : 1;  /* "Expect: 100-continue" with a body to come */
    unsigned chunked : 1;
    unsigned has_content_length : 1;
    unsigned has_host : 1;
    unsigned has_forwarded : 1;    /* a Forwarded or X-Forwarded-* field (forwarded.c) */
    unsigned upgrade : 1;          /* Upgrade with Connection: upgrade (a protocol switch asked) */
    /* Why the request is refused: an HTTP status and a short reason. */
    int error_status;
    const char *error_reason;
    body body;
    /* Set for the duration of request_parse, for the callbacks. */
    const char *base;
    const char *end;
    const server_options *limits;
    budgets *budget;
} request;

typedef enum {
    PARSE_NEED_MORE,     /* everything was consumed; read more */
    PARSE_REQUEST_READY, /* a whole request is in; dispatch it */
    PARSE_ERROR,         /* refuse it: request.error_status/error_reason */
} parse_result;

/* The llhttp settings every connection's parser uses. */
const llhttp_settings_t *request_parser_settings(void);

/* Parse bytes [*parsed, in->len) of the read buffer. Advances *parsed past
 * what was consumed; once the head is complete, body bytes already copied
 * into request.body are dropped from the buffer. */
parse_result request_parse(llhttp_t *parser, request *req, buffer *in, size_t *parsed,
                           const server_options *limits, budgets *budget);

/* Parse body bytes read into a buffer of their own, `data`, while `in`
 * keeps the complete head the spans point into. Sets *consumed: bytes past
 * it belong to the next request. */
parse_result request_parse_body(llhttp_t *parser, request *req, const buffer *in, const char *data,
                                size_t length, size_t *consumed, const server_options *limits, budgets *budget);

/* Forget the finished request (keeping allocations for the next one). */
void request_reset(request *req);
void request_free(request *req);

#endif
