# Every array test case (tests/test_array_*.cpp, NumPy as the oracle) on 3
# ranks, 2 of them workers: each case computes its arrays on the sync,
# threads and distributed schedulers (tests/mpi/array_suite_main.cpp).
set -e
# The whole suite takes about a minute on 2 quiet cores and twice that when
# they are busy: more than mpirun.sh's default allows.
: "${TEST_MPI_TIMEOUT:=400}"
. "$top_srcdir/tests/mpi/mpirun.sh"
weft_mpirun 3 "$top_builddir/tests/mpi/array-suite"
