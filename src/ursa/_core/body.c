#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "body.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anonfile.h"

#define INITIAL_RESERVE (64 * 1024)

void body_init(body *b)
{
    b->memory = NULL;
    b->memory_capacity = 0;
    b->file = -1;
    b->size = 0;
}

static int spill_to_file(body *b)
{
    int fd = anonfile_open();
    if (fd < 0)
        return -1;
    if (anonfile_write_all(fd, b->memory, (size_t)b->size) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    free(b->memory);
    b->memory = NULL;
    b->memory_capacity = 0;
    b->file = fd;
    return 0;
}

static int reserve_memory(body *b, size_t need)
{
    if (need <= b->memory_capacity)
        return 0;
    size_t capacity = b->memory_capacity ? b->memory_capacity : 1024;
    while (capacity < need)
        capacity *= 2;
    char *memory = realloc(b->memory, capacity);
    if (memory == NULL) {
        errno = ENOMEM;
        return -1;
    }
    b->memory = memory;
    b->memory_capacity = capacity;
    return 0;
}

int body_expect(body *b, uint64_t expected, size_t memory_limit)
{
    if (expected > memory_limit) {
        int fd = anonfile_open();
        if (fd < 0)
            return -1;
        b->file = fd;
        return 0;
    }
    /* Grow as bytes arrive: a declared length alone costs no memory. */
    return reserve_memory(b, expected < INITIAL_RESERVE ? (size_t)expected : INITIAL_RESERVE);
}

int body_append(body *b, const char *data, size_t n, size_t memory_limit)
{
    if (b->file < 0 && b->size + n > memory_limit && spill_to_file(b) < 0)
        return -1;
    if (b->file >= 0) {
        if (anonfile_write_all(b->file, data, n) < 0)
            return -1;
    } else {
        if (reserve_memory(b, (size_t)b->size + n) < 0)
            return -1;
        memcpy(b->memory + b->size, data, n);
    }
    b->size += n;
    return 0;
}

void body_free(body *b)
{
    free(b->memory);
    if (b->file >= 0)
        close(b->file);
    body_init(b);
}
