/* libconc umbrella header: Python's concurrency toolbox for C. */
#ifndef CONC_H
#define CONC_H

#include "conc/defs.h"
#include "conc/aiohttp.h"
#include "conc/aionet.h"
#include "conc/aioproc.h"
#include "conc/aiostream.h"
#include "conc/aiosync.h"
#include "conc/channel.h"
#include "conc/coro.h"
#include "conc/error.h"
#include "conc/futures.h"
#include "conc/hub.h"
#include "conc/lockdep.h"
#include "conc/loop.h"
#include "conc/manager.h"
#include "conc/pqueue.h"
#include "conc/process.h"
#include "conc/queue.h"
#include "conc/shared.h"
#include "conc/thread.h"
#include "conc/time.h"
#include "conc/sync.h"
#include "conc/pool.h"
#include "conc/timer.h"
#include "conc/version.h"

#endif
