// Client::restart, replicate, rebalance, retire_workers and run under
// mpirun (4 ranks: 3 workers), and the same calls without worker ranks (1
// rank), run by tests/mpi/cluster_ops.sh through weft_mpirun, which wraps
// mpirun in `timeout`. Exits 0 when every check holds, and says what failed
// otherwise.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace {

long slow_square(long x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return x * x;
}

long square(long x) { return x * x; }

long plus_rank(long x) { return x * 10 + weft::rank(); }

constexpr std::size_t kBlock = 10000;  // doubles per result of block()
std::vector<double> block(long i) { return std::vector<double>(kBlock, static_cast<double>(i)); }

// Takes a lock and returns holding it: its worker's removal must free it.
bool take_lock(long) { return weft::Lock("held-by-rank-1").acquire(); }

std::vector<long> numbers(long n) {
  std::vector<long> v(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = 1000 + i;
  return v;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "cluster-ops-test: FAIL: %s\n", what.c_str());
  return 1;
}

int restart(weft::Client& client) {
  auto done = client.submit(square, 3L);
  if (done.result() != 9) return fail("restart: a task before it");
  std::vector<long> xs{1, 2, 3, 4, 5, 6, 7, 8};
  auto running = client.map(slow_square, xs);
  client.restart();
  if (!done.cancelled()) return fail("restart: a finished future is not cancelled");
  for (const auto& f : running)
    if (!f.cancelled()) return fail("restart: a running future is not cancelled");
  try {
    done.result();
    return fail("restart: a cancelled future gave a result");
  } catch (const weft::RuntimeError& e) {
    if (e.id() != "runtime.cancelled") return fail(std::string("restart: result() threw ") + e.what());
  }
  if (!client.has_what().empty()) {
    for (const auto& [rank, keys] : client.has_what())
      if (!keys.empty()) return fail("restart: worker rank " + std::to_string(rank) + " still holds results");
  }
  if (client.submit(square, 12L).result() != 144) return fail("restart: a task after it");
  std::printf("cluster-ops-test: restart ok\n");
  return 0;
}

int replicate(weft::Client& client) {
  auto f = client.submit(square, 21L);
  std::vector<weft::Future<long>> fs{f};
  client.replicate(fs, 2);
  std::vector<int> ranks = client.who_has(fs)[f.key().str()];
  std::sort(ranks.begin(), ranks.end());
  if (ranks.size() != 2 || ranks[0] == ranks[1]) return fail("replicate: who_has lists " + std::to_string(ranks.size()) + " holders");
  client.replicate(fs, 3);
  if (client.who_has(fs)[f.key().str()].size() != 3) return fail("replicate: 3 copies");
  client.replicate(fs, 1);
  if (client.who_has(fs)[f.key().str()].size() != 1) return fail("replicate: back to 1 copy");
  if (f.result() != 441) return fail("replicate: the result changed");
  std::printf("cluster-ops-test: replicate ok\n");
  return 0;
}

// Managed bytes per worker rank from heartbeats sent after this call.
std::map<int, std::uint64_t> fresh_managed_bytes(weft::Client& client) {
  std::map<int, std::uint64_t> seen;
  for (const auto& [rank, info] : client.scheduler_info().workers) seen[rank] = info.heartbeats;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    weft::SchedulerInfo info = client.scheduler_info();
    // Two heartbeats later: the first may have been under way before the call.
    bool fresh = std::all_of(info.workers.begin(), info.workers.end(),
                             [&](const auto& w) { return w.second.heartbeats >= seen[w.first] + 2; });
    if (!fresh) continue;
    std::map<int, std::uint64_t> bytes;
    for (const auto& [rank, w] : info.workers) bytes[rank] = w.metrics.managed_bytes;
    return bytes;
  }
  return {};
}

std::string describe(const std::map<int, std::uint64_t>& bytes) {
  std::string s;
  for (const auto& [rank, b] : bytes) s += " rank " + std::to_string(rank) + ": " + std::to_string(b);
  return s;
}

