// clang-format off
/*
 * Lesson 92: apply_async with a callback that reports each result.
 * Seed 004 (进程池: "def myFun(i): time.sleep(2); return i + 100;
 * def end_call(arg): print("end_call", arg); p = Pool(5); for i in
 * range(10): p.apply_async(func=myFun, args=(i,), callback=end_call);
 * print("end"); p.close(); p.join()").
 *
 * Python:                                    C:
 *   def end_call(arg):                         static void end_call(conc_async_result_t *res, void *arg) {
 *       print("end_call", arg)                   int v = *(const int *)conc_async_result_value(res, NULL);
 *                                                printf("end_call %d\n", v); ... }
 *   p.apply_async(func=myFun, args=(i,),       conc_pool_apply_async(&p, myFun, &i, sizeof i, sizeof(int),
 *                 callback=end_call)             &(conc_pool_async_opts_t){.callback = end_call}, NULL);
 *
 * The callback gets the finished result, not the bare value: its bytes are
 * at conc_async_result_value(). With five workers and ten tasks of 0.2 s
 * (2 s in the lesson), the results arrive in two waves of five, each wave
 * in whatever order its workers finish, so main collects the values and
 * prints them sorted after join as well.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>

static int seen[10], nseen; /* written by the callbacks, read after join */

static int myFun(const void *arg, size_t arg_len, void *result, size_t cap,
                 size_t *len) {
  (void)arg_len, (void)cap, (void)len;
  conc_sleep(0.2);
  *(int *)result = *(const int *)arg + 100;
  return 0;
}

static void end_call(conc_async_result_t *res, void *arg) {
  (void)arg;
  int v = *(const int *)conc_async_result_value(res, NULL);
  printf("end_call %d\n", v);
  seen[v - 100]++;
  nseen++;
}

int main(void) {
  conc_pool_t p;
  conc_pool_init(&p, &(conc_pool_opts_t){.processes = 5});
  for (int i = 0; i < 10; i++)
    conc_pool_apply_async(&p, myFun, &i, sizeof i, sizeof(int),
                          &(conc_pool_async_opts_t){.callback = end_call},
                          NULL);
  printf("end\n"); /* printed at once: apply_async does not wait */
  fflush(stdout);
  conc_pool_close(&p);
  conc_pool_join(&p);
  printf("after join, %d callbacks, for values:", nseen);
  for (int v = 0; v < 10; v++)
    if (seen[v] == 1)
      printf(" %d", v + 100);
  printf("\n");
  conc_pool_destroy(&p);
  return 0;
}
