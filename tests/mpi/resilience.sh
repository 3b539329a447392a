# Resilience under mpirun (tests/mpi/resilience_test.cpp): a worker whose
# task hangs is removed after worker-ttl and its tasks run elsewhere;
# retries; KilledWorker past allowed-failures. Every job must exit 0 with no
# rank left behind, although the hung rank's task never returns (stop-grace).
# Every run goes through weft_mpirun, which wraps mpirun in `timeout`.
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/resilience-test"
log=resilience-test.$$.log
dir=resilience-test.$$.d
fail() { echo "resilience.sh: FAIL: $*" >&2; cat "$log" >&2; rm -rf "$log" "$dir"; exit 1; }
# Short times for a test (Dask's defaults are 5 minutes and 10 s).
export WEFT_DISTRIBUTED__SCHEDULER__WORKER_TTL=2s
export WEFT_DISTRIBUTED__WORKER__HEARTBEAT_INTERVAL=200ms
export WEFT_DISTRIBUTED__WORKER__STOP_GRACE=1s

no_orphans() {
  sleep 1
  if pgrep -f "$prog $1" >/dev/null; then
    pkill -KILL -f "$prog $1"
    fail "ranks of '$1' outlived the job"
  fi
}

weft_mpirun 4 "$prog" hung >"$log" 2>&1 || fail "hung (status $?)"
grep -q 'resilience-test: hung ok' "$log" || fail "hung: no result"
grep -q 'removed worker rank 1: stopped heartbeating' "$log" || fail "hung: rank 1 was not removed"
grep -q 'worker rank 1 .*still running after distributed.worker.stop-grace' "$log" ||
  fail "hung: rank 1 did not abandon its task"
no_orphans hung

mkdir -p "$dir"
weft_mpirun 3 "$prog" retries "$dir" >"$log" 2>&1 || fail "retries (status $?)"
grep -q 'resilience-test: retries ok' "$log" || fail "retries: no result"

WEFT_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 weft_mpirun 3 "$prog" killed >"$log" 2>&1 ||
  fail "killed (status $?)"
grep -q 'resilience-test: killed ok' "$log" || fail "killed: no result"
no_orphans killed
rm -rf "$log" "$dir"
exit 0
