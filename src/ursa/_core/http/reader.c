#include "http/reader.h"

#include <string.h>

void http_reader_init(http_reader *r, const server_options *limits, http_reader_event on_event, void *context)
{
    memset(r, 0, sizeof *r);
    r->limits = limits;
    r->budget = (budgets){{0, limits->max_buffered_bytes}, {0, limits->max_spill_bytes}};
    r->on_event = on_event;
    r->context = context;
    body_init(&r->req.body);
    llhttp_init(&r->parser, HTTP_REQUEST, request_parser_settings());
}

/* A request or a refusal is known: tell, and get ready for the next
 * request as the exchange does. */
static int reader_event(http_reader *r, parse_result result)
{
    int going = r->on_event(r, result, r->context);
    if (going <= 0 || result == PARSE_ERROR)
        return going < 0 ? -1 : 0;
    int keep_alive = r->req.keep_alive;
    request_reset(&r->req);
    llhttp_resume(&r->parser);
    buffer_discard_front(&r->in, r->parsed);
    r->parsed = 0;
    return keep_alive;
}

/* Every complete request in `in`, in turn. */
static int reader_parse_buffer(http_reader *r)
{
    while (r->in.len > r->parsed) {
        parse_result result = request_parse(&r->parser, &r->req, &r->in, &r->parsed, r->limits, &r->budget);
        if (result == PARSE_NEED_MORE)
            return 1;
        int going = reader_event(r, result);
        if (going <= 0)
            return going;
    }
    return 1;
}

int http_reader_read(http_reader *r, const char *data, size_t length)
{
    /* A body in progress goes straight to request_parse_body, anything
     * else joins the buffer: transport/conn.c's two ways of reading. */
    if (r->req.headers_complete && !r->req.complete && r->parsed == r->in.len) {
        size_t consumed;
        parse_result result =
            request_parse_body(&r->parser, &r->req, &r->in, data, length, &consumed, r->limits, &r->budget);
        if (result != PARSE_ERROR && consumed < length &&
            buffer_append(&r->in, data + consumed, length - consumed) < 0)
            return -1;
        if (result == PARSE_NEED_MORE)
            return 1;
        int going = reader_event(r, result);
        return going <= 0 ? going : reader_parse_buffer(r);
    }
    if (buffer_append(&r->in, data, length) < 0)
        return -1;
    return reader_parse_buffer(r);
}

int http_reader_pending(const http_reader *r)
{
    return r->in.len > 0 || r->req.headers_complete;
}

void http_reader_free(http_reader *r)
{
    request_free(&r->req);
    buffer_free(&r->in);
}
