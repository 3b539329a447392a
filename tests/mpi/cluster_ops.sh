# Client::restart, replicate, rebalance, retire_workers, run under mpirun
# (tests/mpi/cluster_ops_test.cpp): 4 ranks, then 1 rank (no worker ranks).
. "$top_srcdir/tests/mpi/mpirun.sh"
prog="$top_builddir/tests/mpi/cluster-ops-test"
log=cluster-ops-test.$$.log
fail() { echo "cluster_ops.sh: FAIL: $*" >&2; cat "$log" >&2; rm -f "$log"; exit 1; }
weft_mpirun 4 "$prog" >"$log" 2>&1 || fail "status $?"
for part in restart replicate rebalance retire; do
  grep -q "cluster-ops-test: $part ok" "$log" || fail "$part"
done
grep -q 'removed worker rank 1: retired' "$log" || fail "rank 1 was not retired"
weft_mpirun 1 "$prog" >"$log" 2>&1 || fail "1 rank: status $?"
grep -q "cluster-ops-test: local ok" "$log" || fail "1 rank"
rm -f "$log"
exit 0
