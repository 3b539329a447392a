# Worker memory end to end (tests/mpi/memory_test.cpp) on 3 ranks: two
# workers of 300 MiB (200 MB for spilling), their spill folder in a fresh
# directory that must be empty again afterwards.
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/memory-test"
log=memory-test.$$.log
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-memory-test.XXXXXX")
fail() { echo "memory.sh: FAIL: $*" >&2; cat "$log" >&2; rm -rf "$log" "$dir"; exit 1; }

# Heartbeats, with a short worker-ttl so that a 6 s task counts as hung.
WEFT_DISTRIBUTED__SCHEDULER__WORKER_TTL=1s \
  weft_mpirun 3 "$prog" heartbeat --memory-limit 300MiB --local-directory "$dir" >"$log" 2>&1 ||
  fail "heartbeat (status $?)"

weft_mpirun 3 "$prog" spill --memory-limit 200MB --local-directory "$dir" >"$log" 2>&1 || fail "spill (status $?)"
test -z "$(ls -A "$dir")" || fail "spill files left in $dir: $(ls -A "$dir")"

# Pause alone: no spilling (it would free the memory) and no terminate.
WEFT_DISTRIBUTED__WORKER__MEMORY__TARGET=0 WEFT_DISTRIBUTED__WORKER__MEMORY__SPILL=0 \
  WEFT_DISTRIBUTED__WORKER__MEMORY__TERMINATE=0 \
  weft_mpirun 3 "$prog" pause --memory-limit 300MiB --local-directory "$dir" >"$log" 2>&1 ||
  fail "pause (status $?)"

# Terminate: the job ends (not killed by the system, not hung) with status 1
# and the message names the worker rank, its host and what it held.
weft_mpirun 3 "$prog" terminate --memory-limit 300MiB --local-directory "$dir" >"$log" 2>&1
status=$?
test $status -eq 1 || fail "terminate should end the job with status 1, not $status"
grep -q "memory-test: caught: \[weft.worker.memory-exceeded\] worker rank 1 ($(hostname)) ran out of memory: RSS" "$log" ||
  fail "the MemoryError names the worker rank and host"
grep -q "limit (--memory-limit); its largest results: 'block-" "$log" || fail "the message names the largest results"
sleep 1
if pgrep -f "$prog terminate" >/dev/null; then pkill -KILL -f "$prog terminate"; fail "ranks outlived the job"; fi
test -z "$(ls -A "$dir")" || fail "spill files left in $dir: $(ls -A "$dir")"
rm -rf "$log" "$dir"
exit 0
