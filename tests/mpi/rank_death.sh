# A rank that dies outright (tests/mpi/shutdown_test.cpp, modes die and
# die-collective): a worker killed by SIGKILL (the OOM killer), by SIGSEGV,
# or leaving with std::exit inside a task, while rank 0 waits for that task or
# while the other workers wait in MPI_Barrier of a collective step. Open MPI's
# mpirun must end the job (no hang), with a non-zero status and a message
# naming rank 1, and leave no rank behind (docs/architecture.md, "A rank that
# dies outright").
# Every run goes through weft_mpirun, which wraps mpirun in `timeout`, so a
# hang fails the test (status 124) instead of stalling CI.
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/shutdown-test"
log=rank-death.$$.log
fail() { echo "rank_death.sh: FAIL: $*" >&2; cat "$log" >&2; rm -f "$log"; exit 1; }

# dies MODE SIG STATUS MESSAGE: the job ends with STATUS and mpirun's MESSAGE
# (an extended regular expression); no rank is left.
dies() {
  weft_mpirun 3 "$prog" "$1" "$2" >"$log" 2>&1
  status=$?
  test $status -ne 124 || fail "$1 $2: the job hung"
  test $status -eq "$3" || fail "$1 $2: exit status $status, expected $3"
  grep -Eq "$4" "$log" || fail "$1 $2: mpirun should say '$4'"
  sleep 1
  if pgrep -f "$prog $1 $2" >/dev/null; then
    pkill -KILL -f "$prog $1 $2"
    fail "$1 $2: ranks outlived the job"
  fi
}

dies die KILL 137 'process rank 1 with PID [0-9]+ on node .* exited on signal 9'
dies die SEGV 139 'process rank 1 with PID [0-9]+ on node .* exited on signal 11'
dies die-collective KILL 137 'process rank 1 with PID [0-9]+ on node .* exited on signal 9'
# std::exit runs no MPI_Finalize (weft's runtime is never destroyed at exit:
# its collective teardown would wait for the other ranks forever).
dies die EXIT 3 'Process name: \[\[[0-9]+,1\],1\]'
dies die-collective EXIT 3 'Process name: \[\[[0-9]+,1\],1\]'
rm -f "$log"
exit 0
