/* Pool internals the tests inspect. */
#ifndef CONC_POOL_INT_H
#define CONC_POOL_INT_H

#include <stddef.h>

#include "conc/pool.h"

/* The chunksize a map-family result was split with. */
size_t conc__pool_chunksize(const conc_async_result_t *r);

#endif
