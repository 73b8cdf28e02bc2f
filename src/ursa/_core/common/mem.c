#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "common/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static int is_mapped(size_t size)
{
    return size >= MEM_MAP_THRESHOLD;
}

static void *map_pages(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *mem_resize(void *p, size_t old_size, size_t new_size)
{
    if (p == NULL)
        return is_mapped(new_size) ? map_pages(new_size) : malloc(new_size);
    if (is_mapped(old_size) && is_mapped(new_size)) {
        void *moved = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
        return moved == MAP_FAILED ? NULL : moved;
    }
    if (!is_mapped(old_size) && !is_mapped(new_size))
        return realloc(p, new_size);
    /* Across the threshold: a new block of the other kind. */
    void *q = is_mapped(new_size) ? map_pages(new_size) : malloc(new_size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old_size < new_size ? old_size : new_size);
    mem_free(p, old_size);
    return q;
}

void mem_free(void *p, size_t size)
{
    if (p == NULL)
        return;
    if (is_mapped(size))
        munmap(p, size);
    else
        free(p);
}
