# The distributed Pool's benchmark (CONC_WITH_MPI=ON): bench_mpi runs its
# variants as mpirun jobs of bench_mpi_child (libconc_mpi and a hand-written
# MPI master/worker) and of mpi4py.futures (Debian's python3-mpi4py).
if(CONC_WITH_MPI)
  add_executable(bench_mpi_child ${CMAKE_CURRENT_SOURCE_DIR}/mpi/child.c)
  target_link_libraries(bench_mpi_child PRIVATE conc_mpi_static conc_warnings)
  conc_add_bench(bench_mpi ${CMAKE_CURRENT_SOURCE_DIR}/mpi/bench_mpi.c)
  add_dependencies(bench_mpi bench_mpi_child)
  target_compile_definitions(bench_mpi PRIVATE
    BENCH_MPIEXEC="${MPIEXEC_EXECUTABLE}"
    BENCH_MPI_CHILD="$<TARGET_FILE:bench_mpi_child>")
  set_tests_properties(bench_mpi_smoke PROPERTIES LABELS "bench-smoke;mpi")
endif()
