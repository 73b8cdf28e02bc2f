/* The request target (RFC 9112 3.2) as an app sees it: its path and query,
 * the path percent-decoded, and whether it is under the prefix the app is
 * mounted at. Shared by the interfaces; the spans point into the request. */
#ifndef URSA_TARGET_H
#define URSA_TARGET_H

#include <stddef.h>

typedef struct target_parts {
    const char *path;   /* an absolute-form target ("http://host/p") contributes "/p" */
    size_t path_length;
    const char *query;  /* after the "?", or NULL when there is none */
    size_t query_length;
} target_parts;

/* Split `target` into its path and query; a fragment, which a client
 * should not send, is dropped. */
void target_split(const char *target, size_t length, target_parts *parts);

/* Whether `path` is `prefix` or below it ("/app", "/app/x"; not "/apple"). */
int target_under_prefix(const char *path, size_t length, const char *prefix, size_t prefix_length);

/* Percent-decode `length` bytes of `path` into `out` (room for `length`);
 * a "%" that starts no valid escape is kept. Returns the decoded length. */
size_t target_decode(const char *path, size_t length, char *out);

#endif
