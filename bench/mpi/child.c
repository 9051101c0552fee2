/*
 * The MPI benchmark's child, run under `mpirun -np 3` by bench_mpi (one
 * job per variant and round): it maps n no-op tasks at chunksize 1 over the
 * two worker ranks and prints the seconds the n tasks took on rank 0.
 *   bench_mpi_child libconc N   conc_pool_map on a conc_mpi_pool_init pool
 *   bench_mpi_child imap N      conc_pool_imap_unordered on one, chunksize 1
 *   bench_mpi_child raw N       a hand-written MPI master/worker: 2 tasks in
 *                               flight per worker, blocking receives
 * Locking: none; one thread per rank.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "conc/error.h"
#include "conc/mpi.h"

static int noop(const void *arg, size_t len, void *res, size_t cap,
                size_t *rlen) {
  (void)len;
  (void)cap;
  memcpy(res, arg, sizeof(int64_t));
  *rlen = sizeof(int64_t);
  return 0;
}
CONC_TASK(noop, noop);

/* imap_unordered: the results as they come, one next() per task. */
static int imap_all(conc_pool_t *pool, const int64_t *in, long n,
                    int64_t *out) {
  conc_imap_t *it;
  int rc = conc_pool_imap_unordered(pool, noop, in, (size_t)n, sizeof *in,
                                    sizeof *out, 1, &it);
  if (rc != 0)
    return rc;
  int64_t v;
  size_t idx;
  while ((rc = conc_imap_next(it, -1, &v, &idx)) == 0)
    out[idx] = v;
  conc_imap_release(it);
  return rc == CONC_EEOF ? 0 : rc;
}

static double run_libconc(long n, bool imap) {
  int64_t *in = calloc((size_t)n, sizeof *in), *out = calloc((size_t)n, 8);
  for (long i = 0; i < n; i++)
    in[i] = i;
  conc_pool_t pool;
  if (conc_mpi_pool_init(&pool, NULL) != 0)
    return -1;
  double t0 = MPI_Wtime();
  int rc =
      imap ? imap_all(&pool, in, n, out)
           : conc_pool_map(&pool, noop, in, (size_t)n, sizeof *in, sizeof *out,
                           &(conc_pool_map_opts_t){.chunksize = 1}, out, NULL);
  double t = MPI_Wtime() - t0;
  conc_pool_destroy(&pool);
  for (long i = 0; i < n && rc == 0; i++)
    rc = out[i] == i ? 0 : -1;
  free(in);
  free(out);
  return rc == 0 ? t : -1;
}

enum { TAG_TASK = 1, TAG_RESULT, TAG_STOP };

static double run_raw_master(long n, int workers) {
  double t0 = MPI_Wtime();
  long sent = 0, got = 0;
  for (int k = 0; k < 2; k++)
    for (int w = 1; w <= workers && sent < n; w++, sent++)
      MPI_Send(&sent, 1, MPI_LONG, w, TAG_TASK, MPI_COMM_WORLD);
  while (got < n) {
    long y;
    MPI_Status st;
    MPI_Recv(&y, 1, MPI_LONG, MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st);
    got++;
    if (sent < n) {
      MPI_Send(&sent, 1, MPI_LONG, st.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
      sent++;
    }
  }
  double t = MPI_Wtime() - t0;
  for (int w = 1; w <= workers; w++)
    MPI_Send(&sent, 1, MPI_LONG, w, TAG_STOP, MPI_COMM_WORLD);
  return t;
}

static void run_raw_worker(void) {
  for (;;) {
    long x;
    MPI_Status st;
    MPI_Recv(&x, 1, MPI_LONG, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    if (st.MPI_TAG == TAG_STOP)
      return;
    MPI_Send(&x, 1, MPI_LONG, 0, TAG_RESULT, MPI_COMM_WORLD);
  }
}

int main(int argc, char **argv) {
  if (argc < 3)
    return 2;
  long n = atol(argv[2]);
  bool imap = strcmp(argv[1], "imap") == 0;
  if (strcmp(argv[1], "libconc") == 0 || imap) {
    if (CONC_MPI_MAIN(&argc, &argv) != 0 || !conc_mpi_active())
      return 1;
    double t = run_libconc(n, imap);
    printf("%.9f\n", t);
    return t < 0;
  }
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0)
    printf("%.9f\n", run_raw_master(n, size - 1));
  else
    run_raw_worker();
  MPI_Finalize();
  return 0;
}
