#include "ws/deflate_offer.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/charclass.h"

/* A parameter's value is kept (unquoted) up to this many bytes: a longer
 * one is no window size, and is only measured. */
#define VALUE_MAX 8

typedef struct cursor {
    const char *at, *end;
} cursor;

/* One element of the list: an extension and what its parameters say, as
 * far as permessage-deflate is concerned. */
typedef struct offer {
    int is_deflate;
    int acceptable;                 /* well-formed, and nothing RFC 7692 5 declines */
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_window_bits;         /* 0: not given */
    int client_window_given;        /* client_max_window_bits, with a value or without */
    int client_window_bits;         /* 0: given without a value (or not at all) */
} offer;

static int is_named(const char *name, size_t length, const char *lower)
{
    return strlen(lower) == length && strncasecmp(name, lower, length) == 0;
}

static void skip_space(cursor *c)
{
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\t'))
        c->at++;
}

/* The token at the cursor: its length (0: there is none). */
static size_t read_token(cursor *c, const char **start)
{
    *start = c->at;
    while (c->at < c->end && is_token_char((unsigned char)*c->at))
        c->at++;
    return (size_t)(c->at - *start);
}

/* A quoted-string (RFC 9110 5.6.4), the cursor past its opening quote:
 * its unquoted length, the first VALUE_MAX bytes in `value`; -1 when it
 * does not end or holds a control character. */
static long read_quoted(cursor *c, char *value)
{
    size_t length = 0;
    while (c->at < c->end) {
        unsigned char ch = (unsigned char)*c->at++;
        if (ch == '"')
            return (long)length;
        if (ch == '\\') {
            if (c->at == c->end)
                return -1;
            ch = (unsigned char)*c->at++;
        }
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return -1;
        if (length < VALUE_MAX)
            value[length] = (char)ch;
        length++;
    }
    return -1;
}

/* Past the rest of an element that cannot be read: to the next comma that
 * is not inside a quoted-string. */
static void skip_element(cursor *c)
{
    int quoted = 0;
    for (; c->at < c->end; c->at++) {
        char ch = *c->at;
        if (quoted && ch == '\\' && c->at + 1 < c->end)
            c->at++;
        else if (ch == '"')
            quoted = !quoted;
        else if (ch == ',' && !quoted)
            return;
    }
}

/* A window size (RFC 7692 7.1.2): 8 to 15 in decimal without a leading
 * zero; 0 when the value is not one. */
static int window_bits_of(const char *value, size_t length)
{
    if (length == 1 && (value[0] == '8' || value[0] == '9'))
        return value[0] - '0';
    if (length == 2 && value[0] == '1' && value[1] >= '0' && value[1] <= '5')
        return 10 + (value[1] - '0');
    return 0;
}

/* One parameter of a permessage-deflate offer (RFC 7692 7.1): a name the
 * offer may not carry, a second of the same name, or a value where none
 * belongs (or none where one does) makes the offer unacceptable. */
static void read_parameter(offer *o, const char *name, size_t name_length, int has_value, const char *value,
                           size_t value_length)
{
    if (!o->is_deflate)
        return; /* another extension's: not ours to judge */
    if (is_named(name, name_length, "server_no_context_takeover")) {
        o->acceptable &= !o->server_no_context_takeover && !has_value;
        o->server_no_context_takeover = 1;
    } else if (is_named(name, name_length, "client_no_context_takeover")) {
        o->acceptable &= !o->client_no_context_takeover && !has_value;
        o->client_no_context_takeover = 1;
    } else if (is_named(name, name_length, "server_max_window_bits")) {
        int bits = has_value ? window_bits_of(value, value_length) : 0;
        o->acceptable &= o->server_window_bits == 0 && bits != 0;
        o->server_window_bits = bits != 0 ? bits : -1;
    } else if (is_named(name, name_length, "client_max_window_bits")) {
        int bits = has_value ? window_bits_of(value, value_length) : 0;
        o->acceptable &= !o->client_window_given && (!has_value || bits != 0);
        o->client_window_given = 1;
        o->client_window_bits = bits;
    } else {
        o->acceptable = 0;
    }
}

/* The next element of the list (extension *( ";" parameter ), RFC 6455
 * 9.1) into `o`, the cursor left past it. One that cannot be read is
 * unacceptable, and the list goes on after its comma. 0 at the end of the
 * list. */
