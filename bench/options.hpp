// Options of one weft-bench run: `--name value` pairs after the benchmark's name.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "weft/compute.hpp"
#include "weft/error.hpp"
#include "weft/main.hpp"
#include "weft/scheduler.hpp"

namespace weft_bench {

class Options {
 public:
  Options(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0 || i + 1 >= argc)
        throw weft::ValueError("bad-option", "expected --name value, got '" + a + "'");
      values_[a.substr(2)] = argv[++i];
    }
  }
  std::string get(const std::string& name, const std::string& fallback) {
    auto it = values_.find(name);
    std::string v = it == values_.end() ? fallback : it->second;
    used_.push_back(name);
    return v;
  }
  long get_int(const std::string& name, long fallback) {
    return std::stol(get(name, std::to_string(fallback)));
  }
  // Options nobody asked for are typos: say so rather than ignore them.
  void check_all_used() const {
    for (const auto& [name, value] : values_)
      if (std::find(used_.begin(), used_.end(), name) == used_.end())
        throw weft::ValueError("bad-option", "unknown option --" + name);
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> used_;
};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// --scheduler (default: the cluster under mpirun, else threads) and --threads.
inline weft::ComputeOptions compute_options(Options& opts) {
  weft::ComputeOptions o;
  o.scheduler = weft::parse_scheduler(opts.get("scheduler", weft::nranks() > 1 ? "distributed" : "threads"));
  long threads = opts.get_int("threads", 0);
  if (threads > 0) o.num_workers = static_cast<unsigned>(threads);
  return o;
}

/// Whether `got` is `want` to the relative tolerance `rtol`.
inline bool near(double got, double want, double rtol) { return std::fabs(got - want) <= rtol * std::fabs(want); }

/// The best time of `repeat` runs of f().
template <class F>
double best_of(long repeat, F&& f) {
  double best = 1e30;
  for (long r = 0; r < repeat; ++r) {
    Clock::time_point t = Clock::now();
    f();
    best = std::min(best, seconds_since(t));
  }
  return best;
}

/// The best times of `repeat` runs each of f() and of its peer(), taken in
/// turns, so that a machine that slows down for a while slows both; who
/// goes first alternates, since the first of a pair ran ~2% faster here
/// (dgemm against itself: median ratio 1.02). Each run starts after a pause
/// of 0.3 s, so that neither runs beside the other's idle threads:
/// OpenBLAS's helper threads keep polling (with sched_yield) for ~0.1 s
/// after a call, which took 3-10% of the 2 cores from the matmul that
/// followed a dgemm.
template <class F, class G>
std::pair<double, double> best_of_side_by_side(long repeat, F&& f, G&& peer) {
  double best = 1e30, best_peer = 1e30;
  auto one = [](auto&& run, double& best_so_far) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    best_so_far = std::min(best_so_far, best_of(1, run));
  };
  for (long r = 0; r < repeat; ++r) {
    if (r % 2 == 0) {
      one(f, best);
      one(peer, best_peer);
    } else {
      one(peer, best_peer);
      one(f, best);
    }
  }
  return {best, best_peer};
}

}  // namespace weft_bench
