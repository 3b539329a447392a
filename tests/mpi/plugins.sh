# Worker plugins and preloads (tests/mpi/plugins_test.cpp): without a
# launcher (the process's pool is the one worker, rank 0) and on 3 ranks (2
# workers with 2 threads each), every rank loading tests/weft-preload-test.la.
# After each job: every worker's plugin teardown wrote its file (the tasks it
# saw finish add up to the 6 of the last case), and every rank's preload
# weft_teardown appended a line.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"
test_program="$top_builddir/tests/mpi/plugins-test"
preload="$top_builddir/tests/.libs/weft-preload-test.so"
if ! test -f "$preload"; then
  echo "plugins.sh: $preload is missing: make tests/weft-preload-test.la (libtool builds it only with shared libraries enabled)" >&2
  exit 1
fi
PLUGINS_TEST_DIR=$(mktemp -d)
PRELOAD_TEST_TEARDOWN="$PLUGINS_TEST_DIR/preload-teardowns"
export PLUGINS_TEST_DIR PRELOAD_TEST_TEARDOWN
trap 'rm -rf "$PLUGINS_TEST_DIR"' EXIT

# check_job NRANKS WORKER_RANKS...: the workers' teardown files, and one
# preload teardown line per rank.
check_job() {
  nranks=$1
  shift
  finished=0
  for rank in "$@"; do
    line=$(cat "$PLUGINS_TEST_DIR/teardown-$rank")
    echo "plugins.sh: rank $rank's plugin teardown: $line"
    finished=$((finished + ${line#finished }))
  done
  test "$finished" -eq 6
  test "$(grep -c '^teardown [0-9]*$' "$PRELOAD_TEST_TEARDOWN")" -eq "$nranks"
  rm -f "$PLUGINS_TEST_DIR"/*
}

echo "plugins.sh: without a launcher"
timeout -k 10 "$TEST_MPI_TIMEOUT" "$test_program" --preload "$preload"
check_job 1 0
weft_mpirun 3 "$test_program" --nthreads 2 --preload "$preload"
check_job 3 1 2
