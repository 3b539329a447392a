// weft-bench: weft's benchmarks. `weft-bench NAME [--option value ...]`
// prints one JSON object per line with "bench", "seconds" and the figures
// of that benchmark. `weft-bench --list` names them.
//
// Compare with the peers in ../shared/peers (Dask, StarPU) in the same run:
// absolute times move from machine to machine, ratios much less.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "weft/weft.hpp"

namespace weft_bench {
void scheduler_sim(Options& opts);  // bench/scheduler_sim.cpp
// bench/array_benches.cpp
void array_expr(Options& opts);
void array_sum(Options& opts);
void array_std(Options& opts);
void rechunk(Options& opts);
void matmul(Options& opts);
void array_graph(Options& opts);
void spill(Options& opts);  // bench/spill.cpp
// bench/io_hdf5.cpp
void to_hdf5(Options& opts);
void from_hdf5(Options& opts);
// bench/io_netcdf.cpp
void to_netcdf(Options& opts);
void from_netcdf(Options& opts);
}

namespace {

using weft_bench::Clock;
using weft_bench::compute_options;
using weft_bench::Options;
using weft_bench::seconds_since;

long inc(long x) { return x + 1; }
long add(long a, long b) { return a + b; }
std::vector<long> to_list(std::vector<long> xs) { return xs; }

// Runs build() then compute() `repeat` times; keeps the best of each.
template <class Build, class Check>
void run_task_bench(const char* name, Options& opts, std::size_t ntasks, Build build, Check check) {
  weft::ComputeOptions co = compute_options(opts);
  long repeat = opts.get_int("repeat", 3);
  opts.check_all_used();
  weft::ComputeStats stats;
  co.stats = &stats;
  double best_build = 1e30, best_run = 1e30;
  bool correct = true;
  for (long r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    auto result = build();
    best_build = std::min(best_build, seconds_since(t0));
    auto t1 = Clock::now();
    auto value = result.compute(co);
    best_run = std::min(best_run, seconds_since(t1));
    correct = correct && check(value);
  }
  nlohmann::json j = {{"bench", name},
                      {"scheduler", std::string(weft::to_string(*co.scheduler))},
                      {"threads", stats.threads},
                      {"ranks", weft::nranks()},
                      {"tasks", ntasks},
                      {"seconds", best_run},
                      {"build_seconds", best_build},
                      {"per_task_us", best_run / static_cast<double>(ntasks) * 1e6},
                      {"build_us_per_task", best_build / static_cast<double>(ntasks) * 1e6},
                      {"correct", correct}};
  std::printf("%s\n", j.dump().c_str());
}

// N independent inc tasks, as both task benchmarks start.
std::vector<weft::Delayed<long>> incs(long n) {
  std::vector<weft::Delayed<long>> xs;
  xs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) xs.push_back(weft::delayed(inc)(i));
  return xs;
}

// N independent inc tasks, then a binary-tree sum (../shared/peers/dask_tasks.py).
void tasks_tree(Options& opts) {
  long n = opts.get_int("n", 20000);
  auto build = [n] {
    std::vector<weft::Delayed<long>> xs = incs(n);
    while (xs.size() > 1) {
      std::vector<weft::Delayed<long>> next;
      next.reserve(xs.size() / 2 + 1);
      for (std::size_t i = 0; i < xs.size(); i += 2)
        next.push_back(i + 1 < xs.size() ? weft::delayed(add)(xs[i], xs[i + 1]) : xs[i]);
      xs.swap(next);
    }
    return xs[0];
  };
  long expect = n * (n + 1) / 2;
  run_task_bench("tasks-tree", opts, static_cast<std::size_t>(2 * n - 1), build,
                 [expect](long v) { return v == expect; });
}

// N independent tasks gathered into one list (Dask's client.map + gather).
void tasks_map(Options& opts) {
  long n = opts.get_int("n", 20000);
  auto build = [n] { return weft::delayed(to_list)(incs(n)); };
  run_task_bench("tasks-map", opts, static_cast<std::size_t>(n + 1), build,
                 [n](const std::vector<long>& v) {
                   if (v.size() != static_cast<std::size_t>(n)) return false;
                   for (long i = 0; i < n; ++i)
                     if (v[static_cast<std::size_t>(i)] != i + 1) return false;
                   return true;
                 });
}

const std::map<std::string, std::function<void(Options&)>>& benchmarks() {
  static const std::map<std::string, std::function<void(Options&)>> all = {
      {"tasks-tree", tasks_tree},
      {"tasks-map", tasks_map},
      {"scheduler-sim", weft_bench::scheduler_sim},
      {"array-expr", weft_bench::array_expr},
      {"array-sum", weft_bench::array_sum},
      {"array-std", weft_bench::array_std},
      {"rechunk", weft_bench::rechunk},
      {"matmul", weft_bench::matmul},
      {"array-graph", weft_bench::array_graph},
      {"spill", weft_bench::spill},
      {"to-hdf5", weft_bench::to_hdf5},
      {"from-hdf5", weft_bench::from_hdf5},
      {"to-netcdf", weft_bench::to_netcdf},
      {"from-netcdf", weft_bench::from_netcdf},
  };
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--list" || std::string(argv[1]) == "--help") {
    std::printf("usage: weft-bench NAME [--option value ...]\nbenchmarks:");
    for (const auto& [name, fn] : benchmarks()) std::printf(" %s", name.c_str());
    std::printf("\n");
    return argc < 2 ? 2 : 0;
  }
  auto it = benchmarks().find(argv[1]);
  if (it == benchmarks().end()) {
    std::fprintf(stderr, "weft-bench: unknown benchmark '%s' (try --list)\n", argv[1]);
    return 2;
  }
  // Rank 0 runs the benchmark; under mpirun the other ranks are its workers.
  return weft::main(argc, argv, [&](weft::Client&) {
    try {
      Options opts(argc, argv);
      it->second(opts);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft-bench: %s\n", e.what());
      return 1;
    }
    return 0;
  });
}
