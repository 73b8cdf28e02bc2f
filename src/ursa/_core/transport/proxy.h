/* The PROXY protocol (HAProxy's, v1 text and v2 binary, also sent by AWS
 * NLB and others): a header before the first request that names the
 * client a load balancer accepted. With proxy_protocol on, a connection
 * without a valid one is closed. */
#ifndef URSA_PROXY_H
#define URSA_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* A header is at most this long: v1's 107 bytes, v2's 16 and addresses,
 * with room for the TLVs some balancers add. */
#define PROXY_HEADER_MAX 1024

typedef enum {
    PROXY_NEED_MORE, /* not all of it has arrived */
    PROXY_DONE,      /* *length bytes; *client set, or AF_UNSPEC: keep the socket's peer */
    PROXY_INVALID,   /* not a PROXY protocol header */
} proxy_result;

proxy_result proxy_parse(const char *data, size_t available, size_t *length, struct sockaddr_storage *client);

#endif
