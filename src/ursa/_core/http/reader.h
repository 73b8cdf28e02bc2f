/* The HTTP layer without a socket: bytes as a client sends them, read by
 * read, through request_parse and request_parse_body the way a connection
 * drives them (transport/conn.c, http/exchange.c), pipelining included.
 * The in-process tests (probe.c) and the fuzz harness stand on it. */
#ifndef URSA_READER_H
#define URSA_READER_H

#include <llhttp.h>

#include "common/budget.h"
#include "common/buffer.h"
#include "common/options.h"
#include "http/request.h"

typedef struct http_reader http_reader;

/* A complete request (`result` PARSE_REQUEST_READY; its spans point into
 * reader->in.data) or a refusal (PARSE_ERROR: reader->req.error_status).
 * Return 1 to go on, 0 to stop reading, -1 on an error (an exception set). */
typedef int (*http_reader_event)(http_reader *reader, parse_result result, void *context);

struct http_reader {
    llhttp_t parser;
    request req;
    buffer in;
    size_t parsed;
    const server_options *limits;
    budgets budget;
    http_reader_event on_event;
    void *context;
};

void http_reader_init(http_reader *r, const server_options *limits, http_reader_event on_event, void *context);
/* One read. 1 to go on reading, 0 when the connection would end (a
 * refusal, a request without keep-alive, or the event said stop), -1 with
 * an exception. */
int http_reader_read(http_reader *r, const char *data, size_t length);
/* Bytes of a request not complete yet are held. */
int http_reader_pending(const http_reader *r);
void http_reader_free(http_reader *r);

#endif
