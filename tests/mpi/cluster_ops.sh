# Client::restart, retire_workers, replicate under mpirun
# (tests/mpi/cluster_ops_test.cpp, 4 ranks).
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/cluster-ops-test"
log=cluster-ops-test.$$.log
fail() { echo "cluster_ops.sh: FAIL: $*" >&2; cat "$log" >&2; rm -f "$log"; exit 1; }
weft_mpirun 4 "$prog" >"$log" 2>&1 || fail "status $?"
for part in restart replicate retire; do
  grep -q "cluster-ops-test: $part ok" "$log" || fail "$part"
done
grep -q 'removed worker rank 1: retired' "$log" || fail "rank 1 was not retired"
rm -f "$log"
exit 0
