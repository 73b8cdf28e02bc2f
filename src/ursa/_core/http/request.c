#include "http/request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/charclass.h"

/* Chunk extensions carry nothing a WSGI app can see; a long run of them is
 * only a way to make the server read without end. */
#define MAX_CHUNK_EXTENSION 4096

static request *request_of(llhttp_t *parser)
{
    return (request *)parser->data;
}

static int refuse(request *req, int status, const char *reason)
{
    req->error_status = status;
    req->error_reason = reason;
    return -1;
}

/* Spans grow piecewise as data arrives; the read buffer keeps the head in
 * one contiguous run, so each piece continues the previous one. */
static void span_extend(request *req, span *s, const char *at, size_t length)
{
    if (s->length == 0)
        s->offset = (uint32_t)(at - req->base);
    s->length += (uint32_t)length;
    uint32_t end = s->offset + s->length;
    if (end > req->head_length)
        req->head_length = end;
}

static int on_url(llhttp_t *parser, const char *at, size_t length)
{
    request *req = request_of(parser);
    size_t room = req->limits->max_request_line - req->url.length;
    if (length > room) {
        span_extend(req, &req->url, at, room); /* what fits, for the access log */
        return refuse(req, 414, "request target too long");
    }
    span_extend(req, &req->url, at, length);
    return 0;
}

static header_span *current_header(request *req)
{
    return &req->headers[req->header_count - 1];
}

static int start_header(request *req)
{
    if (req->header_count >= req->limits->max_headers)
        return refuse(req, 431, "too many header fields");
    if (req->header_count == req->header_capacity) {
        uint32_t capacity = req->header_capacity ? req->header_capacity * 2 : 16;
        header_span *headers = realloc(req->headers, capacity * sizeof *headers);
        if (headers == NULL)
            return refuse(req, 500, "out of memory");
        req->headers = headers;
        req->header_capacity = capacity;
    }
    req->headers[req->header_count++] = (header_span){{0, 0}, {0, 0}};
    req->in_header_value = 0;
    req->header_done = 0;
    return 0;
}

static int check_header_line(request *req)
{
    header_span *h = current_header(req);
    if ((size_t)h->name.length + h->value.length > req->limits->max_header_line)
        return refuse(req, 431, "header field too long");
    return 0;
}

/* Trailer fields (after a chunked body) are read and dropped: WSGI has no
 * place for them. They still count against the head size limit. */
static int count_trailer(request *req, size_t length)
{
    req->trailer_length += (uint32_t)length;
    if (req->trailer_length > req->limits->max_header_bytes)
        return refuse(req, 431, "trailer fields too large");
    return 0;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t length)
{
    request *req = request_of(parser);
    if (req->headers_complete)
        return count_trailer(req, length);
    if ((req->header_count == 0 || req->in_header_value) && start_header(req) < 0)
        return -1;
    span_extend(req, &current_header(req)->name, at, length);
    return check_header_line(req);
}

static int on_header_value(llhttp_t *parser, const char *at, size_t length)
{
    request *req = request_of(parser);
    if (req->headers_complete)
        return count_trailer(req, length);
    /* A value with no field since the last one: the line began with ':'. */
    if (req->header_count == 0 || req->header_done)
        return refuse(req, 400, "empty header name");
    req->in_header_value = 1;
    span_extend(req, &current_header(req)->value, at, length);
    return check_header_line(req);
}

static int span_equals(const request *req, span s, const char *text)
{
    size_t n = strlen(text);
    return s.length == n && strncasecmp(req->base + s.offset, text, n) == 0;
}

/* A value without its trailing whitespace (llhttp strips the leading). */
static span trimmed(const request *req, span s)
{
    while (s.length > 0) {
        char last = req->base[s.offset + s.length - 1];
        if (last != ' ' && last != '\t')
            break;
        s.length--;
    }
    return s;
}

/* RFC 9112 3.2: uri-host [":" port], the host a reg-name, an IPv4
 * address or an IP literal in brackets, the port at most 65535. An empty
 * value is allowed: a request target without an authority has one. */
