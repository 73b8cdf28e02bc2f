/* A client's address as REMOTE_ADDR and REMOTE_PORT strings, made on the
 * accept path of every connection, so made cheaply. */
#ifndef URSA_PEER_H
#define URSA_PEER_H

#include <sys/socket.h>

#include "transport/server.h"

/* New references to the peer's address and port (NULL for a unix peer,
 * whose address is ""). 0, or -1 with an exception. */
int peer_describe(server *s, const struct sockaddr *peer, PyObject **address, PyObject **port);

#endif
