// weft-bench spill: held data three times the workers' memory, then a
// reduction that reads all of it, under mpirun with a --memory-limit:
//
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench spill --memory-limit 300MB
//
// Blocks are submitted and their futures kept (so every block stays held on
// its worker and most of them are spilled), then each block's sum of squares
// is taken and the sums added up. The result must equal the same computation
// done in memory on rank 0. peak_rss_over_limit is the largest worker's peak
// RSS (heartbeats report it) over its limit: memory stayed bounded if it is
// near or below 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "weft/weft.hpp"

namespace weft_bench {

namespace {

// A block that depends on its index only.
std::vector<double> spill_block(long index, long n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<double>((index * 131 + i) % 4096) / 64.0;
  return v;
}
double sum_of_squares(const std::vector<double>& v) { return std::inner_product(v.begin(), v.end(), v.begin(), 0.0); }
double add_all(const std::vector<double>& xs) { return std::accumulate(xs.begin(), xs.end(), 0.0); }

// scheduler_info once every worker has heartbeated after this call began
// (the heartbeat carries its peak RSS).
weft::SchedulerInfo fresh_info(weft::Client& client) {
  const weft::SchedulerInfo before = client.scheduler_info();
  while (true) {
    weft::SchedulerInfo now = client.scheduler_info();
    if (std::all_of(now.workers.begin(), now.workers.end(), [&](const auto& w) {
          return w.second.heartbeats > before.workers.at(w.first).heartbeats;
        }))
      return now;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

void spill(Options& opts) {
  const long block_mib = opts.get_int("block-mib", 16);
  const long factor = opts.get_int("factor", 3);
  opts.check_all_used();
  weft::Client& client = weft::client();
  if (client.nworkers() == 0)
    throw weft::ValueError("bad-option", "spill needs worker ranks: run it under mpirun with a --memory-limit");
  const weft::SchedulerInfo start = fresh_info(client);
  std::uint64_t limit_total = 0, limit = 0;
  for (const auto& [rank, w] : start.workers) {
    limit_total += w.metrics.memory_limit;
    limit = std::max(limit, w.metrics.memory_limit);
  }
  if (limit == 0) throw weft::ValueError("bad-option", "spill needs a --memory-limit");
  const long block_doubles = block_mib << 17;  // MiB of doubles
  const auto block_bytes = static_cast<std::uint64_t>(block_doubles) * sizeof(double);
  const long nblocks = static_cast<long>(factor * limit_total / block_bytes) + 1;

  const auto t0 = Clock::now();
  std::vector<weft::Future<std::vector<double>>> blocks;
  for (long i = 0; i < nblocks; ++i) blocks.push_back(client.submit(spill_block, i, block_doubles));
  weft::wait(blocks);
  std::vector<weft::Future<double>> sums;
  for (const auto& b : blocks) sums.push_back(client.submit(sum_of_squares, b));
  const double value = client.submit(add_all, sums).result();
  const double seconds = seconds_since(t0);

  std::vector<double> expected(static_cast<std::size_t>(nblocks));
  for (long i = 0; i < nblocks; ++i) expected[static_cast<std::size_t>(i)] = sum_of_squares(spill_block(i, block_doubles));

  const weft::SchedulerInfo end = fresh_info(client);
  std::uint64_t spilled = 0;
  double peak_over_limit = 0;
  for (const auto& [rank, w] : end.workers) {
    spilled += w.metrics.spilled_bytes_total;
    peak_over_limit = std::max(peak_over_limit, static_cast<double>(w.metrics.peak_memory) /
                                                    static_cast<double>(w.metrics.memory_limit));
  }
  nlohmann::json j = {{"bench", "spill"},
                      {"ranks", weft::nranks()},
                      {"seconds", seconds},
                      {"blocks", nblocks},
                      {"data_bytes", static_cast<std::uint64_t>(nblocks) * block_bytes},
                      {"limit_bytes", limit},
                      {"spilled_bytes", spilled},
                      {"peak_rss_over_limit", peak_over_limit},
                      {"correct", value == add_all(expected)}};
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
