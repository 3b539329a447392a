# Partitioned HDF5 output and stage-out on the distributed scheduler
# (tests/mpi/io_partitioned_test.cpp) on 3 and 4 ranks, then `weft stage-out`
# under mpirun (one task per "node") and without a launcher, checked by h5py.
set -e
. "$top_srcdir/tests/mpi/mpirun.sh"  # weft_mpirun: mpirun wrapped in timeout (TEST_MPI_TIMEOUT)
test_program="$top_builddir/tests/mpi/io-partitioned-test"
weft="$top_builddir/src/cli/weft"
python="${PYTHON_NUMPY:-/usr/bin/python3}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/weft-io-partitioned.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/local" "$dir/out"
# One root task in flight per worker thread: the blocks spread over the workers.
for n in 3 4; do
  WEFT_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1 weft_mpirun $n "$test_program" --local-directory "$dir/local"
done

# `weft stage-out` of 3 parts (4 ranks: 3 workers) on 2 ranks, and alone.
TEST_PARTITIONED_DIR="$dir/out" weft_mpirun 4 "$test_program" "[.keep-output]" --local-directory "$dir/local"
weft_mpirun 2 "$weft" stage-out "$dir/out/x.h5" "$dir/staged"
"$weft" stage-out "$dir/out/x.h5" "$dir/alone"
rm -r "$dir/local"/x.*.part*.h5
mv "$dir/staged" "$dir/moved"
for folder in "$dir/moved" "$dir/alone"; do
  "$python" - "$folder/x.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], 'r') as f:
    assert np.array_equal(f['/x'][...], np.arange(2400.0).reshape(40, 60)), sys.argv[1]
    assert len(f.attrs['weft_part_files']) == 3, list(f.attrs['weft_part_files'])
    assert all('/' not in name for name in f.attrs['weft_part_files'])
print('stage-out ok:', sys.argv[1])
PY
done

# Errors: exit status 2 and "weft: <message>"; the parts are gone now.
status=0
weft_mpirun 2 "$weft" stage-out "$dir/out/x.h5" "$dir/incomplete" 2>"$dir/err" || status=$?
cat "$dir/err"
test $status -ne 0
grep -Eq '^weft: \[weft.io.missing-part\].*/x\.[0-9a-f]{8}\.part0\.h5' "$dir/err"
status=0
"$weft" stage-out "$dir/out/x.h5" "$dir/moved" 2>"$dir/err" || status=$?
test $status -eq 2
grep -q '^weft: \[weft.io.target-exists\]' "$dir/err"
echo "io_partitioned.sh: ok"