int rebalance(weft::Client& client) {
  weft::SubmitOptions on_2;
  on_2.worker = 2;
  std::vector<long> ids;
  for (long i = 0; i < 12; ++i) ids.push_back(i);
  auto blocks = client.map(block, ids, on_2);
  client.gather(blocks);
  auto before = client.who_has(blocks);
  for (const auto& [key, ranks] : before)
    if (ranks != std::vector<int>{2}) return fail("rebalance: '" + key + "' is not on rank 2 alone before it");
  std::map<int, std::uint64_t> bytes = fresh_managed_bytes(client);
  if (bytes.size() != 3) return fail("rebalance: no fresh heartbeats before it");
  const std::uint64_t result_bytes = kBlock * sizeof(double);
  if (bytes[2] < 12 * result_bytes) return fail("rebalance: before it," + describe(bytes));

  client.rebalance();
  for (const auto& [key, ranks] : client.who_has(blocks))
    if (ranks.size() != 1) return fail("rebalance: '" + key + "' has " + std::to_string(ranks.size()) + " holders");
  std::map<int, std::vector<std::string>> held = client.has_what();
  for (int rank = 1; rank <= 3; ++rank)
    if (held[rank].empty()) return fail("rebalance: rank " + std::to_string(rank) + " got no result");
  bytes = fresh_managed_bytes(client);
  if (bytes.size() != 3) return fail("rebalance: no fresh heartbeats after it");
  std::uint64_t total = 0;
  for (const auto& [rank, b] : bytes) total += b;
  const double mean = static_cast<double>(total) / 3;
  // Results of one size: each worker ends within one result of the mean.
  for (const auto& [rank, b] : bytes)
    if (std::abs(static_cast<double>(b) - mean) > static_cast<double>(result_bytes))
      return fail("rebalance: not within one result (" + std::to_string(result_bytes) + " bytes) of the mean:" +
                  describe(bytes));
  std::vector<std::vector<double>> got = client.gather(blocks);
  for (long i = 0; i < 12; ++i)
    if (got[static_cast<std::size_t>(i)] != block(i)) return fail("rebalance: a moved result changed");
  std::printf("cluster-ops-test: rebalance ok:%s\n", describe(bytes).c_str());
  return 0;
}

int retire(weft::Client& client) {
  weft::ScatterOptions on_1;
  on_1.worker = 1;
  auto data = client.scatter(7L, on_1);
  auto derived = client.submit(square, data);
  auto spread = client.map(square, numbers(12));
  client.gather(spread);
  if (derived.result() != 49) return fail("retire: the task before it");
  weft::SubmitOptions lock_on_1;
  lock_on_1.worker = 1;
  lock_on_1.pure = false;
  weft::Lock lock("held-by-rank-1");
  if (!client.submit(lock_on_1, take_lock, 0L).result() || lock.acquire(std::chrono::seconds(0)))
    return fail("retire: the task on rank 1 did not keep the lock");
  client.retire_workers({1});
  // The lock its task kept went with the worker.
  if (!lock.acquire(std::chrono::seconds(60))) return fail("retire: the lock held on rank 1 was not released");
  lock.release();
  // run skips the retired worker.
  std::vector<int> ran = client.run([] { return weft::rank(); });
  if (ran != std::vector<int>{2, 3}) return fail("retire: run answered from " + std::to_string(ran.size()) + " ranks");
  std::vector<weft::Future<long>> all = spread;
  all.push_back(data);
  all.push_back(derived);
  for (const auto& [key, ranks] : client.who_has(all)) {
    if (ranks.empty()) return fail("retire: '" + key + "' has no holder");
    if (std::find(ranks.begin(), ranks.end(), 1) != ranks.end()) return fail("retire: '" + key + "' is on rank 1");
  }
  if (client.has_what()[1].size() != 0) return fail("retire: has_what lists results on rank 1");
  if (data.result() != 7 || derived.result() != 49) return fail("retire: a moved result changed");
  std::vector<long> got = client.gather(spread);
  std::vector<long> xs = numbers(12);
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (got[i] != xs[i] * xs[i]) return fail("retire: a gathered result changed");
  // New tasks avoid rank 1, also one that reads a result moved off it.
  auto after = client.map(plus_rank, std::vector<long>{1, 2, 3, 4, 5, 6, 7, 8});
  after.push_back(client.submit(plus_rank, data));
  for (long v : client.gather(after))
    if (v % 10 == 1) return fail("retire: a task ran on rank 1 after it retired");
  std::printf("cluster-ops-test: retire ok\n");
  return 0;
}

}  // namespace

// Without worker ranks every result is in this process: restart cancels,
// replicate and rebalance have nothing to move, retiring a rank is an error.
int local(weft::Client& client) {
  auto done = client.submit(square, 5L);
  std::vector<weft::Future<long>> fs{done};
  if (done.result() != 25) return fail("local: a task");
  client.replicate(fs, 2);
  client.rebalance(fs);
  client.rebalance();
  if (done.result() != 25) return fail("local: replicate or rebalance changed a result");
  if (!client.has_what().empty()) return fail("local: has_what lists worker ranks");
  try {
    client.retire_workers({1});
    return fail("local: retire_workers did not throw");
  } catch (const weft::ValueError& e) {
    if (e.id() != "value.bad-worker" || std::string(e.what()).find("there are no worker ranks") == std::string::npos)
      return fail(std::string("local: retire_workers threw ") + e.what());
  }
  if (client.run([] { return 7; }) != std::vector<int>{7}) return fail("local: run");
  client.restart();
  if (!done.cancelled()) return fail("local: restart left a future");
  if (client.submit(square, 6L).result() != 36) return fail("local: a task after restart");
  std::printf("cluster-ops-test: local ok\n");
  return 0;
}

int main(int argc, char** argv) {
  return weft::main(argc, argv, [&](weft::Client& client) {
    if (client.nworkers() == 0) return local(client);
    if (weft::nranks() < 4) return fail("run on 1 or 4 ranks");
    if (int rc = restart(client)) return rc;
    if (int rc = replicate(client)) return rc;
    if (int rc = rebalance(client)) return rc;
    return retire(client);
  });
}
