# npy stacks and raw files on the distributed scheduler
# (tests/mpi/io_npy_test.cpp): every worker writes the blocks it holds,
# NumPy and dask check the files; without a launcher and on 1 to 3 ranks.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/io-npy-test"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 2 3; do
  weft_mpirun $n "$test_program"
done
