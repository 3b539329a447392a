# Failed and interrupted writes of every format on 3 ranks
# (tests/mpi/io_interrupted_test.cpp): nothing half-written reaches a target
# and an existing target stays as it was.
#  1. a task error in one block (the Catch2 cases);
#  2. a full disk (a 20 MB tmpfs; needs root to mount, skipped otherwise);
#  3. per format, with an existing target (replaced; netcdf: appended to):
#     SIGTERM to one worker while blocks compute: the job drains before the
#       write starts, so no target, no temporary file, the existing target
#       byte-identical;
#     SIGTERM to one worker while the write runs: the signalled rank tells
#       the others when they agree on the rename, so the output is
#       discarded: the existing target byte-identical and no temporary file
#       left (or, when the write had been renamed before the signal came,
#       the new target whole: checked with NumPy/h5py/netCDF4);
#     SIGTERM to rank 0 alone while the write runs (the workers held
#       with SIGSTOP until rank 0 has acted on it): rank 0 tells the
#       workers, which discard the output: the existing target
#       byte-identical, no temporary file left;
#     SIGKILL to one worker while the write runs: mpirun ends the job; the
#       existing target is byte-identical, or whole when the write ended
#       first (a temporary file may be left: a killed process cleans up
#       nothing).
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/io-interrupted-test"
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-io-interrupted-XXXXXX")
log="$work/log"
sf="$work/scheduler.json"
dir="$work/out"
disk="$work/disk"
mkdir "$dir" "$disk"
cleanup() {
  mountpoint -q "$disk" && umount "$disk"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "io_interrupted.sh: FAIL: $*" >&2; cat "$log" >&2; exit 1; }

# 1. Task errors, on the cluster's workers.
weft_mpirun 3 "$prog" >"$log" 2>&1 || fail "task errors (status $?)"

# 2. A full disk.
if mount -t tmpfs -o size=20m tmpfs "$disk" 2>/dev/null; then
  IO_INTERRUPTED_DISK="$disk" weft_mpirun 3 "$prog" "[.full-disk]" >"$log" 2>&1 || fail "full disk (status $?)"
  umount "$disk"
else
  echo "io_interrupted.sh: no full-disk case: cannot mount a tmpfs (needs root)"
fi

# 3. Signals. A job runs in the background (mpirun.sh's weft_start_job, which
# wraps mpirun in timeout like weft_mpirun does); the
# scheduler file gives the ranks' pids.
start_job() { weft_start_job "$TEST_MPI_TIMEOUT" job "$1" "$2" "$dir"; }  # start_job FORMAT PHASE
temporary_present() { ls "$dir" | grep -q '\.weft-tmp-'; }
# stop_workers_when_writing: SIGSTOP to the job's workers as soon as a
# temporary name appears in $dir (looked for every 5 ms from the job's start,
# so the write has far to go); prints their pids.
stop_workers_when_writing() {
  python3 -c "import json, os, signal, sys, time
sf, d, end = sys.argv[1], sys.argv[2], time.time() + 60
while not any('.weft-tmp-' in n for n in os.listdir(d)):
    if time.time() > end: sys.exit('waited 60 s for a temporary file')
    time.sleep(0.005)
pids = [w['pid'] for w in json.load(open(sf))['workers'].values()]
for p in pids: os.kill(p, signal.SIGSTOP)
print(*pids)" "$sf" "$dir"
}
# snapshot: every file under $dir with its SHA-256, temporary names left out.
snapshot() {
  python3 -c "import hashlib,os,sys
for root, dirs, files in sorted(os.walk(sys.argv[1])):
    for f in sorted(files):
        p = os.path.join(root, f)
        if '.weft-tmp-' not in p:
            print(os.path.relpath(p, sys.argv[1]), hashlib.sha256(open(p, 'rb').read()).hexdigest())" "$dir"
}
# whole FORMAT: the target holds the 256 rows of the write phase, element
# (r, c) = r * 2**17 + c (netcdf: the seed's 8 rows, then those 256 rows
# appended once or more).
whole() {
  "${PYTHON_NUMPY:-python3}" -c "import sys, numpy as np
fmt, d = sys.argv[1], sys.argv[2]
cols = 1 << 17
new = np.arange(256 * cols, dtype='<f8').reshape(256, cols)
if fmt == 'hdf5':
    import h5py
    got = h5py.File(d + '/out.h5', 'r')['x'][...]
elif fmt == 'netcdf':
    import netCDF4
    got = netCDF4.Dataset(d + '/out.nc')['x'][...]
    appends = (got.shape[0] - 8) // 256
    new = np.concatenate([np.arange(8 * cols, dtype='<f8').reshape(8, cols)] + [new] * max(appends, 1))
elif fmt == 'npy':
    got = np.concatenate([np.load(d + '/out/%d.npy' % i) for i in range(32)])
else:
    got = np.fromfile(d + '/out.bin', dtype='<f8').reshape(-1, cols)
assert got.shape == new.shape and np.array_equal(got, new), (fmt, got.shape)" "$1" "$dir"
}

