/*
 * Race-detector annotations (annotate-int.h): which tools are present, and
 * what each annotation tells them. Locking: none; conc__ann_tools is
 * written once by the load-time constructor, before any libconc object can
 * exist, and only read afterwards.
 *
 * ThreadSanitizer: its interface is declared weak, so a process without
 * the runtime resolves it to NULL and never calls it. When the library
 * itself is compiled with -fsanitize=thread, TSan sees its atomics and the
 * TSan part is left out (annotating twice would only add lock-order
 * checking of internal locks).
 * Helgrind and DRD: client requests (a few instructions that do nothing
 * natively), issued only when the build had the valgrind headers and the
 * process runs under valgrind. Each tool ignores the other's requests.
 */
#include "annotate-int.h"
#include "conc/sync.h"

#if defined(__SANITIZE_THREAD__)
#define CONC__ANN_LIB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC__ANN_LIB_TSAN 1
#endif
#endif

#ifdef CONC_HAVE_VALGRIND
/* drd.h and helgrind.h define the same ANNOTATE_* macros differently (the
 * redefinition is inside a system header, so not diagnosed); only their
 * request codes and the VALGRIND_HG_* macros are used here. */
#include <valgrind/drd.h>
#include <valgrind/helgrind.h>
#include <valgrind/valgrind.h>
/* One request to whichever tool knows `code` (the others ignore it). */
#define VG_REQ(code, a, b)                                                     \
  VALGRIND_DO_CLIENT_REQUEST_STMT(code, (a), (b), 0, 0, 0)
#endif

unsigned char conc__ann_tools;
/* Declared in conc/sync.h: the inline Lock fast paths call the library
 * while it is nonzero. */
unsigned char conc__sync_divert;

#ifndef CONC__ANN_LIB_TSAN
/* The TSan runtime's annotation interface (compiler-rt tsan_interface.h). */
#define TSAN_WRITE_REENTRANT (1u << 1)
#define TSAN_TRY_LOCK (1u << 4)
#define TSAN_TRY_LOCK_FAILED (1u << 5)
#define TSAN_NOT_STATIC (1u << 8)
extern void __tsan_mutex_create(void *addr, unsigned flags)
    __attribute__((weak));
extern void __tsan_mutex_destroy(void *addr, unsigned flags)
    __attribute__((weak));
extern void __tsan_mutex_pre_lock(void *addr, unsigned flags)
    __attribute__((weak));
extern void __tsan_mutex_post_lock(void *addr, unsigned flags, int recursion)
    __attribute__((weak));
extern int __tsan_mutex_pre_unlock(void *addr, unsigned flags)
    __attribute__((weak));
extern void __tsan_mutex_post_unlock(void *addr, unsigned flags)
    __attribute__((weak));
extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

static int tsan_present(void) {
  return __tsan_mutex_create && __tsan_mutex_destroy && __tsan_mutex_pre_lock &&
         __tsan_mutex_post_lock && __tsan_mutex_pre_unlock &&
         __tsan_mutex_post_unlock && __tsan_acquire && __tsan_release;
}
#define TSAN(call)                                                             \
  do {                                                                         \
    if (conc__ann_tools & CONC__ANN_TSAN)                                      \
      call;                                                                    \
  } while (0)
#else
static int tsan_present(void) { return 0; }
#define TSAN(call)                                                             \
  do {                                                                         \
  } while (0)
#endif

#ifdef CONC_HAVE_VALGRIND
#define HG(stmts)                                                              \
  do {                                                                         \
    if (conc__ann_tools & CONC__ANN_HG) {                                      \
      stmts;                                                                   \
    }                                                                          \
  } while (0)
#define DRD(stmts)                                                             \
  do {                                                                         \
    if (conc__ann_tools & CONC__ANN_DRD) {                                     \
      stmts;                                                                   \
    }                                                                          \
  } while (0)
