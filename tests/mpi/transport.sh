# The Transport on 2 to 5 ranks, with the main thread as comm thread
# (MPI_THREAD_FUNNELED) and with a second thread (MPI_THREAD_SERIALIZED);
# buffers over 1 GiB (two chunks) on 2 ranks. A smoke run of the benchmark
# checks that it still works; its figures are not judged here.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/transport-test"
for n in 2 3 4 5; do
  weft_mpirun $n "$test_program"
done
weft_mpirun 3 "$test_program" --comm-thread
weft_mpirun 2 "$test_program" --huge
weft_mpirun 3 "$top_builddir/tests/mpi/transport-bench" --round-trips 200 --messages 2000