static int is_valid_host(const request *req, span value)
{
    const char *p = req->base + value.offset, *end = p + value.length;
    if (p < end && *p == '[') {
        for (p++; p < end && *p != ']'; p++)
            if (!is_host_char((unsigned char)*p) || *p == '[')
                return 0;
        if (p == end)
            return 0; /* no closing bracket */
        p++;
    } else {
        for (; p < end && *p != ':'; p++)
            if (!is_host_char((unsigned char)*p) || *p == '[' || *p == ']')
                return 0;
    }
    if (p == end)
        return 1;
    if (*p++ != ':')
        return 0;
    /* port = *DIGIT: empty is allowed, more than five digits never fit. */
    unsigned long port = 0;
    if (end - p > 5)
        return 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    return port <= 65535;
}

static int on_header_field_complete(llhttp_t *parser)
{
    request *req = request_of(parser);
    if (req->headers_complete)
        return 0;
    /* No name since the last value: the line began with its colon. */
    if (req->header_count == 0 || req->in_header_value)
        return refuse(req, 400, "empty header name");
    span name = current_header(req)->name;
    if (name.length == 0)
        return refuse(req, 400, "empty header name");
    for (uint32_t i = 0; i < name.length; i++) {
        /* "Host : x" included: a proxy may read that field differently. */
        if (!is_token_char((unsigned char)req->base[name.offset + i]))
            return refuse(req, 400, "invalid character in a header name");
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *parser)
{
    request *req = request_of(parser);
    if (req->headers_complete || req->header_count == 0)
        return 0;
    req->header_done = 1;
    header_span *h = current_header(req);
    /* From the colon to the end of the value: a CR or LF there is line
     * folding (obs-fold), even when llhttp's value span starts after it. */
    if (h->value.length > 0) {
        const char *from = req->base + h->name.offset + h->name.length;
        const char *to = req->base + h->value.offset + h->value.length;
        if (memchr(from, '\r', (size_t)(to - from)) || memchr(from, '\n', (size_t)(to - from)))
            return refuse(req, 400, "obsolete line folding in a header value");
    }
    /* The value as every interface gives it: without trailing whitespace. */
    h->value = trimmed(req, h->value);
    if (span_equals(req, h->name, "host")) {
        if (req->has_host)
            return refuse(req, 400, "more than one Host header");
        if (!is_valid_host(req, h->value))
            return refuse(req, 400, "invalid Host header");
        req->has_host = 1;
    } else if (span_equals(req, h->name, "transfer-encoding")) {
        /* Only "chunked", once: any other coding would reach the app still
         * encoded, and a repeated one is a smuggling attempt. */
        if (req->chunked)
            return refuse(req, 400, "repeated Transfer-Encoding");
        /* RFC 9112 6.1: in HTTP/1.0 its framing is faulty, whatever it says. */
        if (parser->http_major == 1 && parser->http_minor == 0)
            return refuse(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (!span_equals(req, h->value, "chunked"))
            return refuse(req, 501, "Transfer-Encoding other than chunked is not supported");
        req->chunked = 1;
    } else if (span_equals(req, h->name, "expect")) {
        if (!span_equals(req, h->value, "100-continue"))
            return refuse(req, 417, "unsupported expectation");
        req->expect_continue = 1;
    } else if (h->name.length >= 9 && (span_equals(req, h->name, "forwarded") ||
                                       (h->name.length >= 15 && strncasecmp(req->base + h->name.offset,
                                                                            "x-forwarded-", 12) == 0))) {
        req->has_forwarded = 1; /* read at dispatch, if the peer is a trusted proxy */
    }
    return 0;
}

/* Whether the request line ends " HTTP/d.d": llhttp also parses RTSP
 * and ICE request lines, and lets text follow the version. */
static int is_http_request_line(const request *req)
{
    const char *v = req->base + req->url.offset + req->url.length;
    return req->url.length > 0 && v + 10 <= req->end && memcmp(v, " HTTP/", 6) == 0 &&
           (v[9] == '\r' || v[9] == '\n');
}

static int on_headers_complete(llhttp_t *parser)
{
    request *req = request_of(parser);
    req->headers_complete = 1;
    req->method = (uint8_t)parser->method;
    req->http_major = parser->http_major;
    req->http_minor = parser->http_minor;
    /* Known here already, for an interface that answers from the head on
     * (a streamed body); confirmed at the message's end. */
    req->keep_alive = llhttp_should_keep_alive(parser) && !parser->upgrade;
    req->upgrade = parser->upgrade != 0;
    if (parser->http_major != 1 || parser->http_minor > 1)
        return refuse(req, 505, "HTTP version not supported");
    if (!is_http_request_line(req))
        return refuse(req, 400, "not an HTTP request");
    if (parser->method == HTTP_CONNECT)
        return refuse(req, 501, "CONNECT is not supported");
    if (parser->http_minor == 1 && !req->has_host)
        return refuse(req, 400, "missing Host header");
    if (req->head_length > req->limits->max_header_bytes)
        return refuse(req, 431, "request head too large");
    req->has_content_length = (parser->flags & F_CONTENT_LENGTH) != 0;
    uint64_t declared = req->has_content_length ? parser->content_length : 0;
    if (declared > req->limits->max_body_size)
        return refuse(req, 413, "request body too large");
    int body_follows = declared > 0 || req->chunked;
    /* 100 Continue is owed only to a 1.1 client about to send a body. */
    req->expect_continue = req->expect_continue && body_follows && parser->http_minor == 1;
    if (declared > 0)
        body_expect(&req->body, declared, req->limits->body_buffer_size, req->budget);
    return 0;
}

/* llhttp (unless built in its strict mode) skips the two bytes after a
 * chunk's data without looking at them; anything but CRLF there means the
 * client and a proxy before us may disagree on where the body ends. */
static int check_chunk_crlf(request *req, const char *p, const char *end)
{
    for (; req->crlf_pending > 0 && p < end; p++, req->crlf_pending--) {
        if (*p != (req->crlf_pending == 2 ? '\r' : '\n'))
            return refuse(req, 400, "chunk data not followed by CRLF");
    }
    return 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t length)
{
    request *req = request_of(parser);
    if (req->body.size + length > req->limits->max_body_size)
        return refuse(req, 413, "request body too large");
    if (body_append(&req->body, at, length, req->limits->body_buffer_size, req->budget) < 0) {
        if (errno == ENOSPC)
            return refuse(req, 503, "the server's room for request bodies is full; try again later");
        return refuse(req, 500, "cannot store the request body");
    }
    if (req->chunked) {
        req->chunk_left -= length;
        if (req->chunk_left == 0) {
            req->crlf_pending = 2;
            return check_chunk_crlf(req, at + length, req->end);
        }
    }
    return 0;
}

static int on_chunk_header(llhttp_t *parser)
{
    request *req = request_of(parser);
    req->chunk_extension = 0;
    req->chunk_left = parser->content_length;
    /* Refuse a chunk that cannot fit at its header, before spooling any
     * of it. */
    if (req->chunk_left > req->limits->max_body_size - req->body.size)
        return refuse(req, 413, "request body too large");
    return 0;
}

static int on_chunk_extension(llhttp_t *parser, const char *at, size_t length)
{
    request *req = request_of(parser);
    (void)at;
    req->chunk_extension += (uint32_t)length;
    if (req->chunk_extension > MAX_CHUNK_EXTENSION)
        return refuse(req, 400, "chunk extension too long");
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    request *req = request_of(parser);
    req->complete = 1;
    req->keep_alive = llhttp_should_keep_alive(parser) && !parser->upgrade;
    /* One request at a time: pipelined bytes wait until this is answered. */
    return HPE_PAUSED;
}

/* Fixed at compile time: every connection's parser shares them. */
static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_message_complete = on_message_complete,
};

const llhttp_settings_t *request_parser_settings(void)
{
    return &settings;
}

static int has_numeric_version(const request *req)
{
    size_t from = (size_t)req->url.offset + req->url.length;
    if (req->url.length == 0 || req->base + from + 9 > req->end)
        return 0;
    const char *v = req->base + from;
    /* llhttp refuses the version at its last digit: what follows may not
     * have been read yet, and the answer must not depend on that. */
    const char *after = v + 9;
    return memcmp(v, " HTTP/", 6) == 0 && v[6] >= '0' && v[6] <= '9' && v[7] == '.' && v[8] >= '0' &&
           v[8] <= '9' && (after == req->end || *after == '\r' || *after == '\n');
}

static void refuse_from_parser(llhttp_t *parser, request *req, llhttp_errno_t err)
{
    if (req->error_status != 0)
        return;
    switch (err) {
    case HPE_INVALID_VERSION:
        /* "HTTP/" digit "." digit that llhttp does not know is a version we
         * do not support; anything else is not HTTP at all. */
        if (has_numeric_version(req))
            refuse(req, 505, "HTTP version not supported");
        else
            refuse(req, 400, "malformed HTTP version");
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        refuse(req, 501, "Transfer-Encoding other than chunked is not supported");
        break;
    default:
        refuse(req, 400, llhttp_get_error_reason(parser));
        break;
    }
}

/* Run llhttp over [start, start + available); the head the spans point
 * into begins at `base`. Sets *consumed. 0, or -1 (refused). */
static int execute(llhttp_t *parser, request *req, const char *base, const char *start, size_t available,
                   size_t *consumed, const server_options *limits, budgets *budget)
{
    req->base = base;
    req->end = start + available;
    req->limits = limits;
    req->budget = budget;
    parser->data = req;
    if (req->crlf_pending > 0 && check_chunk_crlf(req, start, req->end) < 0)
        return -1;
    llhttp_errno_t err = llhttp_execute(parser, start, available);
    *consumed = available;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        *consumed = (size_t)(llhttp_get_error_pos(parser) - start);
    } else if (err != HPE_OK) {
        refuse_from_parser(parser, req, err);
        return -1;
    }
    return 0;
}

