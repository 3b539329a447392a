# Arrays on the distributed scheduler (tests/mpi/array_test.cpp): the same
# elements as the sync scheduler, without a launcher and on 1 to 4 ranks; and a
# worker's idle compute thread helping a long task.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/array-test"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 2 3 4; do
  weft_mpirun $n "$test_program"
done
# A worker with two compute threads: the idle one helps a long task.
weft_mpirun 2 "$test_program" --nthreads 2 "[help]"
