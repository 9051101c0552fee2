/* Internal hooks of the shared-memory module (process start and tests). */
#ifndef CONC_SHARED_INT_H
#define CONC_SHARED_INT_H

#include <stddef.h>

/* Called by conc_process_start before it forks: makes this program's
 * segment table and tracker pipe if the process has none, so that a
 * segment a child creates belongs to the whole program (the tracker itself
 * is spawned by the first create, in whichever process). */
void conc__shm_share_with_children(void);

/* Tests: replace the random source of segment names (NULL: getrandom). The
 * function fills buf with n bytes and returns 0 or a negative code. */
void conc__shm_set_random(int (*fill)(void *buf, size_t n));

#endif
