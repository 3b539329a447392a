# tests/mpi/mpirun.sh - sourced by the MPI test scripts (tests/mpi/*.sh):
#
#   . "$top_srcdir/tests/mpi/mpirun.sh"
#   weft_mpirun 3 "$top_builddir/tests/mpi/some-test" --option
#
# weft_mpirun N PROGRAM ARGS... runs PROGRAM on N ranks of this machine and
# returns its status; a run that exceeds $TEST_MPI_TIMEOUT seconds (default
# 120; not a WEFT_* name, which weft reads as configuration) is killed and
# fails with status 124, so a deadlock fails the test
# instead of hanging `make check`. Outside `make check` set top_srcdir and
# top_builddir yourself. weft_start_job and the helpers after it (at the end)
# run a job in the background for the signal tests.
#
# Choices, as seen with Open MPI 4.1.4 (Debian 12) on a 2-core machine:
# --oversubscribe  more ranks than cores. mpirun then also turns on
#                  mpi_yield_when_idle by itself (docs: ../shared/platform.md).
# --bind-to none   without it, a run of at most 2 ranks binds each rank to one
#                  core (--report-bindings: "bound to socket 0[core 0]"), which
#                  puts a rank's comm and compute threads on one core.
#                  Oversubscribed runs are not bound anyway.
# run as root      CI runs as root, which mpirun refuses unless told.
# quiet            Debian's /etc/openmpi/openmpi-mca-params.conf already turns
#                  off openib, ofi and ucx, the usual source of warnings, and
#                  runs here print nothing. btl_base_warn_component_unused=0
#                  keeps silent an Open MPI built without that file, on a
#                  machine with InfiniBand hardware it does not use. Variables
#                  already set in the environment win.

: "${TEST_MPI_TIMEOUT:=120}"
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
: "${OMPI_MCA_btl_base_warn_component_unused:=0}"
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_btl_base_warn_component_unused

weft_mpirun() {
  weft_nranks=$1
  shift
  echo "weft_mpirun: $weft_nranks ranks: $*"
  timeout -k 10 "$TEST_MPI_TIMEOUT" \
    mpirun --oversubscribe --bind-to none -n "$weft_nranks" "$@"
  weft_status=$?
  if test $weft_status -eq 124; then
    echo "weft_mpirun: timed out after $TEST_MPI_TIMEOUT s on $weft_nranks ranks: $*" >&2
  elif test $weft_status -ne 0; then
    echo "weft_mpirun: exit status $weft_status on $weft_nranks ranks: $*" >&2
  fi
  return $weft_status
}

# Jobs in the background, for the signal tests (shutdown.sh,
# io_interrupted.sh). The sourcing script sets prog (the test program), log
# and sf (the job's output and scheduler file) and defines fail MESSAGE
# (prints the log, exits 1).
#
# weft_start_job SECONDS ARGS...: prog --scheduler-file $sf ARGS on 3 ranks
# in the background, under timeout SECONDS (a hung job ends with 124); job is
# timeout's pid, started the time it began (date +%s).
weft_start_job() {
  weft_job_seconds=$1
  shift
  rm -f "$sf"
  started=$(date +%s)
  timeout -k 10 "$weft_job_seconds" mpirun --oversubscribe --bind-to none -n 3 \
    "$prog" --scheduler-file "$sf" "$@" >"$log" 2>&1 &
  job=$!
}
# weft_wait_until WHAT COMMAND...: runs COMMAND every 0.05 s until it succeeds;
# fails after 60 s, naming WHAT.
weft_wait_until() {
  weft_what=$1
  shift
  for _ in $(seq 1 1200); do "$@" && return 0; sleep 0.05; done
  fail "waited 60 s for $weft_what"
}
# weft_pid_of RANK: the pid of the job's rank RANK, from the scheduler file.
weft_pid_of() {
  weft_wait_until "the scheduler file" test -s "$sf"
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); r=int(sys.argv[2])
print(d['pid'] if r == 0 else [w['pid'] for w in d['workers'].values() if w['rank'] == r][0])" "$sf" "$1"
}
# weft_no_rank_left: fails (killing them) when ranks of the job outlived it.
weft_no_rank_left() {
  sleep 1
  if pgrep -f "$prog --scheduler-file $sf" >/dev/null; then
    pkill -KILL -f "$prog --scheduler-file $sf"
    fail "ranks outlived the job"
  fi
}
# weft_end_job STATUS: the job ends with STATUS (elapsed: its seconds) and no
# rank outlives it.
weft_end_job() {
  wait $job
  weft_status=$?
  elapsed=$(($(date +%s) - started))
  test $weft_status -eq "$1" || fail "exit status $weft_status, expected $1 (after $elapsed s)"
  weft_no_rank_left
}
