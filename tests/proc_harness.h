/*
 * Helpers for test programs that fork conc processes: start a child that
 * dies with the test (a failed assertion never leaves it running) and join
 * it for its exit code.
 */
#ifndef CONC_TEST_PROC_HARNESS_H
#define CONC_TEST_PROC_HARNESS_H

#include "harness.h"

#include "conc/process.h"

static inline void start(conc_process_t *p, conc_fn_t fn, void *arg) {
  assert_int_equal(
      conc_process_init(p, fn, arg,
                        &(conc_process_opts_t){.die_with_parent = true}),
      0);
  assert_int_equal(conc_process_start(p), 0);
}

/* Join the child and return its exit code (Python's exitcode). */
static inline int finish(conc_process_t *p) {
  assert_int_equal(conc_process_join(p, CONC_FOREVER), 0);
  int code;
  conc_process_exitcode(p, &code);
  conc_process_destroy(p);
  return code;
}

#endif
