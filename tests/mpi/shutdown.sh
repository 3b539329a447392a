# How weft::main programs end (tests/mpi/shutdown_test.cpp): every rank exits
# with the client's status; an exception is reported once; weft's flags reach
# every rank and the scheduler file is written; a stop signal or a worker's
# --lifetime drains the job (no new task starts, running ones get
# distributed.worker.lifetime-grace, one final line, every rank exits with
# 128 + the signal or 124) and no rank is left.
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/shutdown-test"
log=shutdown-test.$$.log
sf=shutdown-test.$$.json
fail() { echo "shutdown.sh: FAIL: $*" >&2; cat "$log" >&2; rm -f "$log" "$sf"; exit 1; }

for n in 1 3; do
  weft_mpirun $n "$prog" status 7 >"$log" 2>&1
  test $? -eq 7 || fail "status 7 on $n ranks"
done
"$prog" status 5 >"$log" 2>&1
test $? -eq 5 || fail "status 5 without a launcher"

weft_mpirun 3 "$prog" throw >"$log" 2>&1
test $? -eq 1 || fail "an exception should give status 1"
test "$(grep -c 'weft: error: boom from the client' "$log")" -eq 1 || fail "the exception is reported once"

weft_mpirun 3 "$prog" --nthreads 2 flags --scheduler-file "$sf" >"$log" 2>&1 || fail "flags (status $?)"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['workers']) == 2, d" "$sf" ||
  fail "scheduler file $sf"
rm -f "$sf"

# --- the jobs below run in the background (mpirun.sh's weft_start_job) -----
# start_job ARGS...: shutdown-test ARGS on 3 ranks under timeout (60 s: a
# hung drain fails with 124 - the lifetime case tells them apart by time).
start_job() { weft_start_job 60 "$@"; }
wait_for() { weft_wait_until "'$1' in the log" grep -q "$1" "$log"; }  # wait_for TEXT
# drain_line TEXT: the final state line was written once, and it is TEXT.
drain_line() {
  test "$(grep -c '^weft: draining:' "$log")" -eq 1 || fail "one drain line expected"
  grep -qxF "weft: draining: $1" "$log" || fail "drain line should read 'weft: draining: $1'"
}
# ranks_exit N STATUS: N ranks returned from weft::main with STATUS.
ranks_exit() {
  test "$(grep -c "^shutdown-test: exit status $2\$" "$log")" -eq "$1" || fail "$1 ranks should exit with $2"
}

# SIGTERM to every rank (as SLURM's --signal without B: and srun deliver it)
# while a 3 s task runs: it finishes within the grace (30 s), its two
# dependents never start, the client's wait throws, every rank exits 143.
start_job drain 3
wait_for 'shutdown-test: task running on rank 1'
kill -TERM "$(weft_pid_of 0)" "$(weft_pid_of 1)" "$(weft_pid_of 2)"
weft_end_job 143
# Every rank got the signal: a worker's request may reach rank 0 before rank 0
# sees its own (seen in CI), so the reason may name that worker.
test "$(grep -c '^weft: draining:' "$log")" -eq 1 || fail "one drain line expected"
grep -Eqx 'weft: draining: 1 tasks done, 2 not started, SIGTERM( on worker rank [12])?' "$log" ||
  fail "the drain line should say SIGTERM"
grep -q 'weft: error: \[weft.runtime.terminated\] the job is draining (SIGTERM' "$log" || fail "the wait should throw terminated"
ranks_exit 3 143

# SIGTERM to one worker alone: it asks rank 0, which drains the job.
start_job drain 3
wait_for 'shutdown-test: task running on rank 1'
kill -TERM "$(weft_pid_of 2)"
weft_end_job 143
drain_line "1 tasks done, 2 not started, SIGTERM on worker rank 2"
ranks_exit 3 143

# SIGUSR1 to mpirun (what a job script forwards: Open MPI passes it on to
# every rank, its SIGTERM would abort the job): the same drain, status 138.
start_job drain 3
wait_for 'shutdown-test: task running on rank 1'
kill -USR1 "$(pgrep -P $job)"
weft_end_job 138
# mpirun signals the ranks one by one: a worker may ask before rank 0 sees its own.
test "$(grep -c '^weft: draining:' "$log")" -eq 1 || fail "one drain line expected"
grep -Eqx 'weft: draining: 1 tasks done, 2 not started, SIGUSR1( on worker rank [12])?' "$log" ||
  fail "the drain line should say SIGUSR1"
ranks_exit 3 138

# A task that outlives the grace (1 s here) is abandoned: its worker leaves
# without it and the job still ends, with no rank left.
export WEFT_DISTRIBUTED__WORKER__LIFETIME_GRACE=1s
start_job drain 50
unset WEFT_DISTRIBUTED__WORKER__LIFETIME_GRACE
wait_for 'shutdown-test: task running on rank 1'
kill -TERM "$(weft_pid_of 0)" "$(weft_pid_of 1)" "$(weft_pid_of 2)"
weft_end_job 143
test $elapsed -lt 40 || fail "the abandoned task held the job for $elapsed s"
drain_line "0 tasks done, 2 not started, 1 abandoned after distributed.worker.lifetime-grace, SIGTERM"
grep -q 'weft: worker rank 1 (.*): 1 tasks still running after distributed.worker.lifetime-grace; exiting without them' "$log" ||
  fail "worker rank 1 should say it abandons its task"
ranks_exit 2 143  # worker rank 1 leaves with _Exit

# --lifetime 2s during twenty 1 s tasks: the first worker whose lifetime
# passes drains the job, which ends with status 124 well before timeout's 60 s.
start_job --lifetime 2s lifetime
weft_end_job 124
test $elapsed -lt 40 || fail "the lifetime drain took $elapsed s (timeout's 124?)"
test "$(grep -c '^weft: draining:' "$log")" -eq 1 || fail "one drain line expected"
grep -Eqx 'weft: draining: [0-9]+ tasks done, [0-9]+ not started, worker rank [12] reached its lifetime \(2s\)' "$log" ||
  fail "the drain line should name the lifetime"
# Every one of the twenty tasks either ran or never started (1 s tasks end
# within the grace).
set -- $(sed -n 's/^weft: draining: \([0-9]*\) tasks done, \([0-9]*\) not started.*/\1 \2/p' "$log")
test $(($1 + $2)) -eq 20 || fail "$1 done + $2 not started should be the 20 tasks"
test "$2" -gt 0 || fail "the drain should leave tasks not started"
ranks_exit 3 124

# SIGTERM to mpirun itself: Open MPI forwards it and kills every rank about a
# second later (no drain: weft gets no time), with no rank left.
start_job wait
wait_for 'shutdown-test: waiting'
kill -TERM "$(pgrep -P $job)"
wait $job
status=$?
test $status -ne 0 || fail "SIGTERM to mpirun should end the job with a non-zero status"
test $status -ne 124 || fail "the job hung after SIGTERM to mpirun"
weft_no_rank_left
rm -f "$log" "$sf"
exit 0
