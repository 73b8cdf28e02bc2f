/* Running a server: the loop (the GIL released while it polls), the
 * signal wake-up, the graceful stop and its timeout. Above the listeners
 * and connections of transport/. */
#ifndef URSA_SERVE_H
#define URSA_SERVE_H

#include "transport/server.h"

/* Run the server until it is stopped. Returns 0, or -1 with an exception
 * (a setup failure, or the KeyboardInterrupt that stopped it). Takes no
 * ownership of `listen_fds`; `opts` is moved into the server. */
int server_serve(module_state *state, PyObject *app, const int *listen_fds, size_t listen_fd_count,
                 int signal_fd, server_options *opts, const protocol *protocol, void *protocol_state);

/* Begin a graceful stop: take what is in the accept queues, stop
 * accepting, let requests in flight finish (up to graceful_timeout).
 * Idempotent. */
void server_begin_stop(server *s);

/* Stop because of an exception (KeyboardInterrupt, SystemExit) raised by a
 * handler or the app: it is kept and re-raised from serve(). */
void server_interrupt(server *s);

/* Deal with the exception that is set: KeyboardInterrupt and SystemExit
 * stop the server (server_interrupt); anything else is logged with
 * `message` through the "ursa.error" logger. Clears the exception. */
void server_report_exception(server *s, const char *message);

#endif
