#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/body.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/anonfile.h"
#include "common/mem.h"

#define INITIAL_RESERVE (64 * 1024)

void body_init(body *b)
{
    b->memory = NULL;
    b->memory_capacity = 0;
    b->file = -1;
    b->size = 0;
    b->charged = NULL;
}

static int spill_to_file(body *b, budgets *budget)
{
    if (budget_charge(&budget->spill, b->size) < 0) {
        errno = ENOSPC;
        return -1;
    }
    int fd = anonfile_open();
    if (fd < 0 || anonfile_write_all(fd, b->memory, (size_t)b->size) < 0) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        budget_credit(&budget->spill, b->size);
        errno = saved;
        return -1;
    }
    budget_credit(&budget->memory, b->memory_capacity);
    mem_free(b->memory, b->memory_capacity);
    b->memory = NULL;
    b->memory_capacity = 0;
    b->file = fd;
    return 0;
}

/* Room for `need` bytes in memory. 0, -1 with errno (ENOMEM), or 1 when the
 * memory budget is spent: the body goes to a file then. */
static int reserve_memory(body *b, size_t need, budgets *budget)
{
    if (need <= b->memory_capacity)
        return 0;
    size_t capacity = b->memory_capacity ? b->memory_capacity : 1024;
    while (capacity < need)
        capacity *= 2;
    if (budget_charge(&budget->memory, capacity - b->memory_capacity) < 0)
        return 1;
    char *memory = mem_resize(b->memory, b->memory_capacity, capacity);
    if (memory == NULL) {
        budget_credit(&budget->memory, capacity - b->memory_capacity);
        errno = ENOMEM;
        return -1;
    }
    b->memory = memory;
    b->memory_capacity = capacity;
    b->charged = budget;
    return 0;
}

void body_expect(body *b, uint64_t expected, size_t memory_limit, budgets *budget)
{
    /* A declared length alone costs little: the body starts in memory and
     * moves to a file only once it has outgrown memory_limit. */
    uint64_t first = expected < memory_limit ? expected : memory_limit;
    reserve_memory(b, first < INITIAL_RESERVE ? (size_t)first : INITIAL_RESERVE, budget);
}

int body_append(body *b, const char *data, size_t n, size_t memory_limit, budgets *budget)
{
    if (b->file < 0) {
        int reserved = b->size + n > memory_limit ? 1 : reserve_memory(b, (size_t)b->size + n, budget);
        if (reserved < 0)
            return -1;
        if (reserved > 0) {
            b->charged = budget;
            if (spill_to_file(b, budget) < 0)
                return -1;
        }
    }
    if (b->file >= 0) {
        if (budget_charge(&budget->spill, n) < 0) {
            errno = ENOSPC;
            return -1;
        }
        b->charged = budget;
        if (anonfile_write_all(b->file, data, n) < 0) {
            budget_credit(&budget->spill, n);
            return -1;
        }
    } else {
        memcpy(b->memory + b->size, data, n);
    }
    b->size += n;
    return 0;
}

int body_take(body *b, char *out)
{
    if (b->file < 0) {
        if (b->size > 0)
            memcpy(out, b->memory, (size_t)b->size);
    } else {
        for (uint64_t done = 0; done < b->size;) {
            ssize_t n = pread(b->file, out + done, (size_t)(b->size - done), (off_t)done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n == 0)
                    errno = EIO;
                return -1;
            }
            done += (uint64_t)n;
        }
        /* The file is dropped: what comes next starts in memory again. */
        if (b->charged != NULL)
            budget_credit(&b->charged->spill, b->size);
        close(b->file);
        b->file = -1;
    }
    b->size = 0;
    return 0;
}

void body_settle(body *b)
{
    if (b->charged == NULL)
        return;
    budget_credit(&b->charged->memory, b->memory_capacity);
    if (b->file >= 0)
        budget_credit(&b->charged->spill, b->size);
    b->charged = NULL;
}

void body_free(body *b)
{
    body_settle(b);
    mem_free(b->memory, b->memory_capacity);
    if (b->file >= 0)
        close(b->file);
    body_init(b);
}
