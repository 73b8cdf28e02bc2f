#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "transport/door.h"

#include <errno.h>
#include <linux/filter.h>
#include <stddef.h>
#include <sys/socket.h>

/* A classic BPF socket filter run on each TCP segment that reaches the
 * listening socket, skb data starting at the TCP header: a segment with
 * SYN set and ACK clear opens a connection and is dropped; any other (the
 * ACK that completes a handshake already under way) is let through. */
static const struct sock_filter refuse_syn[] = {
    BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),          /* the TCP flags byte */
    BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),       /* SYN | ACK */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1), /* only SYN? */
    BPF_STMT(BPF_RET | BPF_K, 0),                    /* drop */
    BPF_STMT(BPF_RET | BPF_K, 0xffffffff),           /* keep */
};

static int is_tcp(int fd)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    int type;
    socklen_t type_length = sizeof type;
    if (getsockname(fd, (struct sockaddr *)&address, &length) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) < 0)
        return -1;
    return type == SOCK_STREAM && (address.ss_family == AF_INET || address.ss_family == AF_INET6);
}

int door_close(int listen_fd)
{
    int tcp = is_tcp(listen_fd);
    if (tcp <= 0)
        return tcp;
    /* The kernel only reads the program; sock_fprog just lacks the const. */
    struct sock_fprog program = {.len = sizeof refuse_syn / sizeof refuse_syn[0],
                                 .filter = (struct sock_filter *)refuse_syn};
    if (setsockopt(listen_fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) < 0)
        return -1;
    return 1;
}

int door_open(int listen_fd)
{
    int unused = 0;
    if (setsockopt(listen_fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

int door_is_closed(int listen_fd)
{
    /* With no room given, SO_GET_FILTER says how long the filter is. */
    socklen_t instructions = 0;
    if (getsockopt(listen_fd, SOL_SOCKET, SO_GET_FILTER, NULL, &instructions) < 0)
        return 0;
    return instructions > 0;
}
