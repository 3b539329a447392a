# Coordination primitives under contention (tests/mpi/coordination_test.cpp):
# without a launcher (in-process state) and on 1 to 4 ranks, with two
# compute threads per worker so tasks on one worker contend too.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/coordination-test"
echo "coordination.sh: without a launcher"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 3 4; do
  weft_mpirun $n "$test_program" --nthreads 2
done
weft_mpirun 2 "$test_program"
