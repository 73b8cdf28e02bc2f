/* Unnamed temporary files, where request bodies and write() backlogs go
 * once they outgrow memory: gone from the file system from the start, so
 * nothing is left behind however the process ends. */
#ifndef URSA_ANONFILE_H
#define URSA_ANONFILE_H

#include <stddef.h>

/* A new read-write file in $TMPDIR (or /tmp). Returns its fd, or -1 with
 * errno set. */
int anonfile_open(void);
/* write(2) all of it. 0, or -1 with errno set. */
int anonfile_write_all(int fd, const char *data, size_t n);

#endif
