/*
 * Internal interface of the coroutine module: the context-switch backends
 * (coro_asm_*.S, coro_ucontext.c; exactly one is compiled, src/coro.cmake
 * chooses) and the stack allocator (coro_stack.c).
 *
 * A context is one pointer. The asm backends store the suspended stack
 * pointer in it (callee-saved registers sit on that stack); the ucontext
 * backend stores a ucontext_t pointer (at the top of the coroutine's stack,
 * or in the thread's state for a main coroutine).
 */
#ifndef CONC_CORO_INT_H
#define CONC_CORO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- backends ---------------------------------------------------------- */

/* Save the running context into *from, resume `to`, whose own pending
 * conc__ctx_switch then returns `code`. Returns when something switches
 * back to *from, with the code that switch passed. No system call on the
 * asm backends. */
int conc__ctx_switch(void **from, void *to, int code);

/* A context that, when first switched to, calls entry() on the stack
 * [lo, hi) (hi is 16-byte aligned); entry never returns. */
void *conc__ctx_make(char *lo, char *hi, void (*entry)(void));

/* Bytes a main coroutine needs for its context storage (0 for asm), and the
 * initial context for a main coroutine given that storage. */
size_t conc__ctx_main_size(void);
void *conc__ctx_main(void *storage);

/* "asm-x86_64", "asm-aarch64", "ucontext". */
const char *conc__ctx_backend(void);

/* Put the guard-page SIGSEGV handler in front of whatever handler is set
 * now (which it chains to); done once at the first coroutine of the
 * process, again by tests. No-op when ours is installed already. */
void conc__coro_segv_install(void);

/* ---- stacks ------------------------------------------------------------ */

enum {
  CONC__STACK_GUARD_MADV = 1, /* guard installed with MADV_GUARD_INSTALL */
  CONC__STACK_GUARD_MPROT,    /* guard with mprotect (costs two maps) */
  CONC__STACK_CANARY,         /* no guard: 256 zero bytes checked on switch */
};

typedef struct conc__stack {
  char *lo;                 /* lowest usable byte */
  char *hi;                 /* one past the highest usable byte (top) */
  char *base;               /* the slot: [base, lo) is guard or canary zone */
  struct conc__stack *next; /* free lists */
  struct conc__slab *slab;
  size_t slot;    /* slot size class */
  unsigned vg_id; /* valgrind stack id */
  uint8_t kind;
  uint8_t vg_registered;
} conc__stack_t;

/* A stack of at least `usable` bytes (rounded up to pages). The fast path
 * pops the calling thread's cache (no system call). CONC_ENOMEM when no
 * memory could be mapped. */
int conc__stack_alloc(size_t usable, conc__stack_t **out);

/* Give a stack back: to this thread's cache when `mine`, else (another
 * thread's stack, or a thread exiting) to the global pool. */
void conc__stack_free(conc__stack_t *s, bool mine);

/* True when addr lies in the stack's guard zone. Async-signal-safe. */
bool conc__stack_guard_hit(const conc__stack_t *s, const void *addr);

/* False when a canary stack's zero zone was written (overflow). */
static inline bool conc__stack_canary_ok(const conc__stack_t *s) {
  if (s->kind != CONC__STACK_CANARY)
    return true;
  const uint64_t *z = (const uint64_t *)(const void *)(s->lo - 256);
  uint64_t acc = 0;
  for (int i = 0; i < 32; i++)
    acc |= z[i];
  return acc == 0;
}

/* Flush the calling thread's cache (thread exit). */
void conc__stack_thread_exit(void);

/* Counters for tests and benchmarks. */
typedef struct conc__stack_stats {
  size_t guarded_mprot; /* live + cached mprotect guards (maps in use / 2) */
  size_t slabs;
  size_t cached;    /* in this thread's cache */
  int guard_method; /* CONC__STACK_GUARD_MADV or _MPROT */
} conc__stack_stats_t;
void conc__stack_stats(conc__stack_stats_t *st);

/* Tests only: force the guard method (MADV or MPROT) for new slots. */
void conc__stack_force_method(int method);

/* Size of the guard zone below every stack. */
#define CONC__STACK_GUARD ((size_t)16 * 1024)

#endif
