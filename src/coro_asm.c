/*
 * The C half of the assembly backends (coro_asm_x86_64.S,
 * coro_asm_aarch64.S): building the first frame of a new coroutine so that
 * the first conc__ctx_switch into it "returns" into conc__ctx_boot with the
 * entry function in a callee-saved register. src/coro.cmake compiles this
 * file only with CONC_CORO_BACKEND=asm. No locking: contexts are per thread.
 */
#include <stdint.h>
#include <string.h>

#include "coro-int.h"

void conc__ctx_boot(void);

#if defined(__x86_64__)

void *conc__ctx_make(char *lo, char *hi, void (*entry)(void)) {
  (void)lo;
  /* hi-8, hi-16: zero (end of the frame chain); hi-24: return address, so
   * that rsp is 16-byte aligned in conc__ctx_boot; then rbp rbx r12-r15. */
  uint64_t *top = (uint64_t *)(void *)(hi - 24);
  uint64_t *sp = top - 6;
  top[1] = 0;
  top[2] = 0;
  top[0] = (uint64_t)(uintptr_t)conc__ctx_boot;
  memset(sp, 0, 6 * sizeof *sp);
  sp[4] = (uint64_t)(uintptr_t)entry; /* rbx */
#ifdef CONC_CORO_SAVE_FPU
  /* The new coroutine starts with its creator's rounding and exception
   * masks. */
  uint32_t mxcsr;
  uint16_t cw;
  __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
  __asm__ volatile("fnstcw %0" : "=m"(cw));
  sp--;
  *sp = (uint64_t)mxcsr | ((uint64_t)cw << 32);
#endif
  return sp;
}

const char *conc__ctx_backend(void) { return "asm-x86_64"; }

#elif defined(__aarch64__)

void *conc__ctx_make(char *lo, char *hi, void (*entry)(void)) {
  (void)lo;
  uint64_t *sp = (uint64_t *)(void *)(hi - 176);
  memset(sp, 0, 176);
  sp[0] = (uint64_t)(uintptr_t)entry;           /* x19 */
  sp[11] = (uint64_t)(uintptr_t)conc__ctx_boot; /* x30 */
#ifdef CONC_CORO_SAVE_FPU
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  sp[20] = fpcr;
#endif
  return sp;
}

const char *conc__ctx_backend(void) { return "asm-aarch64"; }

#else
#error "CONC_CORO_BACKEND=asm: no assembly backend for this architecture"
#endif

size_t conc__ctx_main_size(void) { return 0; }

void *conc__ctx_main(void *storage) {
  (void)storage;
  return NULL;
}
