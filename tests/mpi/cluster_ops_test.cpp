// Client::restart, retire_workers and replicate under mpirun (4 ranks: 3
// workers), run by tests/mpi/cluster_ops.sh through weft_mpirun, which wraps
// mpirun in `timeout`. Exits 0 when every check holds, and says what failed
// otherwise.
#include <algorithm>
#include <chrono>
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

int retire(weft::Client& client) {
  weft::ScatterOptions on_1;
  on_1.worker = 1;
  auto data = client.scatter(7L, on_1);
  auto derived = client.submit(square, data);
  auto spread = client.map(square, numbers(12));
  client.gather(spread);
  if (derived.result() != 49) return fail("retire: the task before it");
  client.retire_workers({1});
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

int main(int argc, char** argv) {
  return weft::main(argc, argv, [&](weft::Client& client) {
    if (weft::nranks() < 4) return fail("run on 4 ranks");
    if (int rc = restart(client)) return rc;
    if (int rc = replicate(client)) return rc;
    return retire(client);
  });
}
