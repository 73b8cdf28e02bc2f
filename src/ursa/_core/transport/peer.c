#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/digits.h"

/* A port as a str; on the accept path of every connection, where
 * PyUnicode_FromFormat costs more than the rest of the set-up. */
static PyObject *port_text(uint16_t port)
{
    char digits[DIGITS_MAX];
    return PyUnicode_FromStringAndSize(digits, (Py_ssize_t)digits_decimal(digits, port));
}

/* Dotted decimal: glibc's inet_ntop goes through sprintf, which costs
 * more than the rest of accepting a connection. */
static PyObject *ipv4_text(struct in_addr address)
{
    const unsigned char *octets = (const unsigned char *)&address.s_addr;
    char text[INET_ADDRSTRLEN];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned octet = octets[i];
        if (octet >= 100)
            text[n++] = (char)('0' + octet / 100);
        if (octet >= 10)
            text[n++] = (char)('0' + octet / 10 % 10);
        text[n++] = (char)('0' + octet % 10);
        text[n++] = '.';
    }
    return PyUnicode_FromStringAndSize(text, (Py_ssize_t)n - 1);
}

/* REMOTE_ADDR of an IPv4 peer. Behind a proxy every connection comes from
 * the same address: the server keeps the last one's str. */
static PyObject *ipv4_peer_text(server *s, struct in_addr address)
{
    if (s->last_peer_text == NULL || s->last_peer_ipv4 != address.s_addr) {
        PyObject *text = ipv4_text(address);
        if (text == NULL)
            return NULL;
        Py_XSETREF(s->last_peer_text, text);
        s->last_peer_ipv4 = address.s_addr;
    }
    Py_INCREF(s->last_peer_text);
    return s->last_peer_text;
}

int peer_describe(server *s, const struct sockaddr *peer, PyObject **address, PyObject **port)
{
    char text[INET6_ADDRSTRLEN];
    *address = *port = NULL;
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        *port = port_text(ntohs(in->sin_port));
        *address = *port ? ipv4_peer_text(s, in->sin_addr) : NULL;
    } else if (peer->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        *port = port_text(ntohs(in6->sin6_port));
        *address = *port ? PyUnicode_FromString(text) : NULL;
    } else {
        /* A unix peer is almost always unnamed: its address is "", as in
         * gunicorn and uWSGI, and it has no port. */
        *address = s->state->str_empty;
        Py_INCREF(*address);
        return 0;
    }
    if (*address == NULL) {
        Py_CLEAR(*port);
        return -1;
    }
    return 0;
}
