/* What one worker lets its clients make it hold at once: request bytes in
 * memory (incomplete heads, bodies below body_buffer_size) and bytes in
 * temporary files (larger bodies, write() backlogs). A buffer charges its
 * budget as it grows and credits it as it shrinks or goes. */
#ifndef URSA_BUDGET_H
#define URSA_BUDGET_H

#include <stdint.h>

typedef struct budget {
    uint64_t used;
    uint64_t limit;
} budget;

typedef struct budgets {
    budget memory; /* max_buffered_bytes */
    budget spill;  /* max_spill_bytes */
} budgets;

/* Take `n` bytes of the budget: 0, or -1 when that would pass its limit
 * (nothing is taken then). */
static inline int budget_charge(budget *b, uint64_t n)
{
    if (n > b->limit - b->used)
        return -1;
    b->used += n;
    return 0;
}

static inline void budget_credit(budget *b, uint64_t n)
{
    b->used = n < b->used ? b->used - n : 0;
}

#endif
