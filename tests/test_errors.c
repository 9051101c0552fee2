/*
 * Errors: every code prints by name (other -errno values too), the one-call
 * class query follows Python's hierarchy, and each Python exception class
 * the library raises comes from a real call whose code names that class.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "conc/aiostream.h"
#include "conc/channel.h"
#include "conc/coro.h"
#include "conc/error.h"
#include "conc/futures.h"
#include "conc/loop.h"
#include "conc/manager.h"
#include "conc/pool.h"
#include "conc/process.h"
#include "conc/pqueue.h"
#include "conc/queue.h"
#include "conc/shared.h"
#include "conc/sync.h"
#include "conc/thread.h"
#include "conc/time.h"

#if defined(CONC_SANITIZER_address) || defined(CONC_SANITIZER_thread) ||       \
    defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

/* The code is the class Python raises, by name and by query. */
#define RAISES(code, cls, pyname)                                              \
  do {                                                                         \
    int rc_ = (code);                                                          \
    assert_string_equal(conc_err_python(rc_), pyname);                         \
    assert_int_equal(conc_err_class(rc_), cls);                                \
    assert_true(conc_err_is(rc_, cls));                                        \
    assert_true(conc_err_is(rc_, CONC_PY_BaseException));                      \
  } while (0)

/* ---- names -------------------------------------------------------------- */

static void passed_through_errno_prints_its_own_name(void **state) {
  (void)state;
  assert_string_equal(conc_err_name(-ELOOP), "ELOOP");
  assert_string_equal(conc_strerror(-ELOOP),
                      "Too many levels of symbolic links");
  assert_string_equal(conc_err_python(-ELOOP), "OSError");
  assert_string_equal(conc_err_name(-ENOTDIR), "ENOTDIR");
  assert_string_equal(conc_err_python(-ENOTDIR), "NotADirectoryError");
  assert_string_equal(conc_err_python(-EISDIR), "IsADirectoryError");
  assert_string_equal(conc_err_python(-EINPROGRESS), "BlockingIOError");
  /* every errno the kernel defines has a name */
  for (int e = 1; e < 134; e++)
    if (e != 41 && e != 58) /* holes in Linux's numbering */
      assert_string_not_equal(conc_err_name(-e), "CONC_E?");
  /* listed codes keep their libconc names */
  assert_string_equal(conc_err_name(CONC_ETIMEDOUT), "CONC_ETIMEDOUT");
  assert_string_equal(conc_err_name(-99999), "CONC_E?");
  assert_string_equal(conc_err_python(-99999), "Exception");
  assert_string_equal(conc_err_python(0), "None");
}

static void every_listed_code_has_a_class_with_a_name(void **state) {
  (void)state;
  static const int codes[] = {
#define ROW(n, v, py, msg) CONC_##n,
      CONC_ERROR_LIST(ROW)
#undef ROW
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    conc_errclass_t c = conc_err_class(codes[i]);
    assert_int_not_equal(c, CONC_PY_NONE);
    assert_string_equal(conc_errclass_name(c), conc_err_python(codes[i]));
  }
  assert_null(conc_errclass_name(CONC_PY_NONE));
}

/* ---- the class query ----------------------------------------------------- */

static void runtime_error_is_one_query(void **state) {
  (void)state;
  static const int runtime[] = {CONC_ESTATE, CONC_EPERM, CONC_EDEADLK,
                                CONC_ENOTSTARTED, CONC_EBUSY};
  for (size_t i = 0; i < sizeof runtime / sizeof runtime[0]; i++) {
    assert_int_equal(conc_err_class(runtime[i]), CONC_PY_RuntimeError);
    assert_true(conc_err_is(runtime[i], CONC_PY_RuntimeError));
    assert_true(conc_err_is(runtime[i], CONC_PY_Exception));
    assert_false(conc_err_is(runtime[i], CONC_PY_OSError));
  }
  /* subclasses are caught by `except RuntimeError`, as in Python */
  assert_true(conc_err_is(CONC_EBROKEN, CONC_PY_RuntimeError));
  assert_true(conc_err_is(CONC_ENOSYS, CONC_PY_RuntimeError));
  assert_true(conc_err_is(CONC_EWORKERDIED, CONC_PY_BrokenExecutor));
  assert_false(conc_err_is(CONC_EINVAL, CONC_PY_RuntimeError));
  assert_false(conc_err_is(0, CONC_PY_RuntimeError));
  assert_false(conc_err_is(1, CONC_PY_BaseException));
}