/* Some of DRD's request codes are Helgrind's with another meaning (its
 * rwlock annotations are Helgrind's rwlock requests), so each tool gets
 * only its own: DRD answers its thread-id request, other tools answer 0. */
static unsigned valgrind_tools(void) {
  if (!RUNNING_ON_VALGRIND)
    return 0;
  return VALGRIND_DO_CLIENT_REQUEST_EXPR(0, VG_USERREQ__DRD_GET_DRD_THREAD_ID,
                                         0, 0, 0, 0, 0)
             ? CONC__ANN_DRD
             : CONC__ANN_HG;
}
#else
#define HG(stmts)                                                              \
  do {                                                                         \
  } while (0)
#define DRD(stmts) HG(stmts)
static unsigned valgrind_tools(void) { return 0; }
#endif

/* Before any other constructor of the library can make an object. */
__attribute__((constructor(101))) static void annotate_load(void) {
  conc__ann_tools =
      (unsigned char)((tsan_present() ? CONC__ANN_TSAN : 0) | valgrind_tools());
  conc__sync_divert |= conc__ann_tools;
}

void conc__ann_mutex_create_slow(void *addr, int is_rw) {
  TSAN(__tsan_mutex_create(addr, TSAN_NOT_STATIC |
                                     (is_rw ? TSAN_WRITE_REENTRANT : 0)));
  HG(VALGRIND_HG_MUTEX_INIT_POST(addr, is_rw ? 1 : 0));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_RWLOCK_CREATE, addr, 0));
}

void conc__ann_mutex_destroy_slow(void *addr) {
  TSAN(__tsan_mutex_destroy(addr, 0));
  HG(VALGRIND_HG_MUTEX_DESTROY_PRE(addr));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_RWLOCK_DESTROY, addr, 0));
}

void conc__ann_mutex_pre_lock_slow(void *addr, int is_try) {
  TSAN(__tsan_mutex_pre_lock(addr, is_try ? TSAN_TRY_LOCK : 0));
  HG(VALGRIND_HG_MUTEX_LOCK_PRE(addr, is_try ? 1 : 0));
}

void conc__ann_mutex_post_lock_slow(void *addr, int is_try, int ok) {
  TSAN(__tsan_mutex_post_lock(
      addr, (is_try ? TSAN_TRY_LOCK : 0) | (ok ? 0 : TSAN_TRY_LOCK_FAILED), 0));
  if (!ok)
    return;
  HG(VALGRIND_HG_MUTEX_LOCK_POST(addr));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_RWLOCK_ACQUIRED, addr, 1));
}

void conc__ann_mutex_pre_unlock_slow(void *addr) {
  TSAN((void)__tsan_mutex_pre_unlock(addr, 0));
  HG(VALGRIND_HG_MUTEX_UNLOCK_PRE(addr));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_RWLOCK_RELEASED, addr, 1));
}

void conc__ann_mutex_post_unlock_slow(void *addr) {
  TSAN(__tsan_mutex_post_unlock(addr, 0));
  HG(VALGRIND_HG_MUTEX_UNLOCK_POST(addr));
}

void conc__ann_happens_before_slow(void *addr) {
  TSAN(__tsan_release(addr));
  HG(VG_REQ(_VG_USERREQ__HG_USERSO_SEND_PRE, addr, 0));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_HAPPENS_BEFORE, addr, 0));
}

void conc__ann_happens_after_slow(void *addr) {
  TSAN(__tsan_acquire(addr));
  HG(VG_REQ(_VG_USERREQ__HG_USERSO_RECV_POST, addr, 0));
  DRD(VG_REQ(VG_USERREQ__DRD_ANNOTATE_HAPPENS_AFTER, addr, 0));
}

/* TSan does not see the library's own accesses, so only valgrind's tools
 * need to be told. */
void conc__ann_benign_race_slow(void *addr, size_t size) {
  HG(VALGRIND_HG_DISABLE_CHECKING(addr, size));
  DRD(VG_REQ(VG_USERREQ__DRD_START_SUPPRESSION, addr, size));
}
