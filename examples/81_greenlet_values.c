/*
 * Lesson 81: passing values through switches, parents, death and kill
 * (greenlet's documentation examples).
 *
 * Python:                                  C:
 *   def test1(x):                            static void *test1(void *x) {
 *       z = gr2.switch(x + " world")           conc_coro_switch(gr2, msg, &z);
 *       print(z)                               puts(z);
 *   def test2(u):                            static void *test2(void *u) {
 *       print(u)                               puts(u);
 *       gr1.switch(42)                         conc_coro_switch(gr1, "42",
 * NULL); gr1.switch("hello")                      conc_coro_switch(gr1,
 * "hello", NULL); g.dead / g.parent                        conc_coro_is_dead(g)
 * / conc_coro_parent(g) g.throw(GreenletExit) conc_coro_kill(g)
 *
 * C has no exceptions: where greenlet raises GreenletExit inside a killed
 * greenlet, the killed coroutine's pending conc_coro_switch returns
 * CONC_ECANCELED, and it cleans up and returns.
 */
#include <stdio.h>
#include <string.h>

#include <conc.h>

static conc_coro_t *gr1, *gr2;

static void *test1(void *x) {
  char msg[64];
  void *z = NULL;
  snprintf(msg, sizeof msg, "%s world", (const char *)x);
  conc_coro_switch(gr2, msg, &z); /* z = gr2.switch(x + " world") */
  printf("test1 got %s\n", (const char *)z);
  return "test1's result";
}

static void *test2(void *u) {
  printf("test2 got %s\n", (const char *)u);
  conc_coro_switch(gr1, "42", NULL);
  return NULL; /* never reached: nobody switches back to test2 */
}

/* A worker that serves requests until it is killed. */
static void *worker(void *first) {
  void *req = first;
  conc_coro_t *boss = conc_coro_parent(conc_coro_current());
  for (;;) {
    printf("worker handles %s\n", (const char *)req);
    int rc = conc_coro_switch(boss, "done", &req);
    if (rc == CONC_ECANCELED) {
      puts("worker: killed, closing its files and returning");
      return NULL;
    }
  }
}

int main(void) {
  void *result = NULL;
  if (conc_coro_create(&gr1, test1, NULL, NULL) != 0 ||
      conc_coro_create(&gr2, test2, NULL, NULL) != 0)
    return 1;
  /* gr1 returns to its parent (main) with its result. */
  conc_coro_switch(gr1, "hello", &result);
  printf("main got %s\n", (const char *)result);
  printf("gr1 dead: %s, gr2 dead: %s\n", conc_coro_is_dead(gr1) ? "yes" : "no",
         conc_coro_is_dead(gr2) ? "yes" : "no");
  int rc = conc_coro_switch(gr1, NULL, NULL);
  printf("switch to dead gr1: %s (Python's %s)\n", conc_err_name(rc),
         conc_err_python(rc));

  conc_coro_t *w;
  if (conc_coro_create(&w, worker, NULL,
                       &(conc_coro_opts_t){.name = "worker"}) != 0)
    return 1;
  void *reply;
  conc_coro_switch(w, "request 1", &reply);
  conc_coro_switch(w, "request 2", &reply);
  printf("%s said %s; its parent is %s\n", conc_coro_name(w),
         (const char *)reply, conc_coro_name(conc_coro_parent(w)));
  conc_coro_kill(w);
  printf("worker dead: %s\n", conc_coro_is_dead(w) ? "yes" : "no");

  conc_coro_destroy(w);
  conc_coro_destroy(gr2); /* still suspended in test2: killed first */
  conc_coro_destroy(gr1);
  return 0;
}
