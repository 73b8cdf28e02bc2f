/* The header names most requests carry, in lower case: the interfaces make
 * their Python keys for them once (environ keys, ASGI's lower-case bytes)
 * instead of per request. */
#ifndef URSA_HEADER_NAMES_H
#define URSA_HEADER_NAMES_H

#include <stddef.h>

#include "common/state.h"

#define COOKIE_HEADER 8 /* the index of "cookie" below */

extern const char *const common_header_names[URSA_COMMON_HEADERS];

/* The index of `name` (in any case) in common_header_names, or -1. */
int common_header_index(const char *name, size_t length);

#endif
