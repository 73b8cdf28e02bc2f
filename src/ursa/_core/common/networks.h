/* Sets of IP networks ("127.0.0.1,::1,10.0.0.0/8" or "*"), for the proxies
 * whose forwarded headers are trusted (forwarded_allow_ips). */
#ifndef URSA_NETWORKS_H
#define URSA_NETWORKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct network {
    int family;            /* AF_INET or AF_INET6 */
    unsigned prefix;       /* bits that must match */
    unsigned char address[16];
} network;

typedef struct networks {
    network *items;
    size_t count;
    int everything;        /* "*" */
} networks;

/* Parse `text`. 0, or -1 with ValueError saying what is wrong ("must be
 * ..." without the option's name: the caller says which). */
int networks_parse(networks *set, const char *text);
void networks_free(networks *set);
/* Whether the address (AF_INET/AF_INET6 sockaddr) is in the set. */
int networks_contain_sockaddr(const networks *set, const struct sockaddr *address);
/* The same for an address written as text (`length` bytes, no brackets,
 * no port): 0 when it is not an address at all. */
int networks_contain_text(const networks *set, const char *text, size_t length);

#endif
