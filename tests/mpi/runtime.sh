# The distributed runtime's end-to-end cases (tests/mpi/runtime_test.cpp)
# without a launcher (local threads) and on 1 to 5 ranks.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/runtime-test"
echo "runtime.sh: without a launcher"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 2 3 4 5; do
  weft_mpirun $n "$test_program"
done
# Workers with two threads and one GPU each (the resources case).
weft_mpirun 3 "$test_program" --nthreads 2 --resources GPU=1