static void os_errors_follow_pythons_tree(void **state) {
  (void)state;
  assert_true(conc_err_is(CONC_ECONNRESET, CONC_PY_ConnectionError));
  assert_true(conc_err_is(CONC_EPIPE, CONC_PY_ConnectionError));
  assert_true(conc_err_is(CONC_ETIMEDOUT, CONC_PY_OSError));
  assert_true(conc_err_is(-ELOOP, CONC_PY_OSError));
  assert_true(conc_err_is(CONC_EINDEX, CONC_PY_LookupError));
  assert_true(conc_err_is(CONC_EKEY, CONC_PY_LookupError));
  assert_true(conc_err_is(CONC_EINCOMPLETE, CONC_PY_EOFError));
  assert_false(conc_err_is(CONC_ECANCELED, CONC_PY_Exception));
  assert_false(conc_err_is(CONC_EFULL, CONC_PY_OSError));
}

/* ---- one real call per class ------------------------------------------- */

static void lock_errors(void **state) {
  (void)state;
  conc_lock_t l;
  assert_int_equal(conc_lock_init(&l, NULL), 0);
  RAISES(conc_lock_release(&l), CONC_PY_RuntimeError, "RuntimeError");
  RAISES(conc_lock_acquire_timeout(&l, NAN), CONC_PY_ValueError, "ValueError");
  RAISES(conc_lock_acquire_timeout(&l, 1e30), CONC_PY_OverflowError,
         "OverflowError");
  assert_int_equal(conc_lock_acquire(&l), 0);
  RAISES(conc_lock_acquire_timeout(&l, 0.01), CONC_PY_TimeoutError,
         "TimeoutError");
  assert_int_equal(conc_lock_release(&l), 0);
  assert_int_equal(conc_lock_destroy(&l), 0);
}