static int next_offer(cursor *c, offer *o)
{
    memset(o, 0, sizeof *o);
    while (c->at < c->end && (*c->at == ',' || *c->at == ' ' || *c->at == '\t'))
        c->at++;
    if (c->at == c->end)
        return 0;
    const char *name;
    size_t name_length = read_token(c, &name);
    o->is_deflate = is_named(name, name_length, "permessage-deflate");
    int well_formed = name_length > 0;
    o->acceptable = well_formed;
    while (well_formed) {
        skip_space(c);
        if (c->at == c->end || *c->at == ',')
            return 1;
        well_formed = 0;
        if (*c->at != ';')
            break;
        c->at++;
        skip_space(c);
        const char *parameter;
        size_t parameter_length = read_token(c, &parameter);
        if (parameter_length == 0)
            break;
        skip_space(c);
        char value[VALUE_MAX];
        size_t value_length = 0;
        int has_value = c->at < c->end && *c->at == '=';
        if (has_value) {
            c->at++;
            skip_space(c);
            if (c->at < c->end && *c->at == '"') {
                c->at++;
                long quoted_length = read_quoted(c, value);
                if (quoted_length < 0)
                    break;
                value_length = (size_t)quoted_length;
            } else {
                const char *token;
                value_length = read_token(c, &token);
                if (value_length == 0)
                    break;
                memcpy(value, token, value_length < VALUE_MAX ? value_length : VALUE_MAX);
            }
        }
        read_parameter(o, parameter, parameter_length, has_value, value, value_length);
        well_formed = 1;
    }
    o->acceptable = 0;
    skip_element(c);
    return 1;
}

static unsigned smaller(unsigned a, unsigned b)
{
    return a < b ? a : b;
}

/* The parameters of an acceptable offer: 1 with `p` set, or 0 when the
 * server cannot work with it (a window of 8 bits for our compressor). */
static int agree(const offer *o, unsigned window_cap, ws_deflate_params *p)
{
    unsigned asked = o->server_window_bits > 0 ? (unsigned)o->server_window_bits : WS_DEFLATE_MAX_WINDOW_BITS;
    unsigned server_bits = smaller(asked, window_cap);
    if (server_bits < WS_DEFLATE_MIN_WINDOW_BITS)
        return 0;
    memset(p, 0, sizeof *p);
    p->enabled = 1;
    p->server_no_context_takeover = (uint8_t)o->server_no_context_takeover;
    p->client_no_context_takeover = (uint8_t)o->client_no_context_takeover;
    p->server_window_bits = (uint8_t)server_bits;
    /* Accepting server_max_window_bits is answering it (RFC 7692
     * 7.1.2.1); unasked, a smaller window is named so that the client
     * can inflate with less. */
    p->answer_server_window = o->server_window_bits > 0 || server_bits < WS_DEFLATE_MAX_WINDOW_BITS;
    p->client_window_bits = WS_DEFLATE_MAX_WINDOW_BITS;
    if (o->client_window_given) {
        /* Only a client that offered client_max_window_bits may be told
         * its window (7.1.2.2), at most the size it offered. */
        unsigned offered = o->client_window_bits > 0 ? (unsigned)o->client_window_bits : WS_DEFLATE_MAX_WINDOW_BITS;
        p->client_window_bits = (uint8_t)smaller(offered, window_cap);
        p->answer_client_window = p->client_window_bits < WS_DEFLATE_MAX_WINDOW_BITS;
    }
    return 1;
}

int ws_deflate_offer_take(const char *value, size_t length, unsigned window_cap, ws_deflate_params *p)
{
    cursor c = {value, value + length};
    offer o;
    while (next_offer(&c, &o))
        if (o.is_deflate && o.acceptable && agree(&o, window_cap, p))
            return 1;
    return 0;
}

size_t ws_deflate_answer(const ws_deflate_params *p, char *out)
{
    char server_window[32] = "", client_window[32] = "";
    if (p->answer_server_window)
        snprintf(server_window, sizeof server_window, "; server_max_window_bits=%u", (unsigned)p->server_window_bits);
    if (p->answer_client_window)
        snprintf(client_window, sizeof client_window, "; client_max_window_bits=%u", (unsigned)p->client_window_bits);
    int length = snprintf(out, WS_DEFLATE_ANSWER_MAX, "permessage-deflate%s%s%s%s",
                          p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                          p->client_no_context_takeover ? "; client_no_context_takeover" : "", server_window,
                          client_window);
    return length < 0 ? 0 : (size_t)length;
}
