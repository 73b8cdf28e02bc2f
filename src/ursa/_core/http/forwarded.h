/* What a trusted proxy says of the client: the scheme it used and its
 * address, from X-Forwarded-Proto, X-Forwarded-Ssl, X-Forwarded-Protocol
 * (gunicorn's secure scheme headers), X-Forwarded-For, and RFC 7239
 * Forwarded (proto=, for=). Read only for a peer in forwarded_allow_ips;
 * the same answer feeds WSGI's environ and, later, ASGI's scope. */
#ifndef URSA_FORWARDED_H
#define URSA_FORWARDED_H

#include "common/networks.h"
#include "http/request.h"

typedef enum {
    SCHEME_UNSAID, /* no forwarded field says: the server's own */
    SCHEME_HTTP,
    SCHEME_HTTPS,
} forwarded_scheme;

typedef struct forwarded {
    forwarded_scheme scheme;
    span client;          /* the client's address in the head, no brackets or port */
    unsigned has_client : 1;
} forwarded;

/* Read the forwarded fields of `req` (its spans point into `base`); the
 * client is the right-most address not itself a trusted proxy. 0, or -1
 * with *why when the fields contradict each other (a 400). */
int forwarded_read(const request *req, const char *base, const networks *trusted, forwarded *out,
                   const char **why);

#endif