for format in hdf5 netcdf npy raw; do
  rm -rf "${dir:?}"/*
  weft_mpirun 3 "$prog" job $format seed "$dir" >"$log" 2>&1 || fail "$format: seed (status $?)"
  before=$(snapshot)

  start_job $format blocks
  pid=$(weft_pid_of 2)
  weft_wait_until "a block computing" grep -q 'io-interrupted-test: computing a block' "$log"
  kill -TERM "$pid"
  weft_end_job 143
  grep -q 'weft: draining: .*SIGTERM on worker rank 2' "$log" || fail "$format: the job should drain"
  ! grep -q 'io-interrupted-test: written' "$log" || fail "$format: the write should not have run"
  test "$(ls "$dir")" = "$(ls "$dir" | grep -v '\.weft-tmp-')" || fail "$format: a temporary file is left"
  test "$(snapshot)" = "$before" || fail "$format: SIGTERM before the write changed the target"

  start_job $format write
  pid=$(weft_pid_of 2)
  weft_wait_until "a temporary file" temporary_present
  kill -TERM "$pid"
  weft_end_job 143
  grep -q 'weft: draining: .*SIGTERM on worker rank 2' "$log" || fail "$format: the job should drain"
  ! temporary_present || fail "$format: a temporary file is left after SIGTERM during the write"
  if test "$(snapshot)" = "$before"; then
    echo "io_interrupted.sh: $format: SIGTERM during the write discarded the output"
  else
    whole $format || fail "$format: SIGTERM during the write left a changed target that is not whole"
    echo "io_interrupted.sh: $format: the write was renamed before SIGTERM came"
  fi

  # SIGTERM to rank 0 only during the write (the workers get no signal): rank
  # 0 tells the workers at once, and the write step they are inside
  # discards its output. The workers are stopped (SIGSTOP) while rank 0 gets
  # the signal and fails the client's wait, so that the write is still
  # running when they go on, however fast this disk is. Two races remain:
  # the write can be renamed before the watcher stops the workers (nothing
  # to interrupt), or the workers can be stopped between the step's last
  # check and its rename (the step then keeps its output, whole, as a write
  # that ends before a SIGTERM does). Either way the case runs again, and it
  # fails when no try of 5 discarded the output. (A third, about once in
  # three runs, was a worker's probe missing rank 0's queued message:
  # rank0_stopped, src/dist/worker.cpp, now probes twice.)
  discarded=no
  for attempt in 1 2 3 4 5; do
    before=$(snapshot)
    start_job $format write
    workers=$(stop_workers_when_writing) || fail "$format: no write to stop"
    if temporary_present; then
      kill -TERM "$(weft_pid_of 0)"
      weft_wait_until "the client's terminated error" grep -q 'weft.runtime.terminated' "$log"
      sleep 0.2  # rank 0's comm thread sends the stop message
      kill -CONT $workers
      weft_end_job 143
      grep -qx 'weft: draining: .*, SIGTERM' "$log" || fail "$format: rank 0 should drain the job on its SIGTERM"
      ! temporary_present || fail "$format: a temporary file is left after SIGTERM to rank 0 during the write"
      if test "$(snapshot)" = "$before"; then
        discarded=yes
        break
      fi
      whole $format || fail "$format: SIGTERM to rank 0 during the write left a changed target that is not whole"
      echo "io_interrupted.sh: $format: rank 0's stop reached the workers after their last check (target whole); again"
    else
      kill -CONT $workers
      kill -TERM "$(weft_pid_of 0)" 2>/dev/null
      wait $job || true  # 0 or 143: the job is over either way
      weft_no_rank_left
      echo "io_interrupted.sh: $format: the write ended before its workers stopped; again"
    fi
  done
  test $discarded = yes || fail "$format: SIGTERM to rank 0 during the write never discarded the output in 5 tries"

  # A write that ended just before the kill leaves the new target whole.
  before=$(snapshot)
  start_job $format write
  pid=$(weft_pid_of 2)
  weft_wait_until "a temporary file" temporary_present
  kill -KILL "$pid"
  wait $job
  status=$?
  test $status -ne 0 && test $status -ne 124 || fail "$format: SIGKILL ended the job with status $status"
  weft_no_rank_left
  if test "$(snapshot)" = "$before"; then
    echo "io_interrupted.sh: $format: SIGKILL during the write left the target as it was" \
      "($(ls "$dir" | grep -c '\.weft-tmp-') temporary file(s) left)"
  else
    whole $format || fail "$format: SIGKILL during the write left a half target"
    echo "io_interrupted.sh: $format: the write ended before SIGKILL"
  fi
done
exit 0
