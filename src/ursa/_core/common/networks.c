#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "common/networks.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One address as text into family and bytes. 0, or -1. */
static int parse_address(const char *text, size_t length, int *family, unsigned char *out)
{
    char copy[INET6_ADDRSTRLEN];
    if (length == 0 || length >= sizeof copy)
        return -1;
    memcpy(copy, text, length);
    copy[length] = '\0';
    if (inet_pton(AF_INET, copy, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, copy, out) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

static int parse_network(network *n, const char *text, size_t length)
{
    const char *slash = memchr(text, '/', length);
    size_t address_length = slash ? (size_t)(slash - text) : length;
    if (parse_address(text, address_length, &n->family, n->address) < 0)
        return -1;
    unsigned bits = n->family == AF_INET ? 32 : 128;
    n->prefix = bits;
    if (slash != NULL) {
        const char *digits = slash + 1, *end = text + length;
        if (digits == end || end - digits > 3)
            return -1;
        unsigned prefix = 0;
        for (; digits < end; digits++) {
            if (*digits < '0' || *digits > '9')
                return -1;
            prefix = prefix * 10 + (unsigned)(*digits - '0');
        }
        if (prefix > bits)
            return -1;
        n->prefix = prefix;
    }
    return 0;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

int networks_parse(networks *set, const char *text)
{
    memset(set, 0, sizeof *set);
    size_t capacity = 1;
    for (const char *p = text; *p; p++)
        capacity += *p == ',';
    set->items = PyMem_Calloc(capacity, sizeof *set->items);
    if (set->items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    const char *p = text;
    while (*p) {
        while (is_space(*p) || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && is_space(end[-1]))
            end--;
        if (end == start)
            continue;
        if (end - start == 1 && *start == '*') {
            set->everything = 1;
            continue;
        }
        if (parse_network(&set->items[set->count], start, (size_t)(end - start)) < 0) {
            /* PyErr_Format has no %.*s. */
            char item[64];
            snprintf(item, sizeof item, "%.*s", (int)(end - start), start);
            PyErr_Format(PyExc_ValueError,
                         "must be '*' or addresses and networks (like 127.0.0.1,::1,10.0.0.0/8) separated "
                         "by commas; '%s' is neither",
                         item);
            networks_free(set);
            return -1;
        }
        set->count++;
    }
    return 0;
}

void networks_free(networks *set)
{
    PyMem_Free(set->items);
    memset(set, 0, sizeof *set);
}

static int matches(const network *n, int family, const unsigned char *address)
{
    if (n->family != family)
        return 0;
    unsigned whole = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->address, address, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->address[whole] & mask) == (address[whole] & mask);
}

static int contains(const networks *set, int family, const unsigned char *address)
{
    if (set->everything)
        return 1;
    for (size_t i = 0; i < set->count; i++)
        if (matches(&set->items[i], family, address))
            return 1;
    return 0;
}

int networks_contain_sockaddr(const networks *set, const struct sockaddr *address)
{
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)address;
        return contains(set, AF_INET, (const unsigned char *)&in->sin_addr);
    }
    if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        const unsigned char *bytes = in6->sin6_addr.s6_addr;
        /* An IPv4 peer of a dual-stack socket: judge it as IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && contains(set, AF_INET, bytes + 12))
            return 1;
        return contains(set, AF_INET6, bytes);
    }
    return 0;
}

int networks_contain_text(const networks *set, const char *text, size_t length)
{
    int family;
    unsigned char address[16];
    if (parse_address(text, length, &family, address) < 0)
        return 0;
    return contains(set, family, address);
}
