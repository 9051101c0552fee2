/* Clock, thread ids and CPU count: OS queries shared by every wait backend.
 * Locking: none; cpu count is cached with a relaxed atomic. */
#include "platform-int.h"

#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

int64_t conc__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int32_t conc__gettid(void) {
#if defined(__linux__)
  return (int32_t)syscall(SYS_gettid);
#else
  return (int32_t)getpid();
#endif
}

int conc__cpu_count(void) {
  static int cached;
  int n = conc__load_relaxed(&cached);
  if (n > 0)
    return n;
  long v = sysconf(_SC_NPROCESSORS_ONLN);
  n = v > 0 ? (int)v : 1;
  conc__store_relaxed(&cached, n);
  return n;
}
