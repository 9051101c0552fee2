// clang-format off
/*
 * Lesson 81: passing values through switches, parents, death, exceptions
 * and kill (greenlet's documentation examples).
 *
 * Python:                                  C:
 *   def test1(x):                            static int test1(void *x, void **result) {
 *       z = gr2.switch(x + " world")           conc_coro_switch(gr2, msg, &z);
 *       print(z)                               puts(z);
 *       return "result"                        *result = "result"; return 0; }
 *   def test2(u):                            static int test2(void *u, void **result) {
 *       print(u)                               puts(u);
 *       gr1.switch(42)                         conc_coro_switch(gr1, "42", NULL);
 *   gr1.switch("hello")                      conc_coro_switch(gr1, "hello", NULL);
 *   raise ValueError("bad request")          return conc_raise(CONC_EINVAL, "bad request");
 *   except ValueError as e:                  if (conc_err_is(rc, CONC_PY_ValueError))
 *   g.dead / g.parent                        conc_coro_is_dead(g) / conc_coro_parent(g)
 *   g.throw(GreenletExit)                    conc_coro_kill(g)
 *
 * A coroutine function returns 0 with the value it finishes with, or a
 * negative code: its exception, which the parent's pending switch returns
 * (with the conc_raise message), as greenlet raises it in the parent. Where
 * greenlet raises GreenletExit inside a killed greenlet, the killed
 * coroutine's pending conc_coro_switch returns CONC_ECANCELED, and it cleans
 * up and returns.
 */
// clang-format on
#include <stdio.h>
#include <string.h>

#include <conc.h>

static conc_coro_t *gr1, *gr2;

static int test1(void *x, void **result) {
  char msg[64];
  void *z = NULL;
  snprintf(msg, sizeof msg, "%s world", (const char *)x);
  conc_coro_switch(gr2, msg, &z); /* z = gr2.switch(x + " world") */
  printf("test1 got %s\n", (const char *)z);
  *result = "test1's result";
  return 0;
}

static int test2(void *u, void **result) {
  (void)result;
  printf("test2 got %s\n", (const char *)u);
  /* killed when destroyed: GreenletExit goes on up */
  return conc_coro_switch(gr1, "42", NULL);
}

/* raise ValueError("bad request: ...") */
static int picky(void *req, void **result) {
  (void)result;
  return conc_raise(CONC_EINVAL, "bad request: %s", (const char *)req);
}

/* A worker that serves requests until it is killed. */
static int worker(void *first, void **result) {
  void *req = first;
  conc_coro_t *boss = conc_coro_parent(conc_coro_current());
  for (;;) {
    printf("worker handles %s\n", (const char *)req);
    int rc = conc_coro_switch(boss, "done", &req);
    if (rc == CONC_ECANCELED) {
      puts("worker: killed, closing its files and returning");
      (void)result;
      return rc;
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

  /* The exception of a coroutine comes out of the switch that ran it. */
  conc_coro_t *p;
  if (conc_coro_create(&p, picky, NULL, NULL) != 0)
    return 1;
  rc = conc_coro_switch(p, "fetch /x", NULL);
  if (conc_err_is(rc, CONC_PY_ValueError)) /* except ValueError as e: */
    printf("main caught %s: %s\n", conc_err_python(rc),
           conc_raised_message(rc));
  conc_coro_destroy(p);

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
