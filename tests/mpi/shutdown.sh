# How weft::main programs end (tests/mpi/shutdown_test.cpp): every rank exits
# with the client's status; an exception is reported once; SIGTERM (what a
# batch system sends at walltime) stops every rank promptly; weft's flags
# reach every rank and the scheduler file is written.
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/shutdown-test"
log=shutdown-test.$$.log
fail() { echo "shutdown.sh: FAIL: $*" >&2; cat "$log" >&2; rm -f "$log"; exit 1; }

for n in 1 3; do
  weft_mpirun $n "$prog" status 7 >"$log" 2>&1
  test $? -eq 7 || fail "status 7 on $n ranks"
done
"$prog" status 5 >"$log" 2>&1
test $? -eq 5 || fail "status 5 without a launcher"

weft_mpirun 3 "$prog" throw >"$log" 2>&1
test $? -eq 1 || fail "an exception should give status 1"
test "$(grep -c 'weft: error: boom from the client' "$log")" -eq 1 || fail "the exception is reported once"

sf=shutdown-test.$$.json
weft_mpirun 3 "$prog" --nthreads 2 flags --scheduler-file "$sf" >"$log" 2>&1 || fail "flags (status $?)"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['workers']) == 2, d" "$sf" ||
  fail "scheduler file $sf"
rm -f "$sf"

# SIGTERM to mpirun while the client waits on a 4 s task: every rank ends,
# well before the task would, the client says why, and no rank is left.
start=$(date +%s)
timeout -k 10 60 mpirun --oversubscribe --bind-to none -n 3 "$prog" wait >"$log" 2>&1 &
pid=$!
for i in $(seq 1 100); do grep -q 'shutdown-test: waiting' "$log" && break; sleep 0.1; done
sleep 0.5
# To this job's mpirun only (timeout passes the signal on): other tests may
# run their own mpirun beside this one.
kill -TERM $pid
wait $pid
status=$?
end=$(date +%s)
test $status -ne 0 || fail "SIGTERM should end the job with a non-zero status"
test $status -ne 124 || fail "the job hung after SIGTERM"
test $((end - start)) -lt 30 || fail "SIGTERM took $((end - start)) s"
sleep 1
if pgrep -f "$prog wait" >/dev/null; then pkill -KILL -f "$prog wait"; fail "ranks outlived the job"; fi
rm -f "$log"
exit 0
