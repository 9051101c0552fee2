// clang-format off
/*
 * Lesson 41: executor.map over 10,000 items, with a progress bar.
 * Seed 003 ("Есть многопоточный аналог функции map": it = [x * 10 for x in
 * range(10000)]; for r in executor.map(lambda x: x ** 2, it): pass, shown
 * with tqdm's progress bar).
 *
 *   Python:                                  C:
 *   it = [x * 10 for x in range(10000)]      void *it[N]; it[x] = (void *)(x * 10);
 *   for r in tqdm(executor.map(              conc_map_t m;
 *           lambda x: x ** 2, it)):          conc_executor_map(&ex, square, it, N, CONC_FOREVER, &m);
 *       pass                                 while (conc_map_next(&m, &r) == 0) { bar(...); }
 *                                            conc_map_close(&m);
 *
 * map submits all 10,000 tasks at once and hands the results back in input
 * order, however the workers interleave; conc_map_next returns CONC_EEOF
 * after the last one. The bar (tqdm's job) is drawn only when stdout is a
 * terminal, so the output checked by the test suite (stdout into a pipe)
 * stays the same.
 */
// clang-format on
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <conc.h>

#define N 10000

static int square(void *arg, void **result) {
  intptr_t x = (intptr_t)arg;
  *result = (void *)(x * x);
  return 0;
}

static void bar(long done, long total) {
  int width = 40, filled = (int)(done * width / total);
  printf("\r%3ld%% |", done * 100 / total);
  for (int i = 0; i < width; i++)
    putchar(i < filled ? '#' : ' ');
  printf("| %ld/%ld", done, total);
  if (done == total)
    putchar('\n');
  fflush(stdout);
}

int main(void) {
  static void *it[N];
  for (intptr_t x = 0; x < N; x++)
    it[x] = (void *)(x * 10);

  conc_executor_t ex;
  conc_executor_init(&ex, &(conc_executor_opts_t){.max_workers = 3});
  conc_map_t m;
  if (conc_executor_map(&ex, square, it, N, CONC_FOREVER, &m) != 0)
    return 1;

  bool tty = isatty(1);
  long count = 0, in_order = 1;
  long long sum = 0;
  void *r;
  while (conc_map_next(&m, &r) == 0) {
    intptr_t want = (intptr_t)it[count] * (intptr_t)it[count];
    in_order &= (intptr_t)r == want;
    sum += (intptr_t)r;
    count++;
    if (tty && (count % 100 == 0 || count == N))
      bar(count, N);
  }
  conc_map_close(&m);
  conc_executor_destroy(&ex);

  printf("results: %ld\n", count);
  printf("in input order: %s\n", in_order ? "yes" : "no");
  printf("sum of squares: %lld\n", sum);
  return 0;
}