static void dead_owner_is_OwnerDied(void **state) {
  (void)state;
  conc_lock_t *l = mmap(NULL, sizeof *l, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  assert_true(l != MAP_FAILED);
  assert_int_equal(conc_lock_init(l, &(conc_lock_opts_t){.pshared = true}), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(conc_lock_acquire(l) == 0 ? 0 : 1); /* dies holding it */
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_int_equal(WEXITSTATUS(st), 0);
  RAISES(conc_lock_acquire(l), CONC_PY_OwnerDied, "OwnerDied");
  assert_int_equal(conc_lock_release(l), 0);
  munmap(l, sizeof *l);
}

static void queue_errors(void **state) {
  (void)state;
  conc_queue_t q;
  void *p;
  assert_int_equal(conc_queue_init(&q, &(conc_queue_opts_t){.maxsize = 1}), 0);
  RAISES(conc_queue_get_nowait(&q, &p), CONC_PY_queue_Empty, "queue.Empty");
  assert_int_equal(conc_queue_put_nowait(&q, &q), 0);
  RAISES(conc_queue_put_nowait(&q, &q), CONC_PY_queue_Full, "queue.Full");
  assert_int_equal(conc_queue_get_nowait(&q, &p), 0);
  assert_int_equal(conc_queue_task_done(&q), 0);
  RAISES(conc_queue_task_done(&q), CONC_PY_ValueError, "ValueError");
  assert_int_equal(conc_queue_task_done(&q), CONC_ETASKDONE);
  assert_int_equal(conc_queue_shutdown(&q, false), 0);
  RAISES(conc_queue_put_nowait(&q, &q), CONC_PY_queue_ShutDown,
         "queue.ShutDown");
  conc_queue_destroy(&q);
}

static void barrier_abort_is_BrokenBarrierError(void **state) {
  (void)state;
  conc_barrier_t b;
  assert_int_equal(conc_barrier_init(&b, 2, NULL), 0);
  assert_int_equal(conc_barrier_abort(&b), 0);
  RAISES(conc_barrier_wait(&b, CONC_FOREVER), CONC_PY_BrokenBarrierError,
         "BrokenBarrierError");
  assert_true(conc_err_is(CONC_EBROKEN, CONC_PY_RuntimeError));
  assert_int_equal(conc_barrier_destroy(&b), 0);
}

static void process_queue_errors(void **state) {
  (void)state;
  conc_pqueue_t q;
  char small[2];
  size_t len;
  assert_int_equal(conc_pqueue_init(&q, 0, NULL), 0);
  RAISES(conc_pqueue_task_done(&q), CONC_PY_AttributeError, "AttributeError");
  assert_int_equal(conc_pqueue_task_done(&q), CONC_ENOTJOINABLE);
  assert_int_equal(conc_pqueue_put(&q, "abcdef", 6, true, CONC_FOREVER), 0);
  RAISES(conc_pqueue_get_into(&q, small, sizeof small, &len, false, 0),
         CONC_PY_BufferTooShort, "BufferTooShort");
  conc_pqueue_destroy(&q);
}

static void connection_errors(void **state) {
  (void)state;
  conc_conn_t r, w;
  void *msg;
  size_t len;
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  assert_int_equal(conc_pipe(&r, &w, false), 0);
  RAISES(conc_conn_send_bytes(&r, "x", 1), CONC_PY_OSError, "OSError");
  assert_int_equal(conc_conn_close(&w), 0);
  RAISES(conc_conn_recv_bytes(&r, &msg, &len), CONC_PY_EOFError, "EOFError");
  RAISES(conc_conn_send_bytes(&w, "x", 1), CONC_PY_ValueError, "ValueError");
  assert_int_equal(conc_conn_close(&r), 0);
  assert_int_equal(conc_pipe(&r, &w, false), 0);
  assert_int_equal(conc_conn_close(&r), 0);
  RAISES(conc_conn_send_bytes(&w, "x", 1), CONC_PY_BrokenPipeError,
         "BrokenPipeError");
  assert_int_equal(conc_conn_close(&w), 0);
  signal(SIGPIPE, old);
}

static void shared_memory_name_errors(void **state) {
  (void)state;
  char name[64];
  conc_shm_t a, b;
  snprintf(name, sizeof name, "/conc-test-errors-%d", (int)getpid());
  RAISES(conc_shm_init(&b, name, false, 0), CONC_PY_FileNotFoundError,
         "FileNotFoundError");
  assert_int_equal(conc_shm_init(&a, name, true, 4096), 0);
  RAISES(conc_shm_init(&b, name, true, 4096), CONC_PY_FileExistsError,
         "FileExistsError");
  assert_int_equal(conc_shm_unlink(&a), 0);
  conc_shm_destroy(&a);
}

static void index_and_key_errors(void **state) {
  (void)state;
  conc_array_t a;
  conc_shared_dict_t d;
  int x;
  char buf[8];
  size_t len;
  assert_int_equal(conc_array_init(&a, 'i', 3, NULL, NULL), 0);
  RAISES(conc_array_get(&a, 3, &x), CONC_PY_IndexError, "IndexError");
  conc_array_destroy(&a);
  assert_int_equal(conc_shared_dict_init(&d, NULL), 0);
  RAISES(conc_shared_dict_get(&d, "k", 1, buf, sizeof buf, &len),
         CONC_PY_KeyError, "KeyError");
  conc_shared_dict_destroy(&d);
}

static void unset_local_is_AttributeError(void **state) {
  (void)state;
  conc_local_t l;
  void *v;
  assert_int_equal(conc_local_init(&l, NULL), 0);
  RAISES(conc_local_get(&l, &v), CONC_PY_AttributeError, "AttributeError");
  conc_local_destroy(&l);
}

static int finishes(void *arg, void **result) {
  (void)arg;
  (void)result;
  return 0;
}

static int not_a_code(void *arg, void **result) {
  (void)arg;
  (void)result;
  return 1;
}

static int yields_forever(void *arg, void **result) {
  (void)result;
  conc_gen_t *g = arg;
  int rc;
  while ((rc = conc_gen_yield(g, NULL, NULL)) == 0)
    ;
  RAISES(rc, CONC_PY_CancelledError, "CancelledError"); /* GeneratorExit */
  return rc;
}

static void coroutine_errors(void **state) {
  (void)state;
  conc_coro_t co;
  conc_gen_t g;
  void *v;
  assert_int_equal(conc_coro_init(&co, finishes, NULL, NULL), 0);
  assert_int_equal(conc_coro_switch(&co, NULL, NULL), 0);
  RAISES(conc_coro_switch(&co, NULL, NULL), CONC_PY_greenlet_error,
         "greenlet.error");
  assert_int_equal(conc_coro_destroy(&co), 0);
  RAISES(conc_coro_kill(conc_coro_main()), CONC_PY_RuntimeError,
         "RuntimeError");
  assert_int_equal(conc_coro_init(&co, not_a_code, NULL, NULL), 0);
  RAISES(conc_coro_switch(&co, NULL, NULL), CONC_PY_Exception, "Exception");
  assert_int_equal(conc_coro_destroy(&co), 0);
  assert_int_equal(conc_gen_init(&g, yields_forever, NULL, NULL), 0);
  assert_int_equal(conc_gen_next(&g, &v), 0);
  assert_int_equal(conc_gen_close(&g), 0);
  RAISES(conc_gen_next(&g, &v), CONC_PY_EOFError, "EOFError");
  assert_int_equal(conc_gen_destroy(&g), 0);
}

static void pending_interrupt_is_InterruptedError(void **state) {
  (void)state;
  conc_interrupt(); /* as a handler does: the next blocking call ends */
  RAISES(conc_sleep(5), CONC_PY_InterruptedError, "InterruptedError");
  assert_int_equal(conc_interrupt_clear(), 0); /* spent */
}

static int breaks(void *arg) {
  (void)arg;
  return conc_raise(CONC_EIO, "no database");
}

static int task(void *arg, void **result) {
  *result = arg;
  return 0;
}

static void failed_initializer_is_BrokenExecutor(void **state) {
  (void)state;
  conc_executor_t ex;
  conc_future_t *f = NULL;
  void *v;
  assert_int_equal(
      conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 1,
                                                      .initializer = breaks}),
      0);
  assert_int_equal(conc_executor_submit(&ex, task, NULL, &f), 0);
  RAISES(conc_future_result(f, CONC_FOREVER, &v), CONC_PY_BrokenExecutor,
         "BrokenExecutor");
  assert_true(conc_err_is(CONC_EBROKENPOOL, CONC_PY_RuntimeError));
  conc_future_release(f);
  conc_executor_destroy(&ex);
}

