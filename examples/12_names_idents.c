// clang-format off
/*
 * Lesson 12: thread names and identifiers.
 * Seeds 000 (default "Thread-N", an explicit name, ident after start) and
 * 001 (t1.getName() of two sayhi threads).
 *
 * Python:                                     C:
 *   threading.Thread().name                     conc_thread_init(&a, NULL, NULL, NULL);
 *                                               conc_thread_name(&a)          // "Thread-1"
 *   threading.Thread(name="NumberCruncher")     conc_thread_init(&b, NULL, NULL,
 *                                                 &(conc_thread_opts_t){.name = "NumberCruncher"});
 *   t.start(); t.ident                          conc_thread_start(&t); conc_thread_ident(&t)
 *   t.native_id                                 conc_thread_native_id(&t)
 *   threading.Thread(target=sayhi, ...)         &(conc_thread_opts_t){.target_name = "sayhi"}
 *                                                 // "Thread-N (sayhi)"
 *   t.name = "renamed"                          conc_thread_set_name(&t, "renamed");
 *   threading.current_thread().name             conc_thread_name(conc_current_thread())
 *   threading.get_ident()                       conc_get_ident()
 *
 * N comes from one process-wide counter that only unnamed threads use. The
 * notebook printed Thread-9 because IPython had made threads before; a
 * fresh C program starts at Thread-1. A C function pointer has no
 * __name__, so the "(target)" suffix Python adds comes from target_name.
 * Idents differ from run to run, so this lesson prints facts about them.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static unsigned long seen_ident; /* get_ident() inside the thread */

static int remember_ident(void *arg, void **result) {
  (void)arg;
  seen_ident = conc_get_ident(); /* main reads it after join */
  return 0;
}

static int sayhi(void *arg, void **result) {
  (void)arg;
  conc_sleep(0.02); /* time.sleep(3), shortened */
  return 0;
}

int main(void) {
  /* print(threading.Thread().name) */
  conc_thread_t a;
  conc_thread_init(&a, NULL, NULL, NULL);
  printf("%s\n", conc_thread_name(&a));

  /* print(threading.Thread(name="NumberCruncher").name) */
  conc_thread_t b;
  conc_thread_init(&b, NULL, NULL,
                   &(conc_thread_opts_t){.name = "NumberCruncher"});
  printf("%s\n", conc_thread_name(&b));

  /* t = threading.Thread(); t.start(); t.ident */
  conc_thread_t t;
  conc_thread_init(&t, remember_ident, NULL, NULL);
  printf("%s: ident before start = %lu\n", conc_thread_name(&t),
         conc_thread_ident(&t));
  conc_thread_start(&t);
  unsigned long ident = conc_thread_ident(&t);
  printf("ident after start is set: %s\n", ident != 0 ? "yes" : "no");
  printf("native_id after start is set: %s\n",
         conc_thread_native_id(&t) != 0 ? "yes" : "no");
  conc_thread_join(&t, CONC_FOREVER);
  printf("get_ident() inside the thread == t.ident: %s\n",
         seen_ident == ident ? "yes" : "no");
  printf("ident kept after the thread ended: %s\n",
         conc_thread_ident(&t) == ident ? "yes" : "no");
  printf("differs from the main thread's ident: %s\n",
         ident != conc_get_ident() ? "yes" : "no");

  /* t1 = threading.Thread(target=sayhi, args=(1,)); ... t1.getName() */
  conc_thread_t t1, t2;
  conc_thread_init(&t1, sayhi, NULL,
                   &(conc_thread_opts_t){.target_name = "sayhi"});
  conc_thread_init(&t2, sayhi, NULL,
                   &(conc_thread_opts_t){.target_name = "sayhi"});
  conc_thread_start(&t1);
  conc_thread_start(&t2);
  printf("%s\n%s\n", conc_thread_name(&t1), conc_thread_name(&t2));
  conc_thread_set_name(&t2, "renamed"); /* t2.setName("renamed") */
  printf("%s\n", conc_thread_name(&t2));
  conc_thread_join(&t1, CONC_FOREVER);
  conc_thread_join(&t2, CONC_FOREVER);

  /* threading.current_thread().name in the main thread */
  printf("%s\n", conc_thread_name(conc_current_thread()));

  conc_thread_destroy(&a);
  conc_thread_destroy(&b);
  conc_thread_destroy(&t);
  conc_thread_destroy(&t1);
  conc_thread_destroy(&t2);
  return 0;
}
