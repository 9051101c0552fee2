/* Internal hooks of the process module (tests and sibling modules). */
#ifndef CONC_PROCESS_INT_H
#define CONC_PROCESS_INT_H

#include <stdbool.h>

/* Select how children are watched: a pidfd where the kernel has one (true,
 * the default: probed at the next start) or the sentinel pipe (false). */
void conc__process_use_pidfd(bool use);

#endif