parse_result request_parse_body(llhttp_t *parser, request *req, const buffer *in, const char *data,
                                size_t length, size_t *consumed, const server_options *limits, budgets *budget)
{
    if (execute(parser, req, in->data, data, length, consumed, limits, budget) < 0)
        return PARSE_ERROR;
    return req->complete ? PARSE_REQUEST_READY : PARSE_NEED_MORE;
}

parse_result request_parse(llhttp_t *parser, request *req, buffer *in, size_t *parsed,
                           const server_options *limits, budgets *budget)
{
    size_t consumed;
    if (execute(parser, req, in->data, in->data + *parsed, in->len - *parsed, &consumed, limits, budget) < 0)
        return PARSE_ERROR;
    *parsed += consumed;

    if (req->headers_complete) {
        /* Body bytes are in req->body now: keep only the head (the spans
         * point into it) and whatever follows this message. */
        size_t keep = req->head_length;
        if (*parsed > keep) {
            size_t rest = in->len - *parsed;
            memmove(in->data + keep, in->data + *parsed, rest);
            in->len = keep + rest;
            *parsed = keep;
        }
    } else if (*parsed > limits->max_header_bytes + limits->max_request_line) {
        refuse(req, 431, "request head too large");
        return PARSE_ERROR;
    }
    return req->complete ? PARSE_REQUEST_READY : PARSE_NEED_MORE;
}

void request_reset(request *req)
{
    header_span *headers = req->headers;
    uint32_t capacity = req->header_capacity;
    body_free(&req->body);
    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->header_capacity = capacity;
    body_init(&req->body);
}

void request_free(request *req)
{
    body_free(&req->body);
    free(req->headers);
    req->headers = NULL;
    req->header_capacity = 0;
}
