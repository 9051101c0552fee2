/*
 * The distributed Pool against a hand-written C MPI master/worker and
 * mpi4py.futures on the same work: n no-op tasks at chunksize 1 over two
 * worker ranks (`mpirun -np 3`), the figure. Every variant is one
 * mpirun job per round that times only its n tasks on rank 0 and prints the
 * seconds (start-up of the job is not counted); rounds interleave as in
 * every bench (bench.h).
 * Locking: none (children do the work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static const char py_script[] = "import sys, time\n"
                                "from mpi4py.futures import MPIPoolExecutor\n"
                                "def noop(x):\n"
                                "    return x\n"
                                "if __name__ == '__main__':\n"
                                "    n = int(sys.argv[1])\n"
                                "    with MPIPoolExecutor() as ex:\n"
                                "        list(ex.map(noop, range(64)))\n"
                                "        t0 = time.perf_counter()\n"
                                "        r = list(ex.map(noop, range(n)))\n"
                                "        t = time.perf_counter() - t0\n"
                                "    assert r == list(range(n))\n"
                                "    print(t)\n";

static char py_path[64];

/* Run `cmd n` and return the last number it printed, or -1. */
static double run_job(const char *cmd, long n) {
  char line[1024], last[1024] = "";
  snprintf(line, sizeof line, "%s %ld 2>/dev/null", cmd, n);
  FILE *p = popen(line, "r");
  if (!p)
    return -1;
  while (fgets(line, sizeof line, p))
    if (line[0] >= '0' && line[0] <= '9')
      snprintf(last, sizeof last, "%s", line);
  int st = pclose(p);
  return st == 0 && last[0] ? atof(last) : -1;
}

static double run_cmd(void *cmd, long n) { return run_job(cmd, n); }

int main(int argc, char **argv) {
  bench_init(argc, argv);
  const char *root = getuid() == 0 ? " --allow-run-as-root" : "";
  static char libconc[512], imap[512], raw[512], py[512];
  snprintf(libconc, sizeof libconc, "%s -np 3 --oversubscribe%s %s libconc",
           BENCH_MPIEXEC, root, BENCH_MPI_CHILD);
  snprintf(imap, sizeof imap, "%s -np 3 --oversubscribe%s %s imap",
           BENCH_MPIEXEC, root, BENCH_MPI_CHILD);
  snprintf(raw, sizeof raw, "%s -np 3 --oversubscribe%s %s raw", BENCH_MPIEXEC,
           root, BENCH_MPI_CHILD);
  snprintf(py_path, sizeof py_path, "/tmp/conc_bench_mpi4py_%d.py",
           (int)getpid());
  FILE *f = fopen(py_path, "w");
  if (f) {
    fputs(py_script, f);
    fclose(f);
  }
  snprintf(py, sizeof py,
           "%s -np 3 --oversubscribe%s /usr/bin/python3 -m mpi4py.futures %s",
           BENCH_MPIEXEC, root, py_path);
  bench_variant_t v[] = {
      {"libconc_mpi map, chunksize 1", run_cmd, libconc, 0},
      {"hand-written C MPI master/worker", run_cmd, raw, 0},
      {"mpi4py.futures map", run_cmd, py, 2000},
      {"libconc_mpi imap_unordered, chunksize 1", run_cmd, imap, 20000},
  };
  bench_compare("MPI pool: no-op tasks over 2 worker ranks", "tasks", 100000, v,
                4);
  unlink(py_path);
  return bench_finish();
}
