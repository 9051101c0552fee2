/*
 * The portable switch backend: POSIX ucontext (glibc). swapcontext saves and
 * restores the signal mask with a system call on every switch, which is why
 * the assembly backends exist; this one runs wherever glibc does.
 * src/coro.cmake compiles this file only with CONC_CORO_BACKEND=ucontext.
 * The ucontext_t of a coroutine lives at the top of its own stack (so it
 * costs no allocation and shares the stack's first committed page); a main
 * coroutine's lives in its thread's state. No locking: contexts are per
 * thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "coro-int.h"

/* The code in flight between the two sides of a switch (thread-local: a
 * switch never leaves its thread). */
static __thread int t_code __attribute__((tls_model("initial-exec")));

int conc__ctx_switch(void **from, void *to, int code) {
  t_code = code;
  if (swapcontext((ucontext_t *)*from, (ucontext_t *)to) != 0)
    abort(); /* only fails for a bad context: memory corruption */
  return t_code;
}

void *conc__ctx_make(char *lo, char *hi, void (*entry)(void)) {
  uintptr_t at = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
  ucontext_t *uc = (ucontext_t *)at;
  if (getcontext(uc) != 0)
    abort();
  uc->uc_stack.ss_sp = lo;
  uc->uc_stack.ss_size = (size_t)((char *)uc - lo) & ~(size_t)15;
  uc->uc_link = NULL;
  makecontext(uc, entry, 0);
  return uc;
}

size_t conc__ctx_main_size(void) { return sizeof(ucontext_t); }

void *conc__ctx_main(void *storage) { return storage; }

const char *conc__ctx_backend(void) { return "ucontext"; }
