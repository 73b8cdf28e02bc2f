/* Memory for buffers of request bytes (read buffers, bodies kept in
 * memory). A burst of slow clients can make thousands of them large at
 * once; when they go, the memory must go back to the system. glibc keeps
 * freed heap memory, and raises its own mmap threshold after each large
 * free, so buffers past MEM_MAP_THRESHOLD are pages mapped for themselves
 * and unmapped when freed. */
#ifndef URSA_MEM_H
#define URSA_MEM_H

#include <stddef.h>

#define MEM_MAP_THRESHOLD (32 * 1024)

/* Resize the block `p` of `old_size` bytes (NULL and 0 for a new one) to
 * `new_size`, keeping min(old, new) bytes. NULL on failure (`p` is kept). */
void *mem_resize(void *p, size_t old_size, size_t new_size);
/* Free a block of `size` bytes from mem_resize. */
void mem_free(void *p, size_t size);

#endif
