// clang-format off
/*
 * Lesson 88: the asynchronous context manager and the asynchronous
 * iterator, in their C forms (seed 002).
 *
 * Python:                                    C:
 *   class AsyncContextManager:                 typedef struct ctx {...} ctx_t;
 *       async def __aenter__(self): ...          static int ctx_enter(ctx_t *c)  (may await)
 *       async def __aexit__(self, *exc): ...     static int ctx_exit(ctx_t *c, int rc)  (may await)
 *   async with AsyncContextManager() as ctx:   ctx_t c; int rc = ctx_enter(&c);
 *       await asyncio.sleep(2)                   if (rc == 0) rc = ctx_exit(&c, conc_aio_sleep(0.1));
 *
 *   class AsyncIterator:                       typedef struct ticker {...} ticker_t;
 *       async def __anext__(self):               static int ticker_next(ticker_t *t, int *out)
 *           return 123                             (0 and an item, or CONC_EEOF at the end)
 *   async for i in AsyncIterator():            while (ticker_next(&t, &i) == 0) { ... }
 *       print(i); break
 *
 * Python needs __aenter__/__anext__ to be coroutines because only a
 * coroutine may await. A libconc task runs on its own stack, so plain C
 * functions may wait: "async with" is an enter and an exit function that
 * are free to await, and "async for" is a next function that awaits and
 * returns 0 for an item or CONC_EEOF at the end (StopAsyncIteration), the
 * rule every libconc iterator follows. The exit function receives the
 * body's outcome, as __aexit__ receives its exception, and returns what
 * the block ends with.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

typedef struct ctx {
  const char *name;
} ctx_t;

static int ctx_enter(ctx_t *c) {
  printf("entering context %s\n", c->name);
  return conc_aio_sleep(0.01); /* __aenter__ may await: so may this */
}

static int ctx_exit(ctx_t *c, int rc) {
  conc_aio_sleep(0.01);
  printf("exiting context %s (body returned %s)\n", c->name,
         rc ? conc_err_name(rc) : "0");
  return rc; /* returning 0 here would swallow the error, as __aexit__ may */
}

typedef struct ticker {
  int value, left;
} ticker_t;

static int ticker_next(ticker_t *t, int *out) {
  if (t->left-- == 0)
    return CONC_EEOF;            /* StopAsyncIteration */
  int rc = conc_aio_sleep(0.01); /* __anext__ awaits between items */
  if (rc)
    return rc;
  *out = t->value++;
  return 0;
}

static int main_task(void *arg, void **res) {
  (void)arg;
  (void)res;
  ctx_t c = {"A"};
  int rc = ctx_enter(&c);
  if (rc == 0) {
    puts("  inside the block");
    rc = ctx_exit(&c, conc_aio_sleep(0.05));
  }
  /* async for i in AsyncIterator(): print(i); break */
  ticker_t one = {.value = 123, .left = -1};
  int i;
  while (ticker_next(&one, &i) == 0) {
    printf("%d\n", i);
    break;
  }
  /* an iterator that ends by itself */
  ticker_t three = {.value = 1, .left = 3};
  while ((rc = ticker_next(&three, &i)) == 0)
    printf("item %d\n", i);
  printf("end of iteration: %s\n", conc_err_name(rc));
  return 0;
}

int main(void) { return conc_aio_run(main_task, NULL, NULL, NULL) != 0; }
