#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char v2_signature[12] = "\r\n\r\n\0\r\nQUIT\n";
#define V1_MAX 107

static int parse_port(const char *text, size_t length, uint16_t *port)
{
    if (length == 0 || length > 5 || (length > 1 && text[0] == '0'))
        return -1;
    unsigned value = 0;
    for (size_t i = 0; i < length; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (unsigned)(text[i] - '0');
    }
    if (value > 65535)
        return -1;
    *port = (uint16_t)value;
    return 0;
}

/* "PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n", or "PROXY UNKNOWN...\r\n". */
static proxy_result parse_v1(const char *data, size_t available, size_t *length, struct sockaddr_storage *client)
{
    const char *end = memchr(data, '\n', available < V1_MAX ? available : V1_MAX);
    if (end == NULL)
        return available < V1_MAX ? PROXY_NEED_MORE : PROXY_INVALID;
    if (end == data || end[-1] != '\r')
        return PROXY_INVALID;
    char line[V1_MAX + 1];
    size_t line_length = (size_t)(end - 1 - data);
    memcpy(line, data, line_length);
    line[line_length] = '\0';
    *length = (size_t)(end + 1 - data);
    char *fields[6];
    int count = 0;
    for (char *save = NULL, *field = strtok_r(line, " ", &save); field && count < 6;
         field = strtok_r(NULL, " ", &save))
        fields[count++] = field;
    if (count >= 2 && strcmp(fields[1], "UNKNOWN") == 0) {
        client->ss_family = AF_UNSPEC;
        return PROXY_DONE;
    }
    if (count != 6 || strcmp(fields[0], "PROXY") != 0)
        return PROXY_INVALID;
    uint16_t port, unused;
    if (parse_port(fields[4], strlen(fields[4]), &port) < 0 || parse_port(fields[5], strlen(fields[5]), &unused) < 0)
        return PROXY_INVALID;
    memset(client, 0, sizeof *client);
    if (strcmp(fields[1], "TCP4") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)client;
        struct in_addr ignored;
        if (inet_pton(AF_INET, fields[2], &in->sin_addr) != 1 || inet_pton(AF_INET, fields[3], &ignored) != 1)
            return PROXY_INVALID;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        return PROXY_DONE;
    }
    if (strcmp(fields[1], "TCP6") == 0) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)client;
        struct in6_addr ignored;
        if (inet_pton(AF_INET6, fields[2], &in6->sin6_addr) != 1 || inet_pton(AF_INET6, fields[3], &ignored) != 1)
            return PROXY_INVALID;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return PROXY_DONE;
    }
    return PROXY_INVALID;
}

/* 12 bytes of signature, version 2 and a command, a family and transport,
 * the length of what follows, the addresses (and TLVs, skipped). */
static proxy_result parse_v2(const unsigned char *data, size_t available, size_t *length,
                             struct sockaddr_storage *client)
{
    if (available < 16)
        return PROXY_NEED_MORE;
    unsigned version = data[12] >> 4, command = data[12] & 0x0f;
    size_t rest = (size_t)data[14] << 8 | data[15];
    if (version != 2 || command > 1 || 16 + rest > PROXY_HEADER_MAX)
        return PROXY_INVALID;
    if (available < 16 + rest)
        return PROXY_NEED_MORE;
    *length = 16 + rest;
    memset(client, 0, sizeof *client);
    client->ss_family = AF_UNSPEC;
    if (command == 0)
        return PROXY_DONE; /* LOCAL: the balancer's own health check */
    const unsigned char *addresses = data + 16;
    switch (data[13]) {
    case 0x11: /* TCP over IPv4: source, destination, their ports */
        if (rest < 12)
            return PROXY_INVALID;
        {
            struct sockaddr_in *in = (struct sockaddr_in *)client;
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, addresses, 4);
            memcpy(&in->sin_port, addresses + 8, 2);
        }
        return PROXY_DONE;
    case 0x21: /* TCP over IPv6 */
        if (rest < 36)
            return PROXY_INVALID;
        {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)client;
            in6->sin6_family = AF_INET6;
            memcpy(&in6->sin6_addr, addresses, 16);
            memcpy(&in6->sin6_port, addresses + 32, 2);
        }
        return PROXY_DONE;
    default: /* UNSPEC, UDP, unix: nothing this server can use */
        return PROXY_DONE;
    }
}

proxy_result proxy_parse(const char *data, size_t available, size_t *length, struct sockaddr_storage *client)
{
    size_t compared = available < sizeof v2_signature ? available : sizeof v2_signature;
    if (memcmp(data, v2_signature, compared) == 0)
        return compared < sizeof v2_signature ? PROXY_NEED_MORE
                                               : parse_v2((const unsigned char *)data, available, length, client);
    compared = available < 6 ? available : 6;
    if (memcmp(data, "PROXY ", compared) != 0)
        return PROXY_INVALID;
    return compared < 6 ? PROXY_NEED_MORE : parse_v1(data, available, length, client);
}