static int dies(const void *arg, size_t arg_len, void *result,
                size_t result_cap, size_t *result_len) {
  (void)arg, (void)arg_len, (void)result, (void)result_cap, (void)result_len;
  _exit(3);
}

/* a worker that dies fails its task (libconc's default) */
static void dead_worker_is_BrokenProcessPool(void **state) {
  (void)state;
  conc_process_executor_t ex;
  conc_future_t *f = NULL;
  void *v;
  assert_int_equal(conc_process_executor_init(
                       &ex, &(conc_process_executor_opts_t){.max_workers = 1}),
                   0);
  assert_int_equal(conc_process_executor_submit(&ex, dies, NULL, 0, 0, &f), 0);
  RAISES(conc_future_result(f, CONC_FOREVER, &v), CONC_PY_BrokenProcessPool,
         "BrokenProcessPool");
  assert_true(conc_err_is(CONC_EWORKERDIED, CONC_PY_BrokenExecutor));
  conc_future_release(f);
  conc_process_executor_destroy(&ex);
}

static int child_body(void *arg, void **result) {
  (void)arg, (void)result;
  return 0;
}

/* join() from a process that did not start the child */
static void join_from_another_process_is_ChildProcessError(void **state) {
  (void)state;
  conc_process_t p;
  assert_int_equal(conc_process_init(&p, child_body, NULL, NULL), 0);
  assert_int_equal(conc_process_start(&p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int rc = conc_process_join(&p, 0);
    _exit(conc_err_class(rc) == CONC_PY_ChildProcessError &&
                  strcmp(conc_err_python(rc), "ChildProcessError") == 0
              ? 0
              : 1);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  assert_int_equal(conc_process_join(&p, CONC_FOREVER), 0);
  conc_process_destroy(&p);
}

/* Inside one loop task: a pending future, short streams, a refused port. */
static int aio_errors(void *arg, void **result) {
  (void)arg;
  (void)result;
  conc_aio_future_t *f;
  void *v;
  char buf[16];
  size_t got;
  int sv[2];
  conc_aio_stream_t *s;
  assert_int_equal(conc_aio_future_create(NULL, &f), 0);
  RAISES(conc_aio_future_result(f, &v), CONC_PY_InvalidStateError,
         "InvalidStateError");
  conc_aio_future_release(f);

  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(
      conc_aio_stream_from_fd(sv[0], &(conc_aio_stream_opts_t){.limit = 4}, &s),
      0);
  assert_int_equal(write(sv[1], "abcdefgh", 8), 8);
  RAISES(conc_aio_stream_readuntil(s, "\n", 1, buf, sizeof buf, &got),
         CONC_PY_LimitOverrunError, "LimitOverrunError");
  close(sv[1]);
  RAISES(conc_aio_stream_readexactly(s, buf, sizeof buf, &got),
         CONC_PY_IncompleteReadError, "IncompleteReadError");
  assert_true(conc_err_is(CONC_EINCOMPLETE, CONC_PY_EOFError));
  conc_aio_stream_close(s);
  conc_aio_stream_release(s);

  /* a port nobody listens on: bound, never listening */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  RAISES(conc_aio_open_connection("127.0.0.1", ntohs(a.sin_port), NULL, &s),
         CONC_PY_ConnectionRefusedError, "ConnectionRefusedError");
  assert_true(conc_err_is(CONC_ECONNREFUSED, CONC_PY_ConnectionError));
  close(fd);
  return 0;
}

static void event_loop_errors(void **state) {
  (void)state;
  assert_int_equal(conc_aio_run(aio_errors, NULL, NULL, NULL), 0);
}

/* MemoryError: no address space left for a coroutine stack */
static void no_memory_is_MemoryError(void **state) {
  (void)state;
  if (UNDER_SANITIZER) /* their allocators need the address space */
    skip();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit rl = {0, 0};
    conc_coro_t co;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
      _exit(2);
    int rc = conc_coro_init(&co, finishes, NULL,
                            &(conc_coro_opts_t){.stack_size = 64 << 20});
    _exit(rc == CONC_ENOMEM && conc_err_class(rc) == CONC_PY_MemoryError &&
                  strcmp(conc_err_python(rc), "MemoryError") == 0
              ? 0
              : 1);
  }
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

CONC_TEST_MAIN(cmocka_unit_test(passed_through_errno_prints_its_own_name),
               cmocka_unit_test(every_listed_code_has_a_class_with_a_name),
               cmocka_unit_test(runtime_error_is_one_query),
               cmocka_unit_test(os_errors_follow_pythons_tree),
               cmocka_unit_test(lock_errors),
               cmocka_unit_test(dead_owner_is_OwnerDied),
               cmocka_unit_test(queue_errors),
               cmocka_unit_test(barrier_abort_is_BrokenBarrierError),
               cmocka_unit_test(process_queue_errors),
               cmocka_unit_test(connection_errors),
               cmocka_unit_test(shared_memory_name_errors),
               cmocka_unit_test(index_and_key_errors),
               cmocka_unit_test(unset_local_is_AttributeError),
               cmocka_unit_test(coroutine_errors),
               cmocka_unit_test(pending_interrupt_is_InterruptedError),
               cmocka_unit_test(failed_initializer_is_BrokenExecutor),
               cmocka_unit_test(event_loop_errors),
               cmocka_unit_test(dead_worker_is_BrokenProcessPool),
               cmocka_unit_test(join_from_another_process_is_ChildProcessError),
               cmocka_unit_test(no_memory_is_MemoryError))
