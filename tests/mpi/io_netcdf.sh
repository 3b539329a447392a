# NetCDF-4 on the distributed scheduler (tests/mpi/io_netcdf_test.cpp):
# parallel writes and appends checked by xarray, without a launcher and on 1
# to 5 ranks.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/io-netcdf-test"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 2 3 4 5; do
  weft_mpirun $n "$test_program"
done
