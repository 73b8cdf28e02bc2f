#include "http/forwarded.h"

#include <string.h>
#include <strings.h>

static int name_is(const char *base, span name, const char *lower)
{
    size_t n = strlen(lower);
    return name.length == n && strncasecmp(base + name.offset, lower, n) == 0;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* `s` without blanks around it. */
static span trim(const char *base, span s)
{
    while (s.length > 0 && is_blank(base[s.offset])) {
        s.offset++;
        s.length--;
    }
    while (s.length > 0 && is_blank(base[s.offset + s.length - 1]))
        s.length--;
    return s;
}

static int text_is(const char *base, span s, const char *lower)
{
    return name_is(base, s, lower);
}

/* The first item of a comma-separated list. */
static span first_item(const char *base, span s)
{
    const char *comma = memchr(base + s.offset, ',', s.length);
    if (comma != NULL)
        s.length = (uint32_t)(comma - (base + s.offset));
    return trim(base, s);
}

/* A scheme one source says; a second source that says another one is a
 * contradiction. */
static int say_scheme(forwarded *out, forwarded_scheme scheme, int *contradiction)
{
    if (scheme == SCHEME_UNSAID)
        return 0;
    if (out->scheme != SCHEME_UNSAID && out->scheme != scheme)
        *contradiction = 1;
    out->scheme = scheme;
    return 0;
}

static forwarded_scheme scheme_of(const char *base, span value, const char *secure, const char *plain)
{
    value = first_item(base, value);
    if (text_is(base, value, secure) || text_is(base, value, "https"))
        return SCHEME_HTTPS;
    if (text_is(base, value, plain))
        return SCHEME_HTTP;
    return SCHEME_UNSAID;
}

/* An address as a node of X-Forwarded-For or Forwarded's for=: without
 * quotes, without [brackets] and without a :port. */
static span bare_address(const char *base, span s)
{
    s = trim(base, s);
    if (s.length >= 2 && base[s.offset] == '"' && base[s.offset + s.length - 1] == '"') {
        s.offset++;
        s.length -= 2;
    }
    const char *p = base + s.offset;
    if (s.length > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', s.length);
        if (close != NULL) {
            s.offset++;
            s.length = (uint32_t)(close - p - 1);
        }
        return s;
    }
    const char *colon = memchr(p, ':', s.length);
    if (colon != NULL && memchr(colon + 1, ':', s.length - (size_t)(colon + 1 - p)) == NULL)
        s.length = (uint32_t)(colon - p); /* an IPv4 address and its port */
    return s;
}

/* The next comma-separated element of `list` from its end: `*end` moves
 * before it. Quoted strings may hold commas. */
static span previous_element(const char *base, span list, uint32_t *end)
{
    uint32_t stop = *end, i = stop;
    int quoted = 0;
    while (i > 0) {
        char ch = base[list.offset + i - 1];
        if (ch == '"')
            quoted = !quoted;
        else if (ch == ',' && !quoted)
            break;
        i--;
    }
    *end = i > 0 ? i - 1 : 0;
    return (span){list.offset + i, stop - i};
}

/* The client in X-Forwarded-For: the right-most address that is not a
 * trusted proxy (one that is could only have added what follows it),
 * across every X-Forwarded-For field, the last one last. Returns 1 once
 * found; meanwhile `out` holds the left-most address seen so far. */
static int client_from_list(const char *base, span list, const networks *trusted, forwarded *out)
{
    uint32_t end = list.length;
    while (end > 0) {
        span node = bare_address(base, previous_element(base, list, &end));
        if (node.length == 0)
            continue;
        out->client = node;
        out->has_client = 1;
        if (!networks_contain_text(trusted, base + node.offset, node.length))
            return 1;
    }
    return 0;
}

/* One pair of a Forwarded element ("for=...;proto=..."). */
static span pair_value(const char *base, span element, const char *key)
{
    size_t key_length = strlen(key);
    uint32_t i = 0;
    while (i < element.length) {
        uint32_t start = i;
        int quoted = 0;
        while (i < element.length && (quoted || base[element.offset + i] != ';')) {
            if (base[element.offset + i] == '"')
                quoted = !quoted;
            i++;
        }
        span pair = trim(base, (span){element.offset + start, i - start});
        const char *p = base + pair.offset;
        if (pair.length > key_length && p[key_length] == '=' && strncasecmp(p, key, key_length) == 0)
            return (span){pair.offset + (uint32_t)key_length + 1, pair.length - (uint32_t)key_length - 1};
        i++;
    }
    return (span){0, 0};
}

/* RFC 7239: the right-most element whose for= is not a trusted proxy
 * names the client, and its proto= the scheme it used. */
static void from_forwarded(const char *base, span list, const networks *trusted, forwarded *out,
                           int *contradiction)
{
    uint32_t end = list.length;
    span chosen = {0, 0};
    while (end > 0) {
        span element = previous_element(base, list, &end);
        if (trim(base, element).length == 0)
            continue;
        chosen = element;
        span node = bare_address(base, pair_value(base, element, "for"));
        if (node.length == 0 || !networks_contain_text(trusted, base + node.offset, node.length))
            break;
    }
    if (chosen.length == 0)
        return;
    span node = bare_address(base, pair_value(base, chosen, "for"));
    /* "unknown" and obfuscated identifiers ("_hidden") are no address. */
    if (node.length > 0 && base[node.offset] != '_' && !text_is(base, node, "unknown")) {
        out->client = node;
        out->has_client = 1;
    }
    span proto = pair_value(base, chosen, "proto");
    if (proto.length > 0)
        say_scheme(out, scheme_of(base, bare_address(base, proto), "https", "http"), contradiction);
}

int forwarded_read(const request *req, const char *base, const networks *trusted, forwarded *out,
                   const char **why)
{
    memset(out, 0, sizeof *out);
    int contradiction = 0, forwarded_seen = 0;
    for (uint32_t i = 0; i < req->header_count; i++) {
        span name = req->headers[i].name, value = req->headers[i].value;
        if (name_is(base, name, "x-forwarded-proto"))
            say_scheme(out, scheme_of(base, value, "https", "http"), &contradiction);
        else if (name_is(base, name, "x-forwarded-ssl"))
            say_scheme(out, scheme_of(base, value, "on", "off"), &contradiction);
        else if (name_is(base, name, "x-forwarded-protocol"))
            say_scheme(out, scheme_of(base, value, "ssl", "http"), &contradiction);
        else if (name_is(base, name, "forwarded")) {
            from_forwarded(base, value, trusted, out, &contradiction);
            forwarded_seen = 1;
        }
    }
    /* X-Forwarded-For speaks only where Forwarded does not. */
    for (uint32_t i = req->header_count; i > 0 && !forwarded_seen; i--) {
        const header_span *h = &req->headers[i - 1];
        if (name_is(base, h->name, "x-forwarded-for") && client_from_list(base, h->value, trusted, out))
            break;
    }
    if (contradiction) {
        *why = "the forwarded headers contradict each other on the scheme";
        return -1;
    }
    return 0;
}
