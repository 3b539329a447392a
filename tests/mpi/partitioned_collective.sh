# Partitioned collective steps end to end (tests/mpi/partitioned_collective_test.cpp)
# without a launcher (local threads) and on 1 to 4 ranks.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/partitioned-collective-test"
echo "partitioned_collective.sh: without a launcher"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program"
for n in 1 2 3 4; do
  weft_mpirun $n "$test_program"
done
# Parts spilled to disk (a store target of 1 byte: every result; no RSS
# thresholds) are read back by their owners.
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-partitioned-collective.XXXXXX")
trap 'rm -rf "$dir"' EXIT
WEFT_DISTRIBUTED__WORKER__MEMORY__TARGET=0.000000001 WEFT_DISTRIBUTED__WORKER__MEMORY__SPILL=0 \
  WEFT_DISTRIBUTED__WORKER__MEMORY__PAUSE=0 WEFT_DISTRIBUTED__WORKER__MEMORY__TERMINATE=0 \
  weft_mpirun 3 "$test_program" "[.spill]" --memory-limit 400MB --local-directory "$dir"
