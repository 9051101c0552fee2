// clang-format off
/*
 * Lesson 96: lesson 90's Pool.map, run across machines with MPI. The one
 * changed line is the pool's init; two added lines (CONC_MPI_MAIN and
 * CONC_TASK) do nothing when the program runs alone.
 *
 * Built with -DCONC_WITH_MPI=ON, linked with libconc_mpi (conc::mpi, or
 * `pkg-config --libs conc-mpi`) instead of libconc. Run it:
 *   ./96_pool_map_mpi                   alone: a local Pool (with a notice)
 *   mpirun -np 3 ./96_pool_map_mpi      rank 0 runs main, ranks 1-2 work
 *
 * Python (mpi4py.futures):                  C:
 *   def doubler(number):                      static int doubler(const void *arg, size_t arg_len, void *result,
 *       return number * 2                                        size_t result_cap, size_t *result_len)
 *   (pickled by name)                         CONC_TASK(doubler, doubler);
 *   python -m mpi4py.futures lesson.py        CONC_MPI_MAIN(&argc, &argv);   (first in main)
 *   with MPIPoolExecutor() as pool:           conc_mpi_pool_init(&pool, NULL);   (was conc_pool_init)
 *       print(list(pool.map(doubler, xs)))    conc_pool_map(&pool, doubler, numbers, 8, sizeof(int), sizeof(int),
 *                                                           NULL, out, NULL);
 *
 * Why the registry: every rank runs its own copy of the program, at its own
 * addresses, so a function pointer means nothing to another rank. The pool
 * sends the task's registered name's id instead, and the ranks check at
 * start-up that they all run the same build.
 */
// clang-format on
#include <stdio.h>

#include <conc.h>
#include <conc/mpi.h>

static int doubler(const void *arg, size_t arg_len, void *result,
                   size_t result_cap, size_t *result_len) {
  (void)arg_len, (void)result_cap, (void)result_len; /* fixed sizes here */
  *(int *)result = *(const int *)arg * 2;
  return 0;
}
CONC_TASK(doubler, doubler); /* added: the name the ranks agree on */

int main(int argc, char **argv) {
  if (CONC_MPI_MAIN(&argc, &argv) != 0) /* added: ranks > 0 stay inside */
    return 1;
  int numbers[] = {5, 10, 20, 40, 80, 160, 320, 640}, out[8];
  conc_pool_t pool;
  if (conc_mpi_pool_init(&pool, NULL) != 0) /* the changed line */
    return 1;
  int rc = conc_pool_map(&pool, doubler, numbers, 8, sizeof(int), sizeof(int),
                         NULL, out, NULL);
  conc_pool_close(&pool);
  conc_pool_join(&pool);
  conc_pool_destroy(&pool);
  if (rc != 0)
    return 1;
  for (int i = 0; i < 8; i++)
    printf("%s%d", i ? ", " : "[", out[i]);
  printf("]\n");
  return 0;
}
