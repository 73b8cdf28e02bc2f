#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "ws/handshake.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 1.3: the key, then this, hashed, is the accept value. */
static const char accept_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/* A key is 16 random bytes in base64: 22 characters and "==". */
#define KEY_LENGTH 24

int ws_name_is(const char *name, size_t length, const char *lower)
{
    return strlen(lower) == length && strncasecmp(name, lower, length) == 0;
}

/* The handshake's fields as the request gave them. */
typedef struct ws_counted {
    const char *key, *version;
    size_t key_length, version_length;
    int keys, versions;
    int asks_websocket; /* Upgrade names websocket */
    int says_upgrade;   /* Connection names upgrade */
} ws_counted;

/* permessage-deflate, when the options allow it: the first acceptable
 * offer, the field values of Sec-WebSocket-Extensions read in order. */
static void take_deflate_offer(const exchange *x, ws_deflate_params *deflate)
{
    const server_options *opts = &exchange_server(x)->opts;
    if (!opts->websocket_per_message_deflate)
        return;
    const request *req = exchange_request(x);
    const char *base = exchange_request_bytes(x);
    for (uint32_t i = 0; i < req->header_count; i++) {
        const header_span *field = &req->headers[i];
        if (ws_name_is(base + field->name.offset, field->name.length, "sec-websocket-extensions") &&
            ws_deflate_offer_take(base + field->value.offset, field->value.length,
                                  (unsigned)opts->websocket_deflate_window_bits, deflate))
            return;
    }
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

int ws_next_element(const char **at, const char *end, const char **element, size_t *length)
{
    const char *p = *at;
    while (p < end) {
        while (p < end && (is_space(*p) || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',')
            p++;
        const char *stop = p;
        while (stop > start && is_space(stop[-1]))
            stop--;
        if (stop > start) {
            *element = start;
            *length = (size_t)(stop - start);
            *at = p;
            return 1;
        }
    }
    *at = end;
    return 0;
}

static int has_element(const char *value, size_t length, const char *lower)
{
    const char *at = value, *element;
    size_t element_length;
    while (ws_next_element(&at, value + length, &element, &element_length))
        if (ws_name_is(element, element_length, lower))
            return 1;
    return 0;
}

static int is_base64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
           ch == '/';
}

/* 16 bytes exactly: 21 whole characters, a 22nd that carries only 2 bits
 * (its low 4 bits zero: A, Q, g or w), and the padding. */
static int is_valid_key(const char *key, size_t length)
{
    if (length != KEY_LENGTH || key[22] != '=' || key[23] != '=')
        return 0;
    for (int i = 0; i < 21; i++)
        if (!is_base64_char(key[i]))
            return 0;
    return strchr("AQgw", key[21]) != NULL && key[21] != '\0';
}

/* SHA-1 and base64 are the interpreter's own (hashlib, binascii): no
 * library to link for one hash per handshake. 0, or -1 with an exception. */
static int compute_accept(const char *key, char *accept)
{
    char joined[KEY_LENGTH + sizeof accept_guid];
    memcpy(joined, key, KEY_LENGTH);
    memcpy(joined + KEY_LENGTH, accept_guid, sizeof accept_guid - 1);
    PyObject *hashlib = NULL, *binascii = NULL, *hash = NULL, *digest = NULL, *encoded = NULL;
    int result = -1;
    hashlib = PyImport_ImportModule("hashlib");
    binascii = hashlib ? PyImport_ImportModule("binascii") : NULL;
    hash = binascii ? PyObject_CallMethod(hashlib, "sha1", "y#", joined, (Py_ssize_t)(sizeof joined - 1)) : NULL;
    digest = hash ? PyObject_CallMethod(hash, "digest", NULL) : NULL;
    encoded = digest ? PyObject_CallMethod(binascii, "b2a_base64", "O", digest) : NULL;
    if (encoded == NULL)
        goto cleanup;
    /* 28 characters, then the newline b2a_base64 adds. */
    if (!PyBytes_Check(encoded) || PyBytes_GET_SIZE(encoded) < WS_ACCEPT_LENGTH) {
        PyErr_SetString(PyExc_RuntimeError, "unexpected base64 of a SHA-1 digest");
        goto cleanup;
    }
    memcpy(accept, PyBytes_AS_STRING(encoded), WS_ACCEPT_LENGTH);
    accept[WS_ACCEPT_LENGTH] = '\0';
    result = 0;
cleanup:
    Py_XDECREF(encoded);
    Py_XDECREF(digest);
    Py_XDECREF(hash);
    Py_XDECREF(binascii);
    Py_XDECREF(hashlib);
    return result;
}

/* What is wrong with a handshake the client asked for: NULL when nothing
 * is, else the reason, and *status the answer's. */
static const char *handshake_fault(const request *req, const ws_counted *seen, int *status)
{
    *status = 400;
    if (req->method != HTTP_GET)
        return "a WebSocket handshake is a GET request";
    if (req->http_minor != 1)
        return "a WebSocket handshake needs HTTP/1.1";
    if (!seen->says_upgrade)
        return "a WebSocket handshake needs Connection: Upgrade";
    if (req->chunked || (req->has_content_length && !req->complete))
        return "a WebSocket handshake has no body";
    if (seen->versions != 1 || seen->version_length != 2 || memcmp(seen->version, "13", 2) != 0) {
        *status = 426;
        return "the server speaks WebSocket version 13";
    }
    if (seen->keys != 1 || !is_valid_key(seen->key, seen->key_length))
        return "Sec-WebSocket-Key must be 16 bytes in base64";
    return NULL;
}

int ws_handshake_read(const exchange *x, ws_handshake *h)
{
    const request *req = exchange_request(x);
    const char *base = exchange_request_bytes(x);
    ws_counted seen;
    memset(&seen, 0, sizeof seen);
    memset(h, 0, sizeof *h);
    for (uint32_t i = 0; i < req->header_count; i++) {
        const header_span *field = &req->headers[i];
        const char *name = base + field->name.offset, *value = base + field->value.offset;
        size_t name_length = field->name.length, value_length = field->value.length;
        if (ws_name_is(name, name_length, "upgrade")) {
            seen.asks_websocket |= has_element(value, value_length, "websocket");
        } else if (ws_name_is(name, name_length, "connection")) {
            seen.says_upgrade |= has_element(value, value_length, "upgrade");
        } else if (ws_name_is(name, name_length, "sec-websocket-key")) {
            seen.key = value;
            seen.key_length = value_length;
            seen.keys++;
        } else if (ws_name_is(name, name_length, "sec-websocket-version")) {
            seen.version = value;
            seen.version_length = value_length;
            seen.versions++;
        }
    }
    h->result = WS_NOT_ASKED;
    if (!seen.asks_websocket)
        return 0;
    h->reason = handshake_fault(req, &seen, &h->status);
    if (h->reason != NULL) {
        h->result = WS_INVALID;
        return 0;
    }
    if (compute_accept(seen.key, h->accept) < 0)
        return -1;
    take_deflate_offer(x, &h->deflate);
    h->result = WS_VALID;
    return 0;
}

int ws_handshake_refuse(exchange *x, const ws_handshake *h)
{
    char line[64];
    const char *phrase = head_reason_phrase(h->status);
    int line_length = snprintf(line, sizeof line, "%d %s", h->status, phrase);
    PyObject *body = PyBytes_FromFormat("%d %s: %s\n", h->status, phrase, h->reason);
    if (body == NULL)
        return -1;
    response_head response;
    response_head_init(&response, h->status);
    buffer *head = exchange_head(x);
    int result = -1;
    if (head_begin(head, line, (size_t)line_length) < 0 ||
        head_field(head, "Content-Type", 12, "text/plain; charset=utf-8", 25) < 0 ||
        (h->status == 426 && head_field(head, "Sec-WebSocket-Version", 21, "13", 2) < 0))
        goto done;
    exchange_refuse_keep_alive(x);
    Py_ssize_t length = PyBytes_GET_SIZE(body);
    if (exchange_send_head(x, &response, length) < 0 ||
        exchange_send_body(x, body, PyBytes_AS_STRING(body), (size_t)length) < 0 || exchange_end_body(x) < 0)
        goto done;
    result = 0;
done:
    Py_DECREF(body);
    return result;
}

int ws_handshake_accept_head(buffer *head, const char *accept, const char *subprotocol, size_t length,
                             const ws_deflate_params *deflate)
{
    if (head_begin(head, "101 Switching Protocols", 23) < 0 || head_field(head, "Upgrade", 7, "websocket", 9) < 0 ||
        head_field(head, "Connection", 10, "Upgrade", 7) < 0 ||
        head_field(head, "Sec-WebSocket-Accept", 20, accept, WS_ACCEPT_LENGTH) < 0)
        return -1;
    if (subprotocol != NULL && head_field(head, "Sec-WebSocket-Protocol", 22, subprotocol, length) < 0)
        return -1;
    if (deflate->enabled) {
        char answer[WS_DEFLATE_ANSWER_MAX];
        if (head_field(head, "Sec-WebSocket-Extensions", 24, answer, ws_deflate_answer(deflate, answer)) < 0)
            return -1;
    }
    return 0;
}

int ws_handshake_writes_field(const char *name, size_t length)
{
    return ws_name_is(name, length, "upgrade") || ws_name_is(name, length, "connection") ||
           ws_name_is(name, length, "sec-websocket-accept") || ws_name_is(name, length, "sec-websocket-protocol") ||
           ws_name_is(name, length, "sec-websocket-extensions");
}
