// demo: weft's main demo job.
//
// Statistics of a large synthetic signal, computed chunk by chunk as a task
// graph: each chunk is generated, summarised (count, mean, M2 by Welford's
// method) and the summaries are merged in a tree, as Dask's reductions do.
// The same graph runs on the sync and the threads scheduler, and the result
// is checked against a plain serial loop. A progress bar shows on stderr;
// the run leaves a Chrome trace (demo-trace.json: open it in
// chrome://tracing or https://ui.perfetto.dev) and a Graphviz picture of a
// small version of the graph (demo-graph.dot). Then the same kind of question
// with weft::array: an expression over a random 4000 x 4000 field and its
// min, max and sum in one pass.
//
//   examples/demo [--chunks N] [--chunk-size M] [--out DIR]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "weft/weft.hpp"

namespace {

// Partial statistics of a block of numbers; merging two is exact (Chan et al.).
struct Summary {
  double count = 0, mean = 0, m2 = 0, min = INFINITY, max = -INFINITY;
};

std::vector<double> generate(std::uint64_t chunk, std::size_t size) {
  std::mt19937_64 rng(0x5eed + chunk);
  std::normal_distribution<double> noise(0.0, 0.5);
  std::vector<double> x(size);
  for (std::size_t i = 0; i < size; ++i) {
    double t = static_cast<double>(chunk * size + i) * 1e-4;
    x[i] = std::sin(t) + noise(rng);
  }
  return x;
}

Summary summarise(const std::vector<double>& x) {
  Summary s;
  for (double v : x) {
    s.count += 1;
    double d = v - s.mean;
    s.mean += d / s.count;
    s.m2 += d * (v - s.mean);
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
  }
  return s;
}

Summary merge(std::vector<Summary> parts) {
  Summary out;
  for (const Summary& p : parts) {
    if (p.count == 0) continue;
    double n = out.count + p.count;
    double d = p.mean - out.mean;
    out.mean += d * p.count / n;
    out.m2 += p.m2 + d * d * out.count * p.count / n;
    out.count = n;
    out.min = std::min(out.min, p.min);
    out.max = std::max(out.max, p.max);
  }
  return out;
}

// The graph: generate -> summarise per chunk, then merges of 8 at a time.
weft::Delayed<Summary> statistics(std::uint64_t chunks, std::size_t chunk_size) {
  std::vector<weft::Delayed<Summary>> level;
  for (std::uint64_t c = 0; c < chunks; ++c)
    level.push_back(weft::delayed(summarise)(weft::delayed(generate)(c, chunk_size)));
  while (level.size() > 1) {
    std::vector<weft::Delayed<Summary>> next;
    for (std::size_t i = 0; i < level.size(); i += 8) {
      std::vector<weft::Delayed<Summary>> group(level.begin() + static_cast<std::ptrdiff_t>(i),
                                                level.begin() + static_cast<std::ptrdiff_t>(std::min(i + 8, level.size())));
      next.push_back(weft::delayed(merge)(group));
    }
    level.swap(next);
  }
  return level[0];
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void print(const char* label, const Summary& s, double secs) {
  std::printf("%-22s n=%.0f mean=%.9f std=%.9f min=%.6f max=%.6f  %.3fs\n", label, s.count, s.mean,
              std::sqrt(s.m2 / s.count), s.min, s.max, secs);
}

bool close(const Summary& a, const Summary& b) {
  auto near = [](double x, double y) { return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y)); };
  return a.count == b.count && near(a.mean, b.mean) && near(a.m2, b.m2) && a.min == b.min && a.max == b.max;
}

// The array version of such a question: an expression over a random field in
// 1000 x 1000 blocks and three reductions of it, computed in one pass (on the
// worker ranks under mpirun). Checked two ways: the sum equals x.sum() (the
// other terms cancel), and the sync scheduler gives the same numbers.
bool array_demo(std::int64_t n) {
  namespace wa = weft::array;
  auto t0 = std::chrono::steady_clock::now();
  wa::random::RandomState rs(2026);
  wa::Array x = rs.random({n, n}, {1000, 1000});
  wa::Array y = x + x.T() - x.mean(0);
  auto [lo, hi, total] = weft::compute(y.min(), y.max(), y.sum());
  std::printf("arrays: y = x + x.T - x.mean(0), x random %lldx%lld: min=%.6f max=%.6f sum=%.3f  %.3fs\n",
              static_cast<long long>(n), static_cast<long long>(n), lo.item<double>(), hi.item<double>(),
              total.item<double>(), seconds(t0));
  const weft::ComputeOptions sync(weft::scheduler::sync);
  const double x_total = x.sum().compute(sync).item<double>();
  const bool ok = std::fabs(total.item<double>() - x_total) <= 1e-9 * std::fabs(x_total) &&
                  lo.equals(y.min().compute(sync)) && hi.equals(y.max().compute(sync));
  std::printf("%s\n", ok ? "array results check out (sum == x.sum(); same on the sync scheduler)"
                         : "ARRAY RESULTS DIFFER");
  return ok;
}

int demo(int argc, char** argv, weft::Client& client) {
  std::uint64_t chunks = 200;
  std::size_t chunk_size = 100000;
  std::string out = ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--chunks") chunks = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--chunk-size") chunk_size = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--out") out = argv[i + 1];
    else {
      std::fprintf(stderr, "demo: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (chunks == 0 || chunk_size == 0) {
    std::fprintf(stderr, "demo: --chunks and --chunk-size must be positive\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep our lines in order with the progress bar's
  try {
    std::printf("weft %s demo: statistics of %llu x %zu samples (%.1f MB generated in the graph)\n",
                WEFT_VERSION, static_cast<unsigned long long>(chunks), chunk_size,
                static_cast<double>(chunks * chunk_size * sizeof(double)) / 1e6);
    auto t0 = std::chrono::steady_clock::now();
    auto stats = statistics(chunks, chunk_size);
    std::printf("graph built: %s in %.3f ms\n", stats.key().str().c_str(), seconds(t0) * 1e3);

    // Serial reference: the same numbers in one loop.
    t0 = std::chrono::steady_clock::now();
    std::vector<Summary> serial;
    for (std::uint64_t c = 0; c < chunks; ++c) serial.push_back(summarise(generate(c, chunk_size)));
    Summary reference = merge(serial);
    print("serial loop", reference, seconds(t0));

    t0 = std::chrono::steady_clock::now();
    Summary sync = stats.compute(weft::scheduler::sync);
    print("weft sync scheduler", sync, seconds(t0));

    weft::ComputeStats run;
    weft::ComputeOptions threads(weft::scheduler::threads);
    threads.stats = &run;
    threads.track_memory = true;
    Summary par;
    {
      weft::diagnostics::ProgressBar bar;
      weft::diagnostics::Profiler profiler;
      t0 = std::chrono::steady_clock::now();
      par = stats.compute(threads);
      print("weft threads scheduler", par, seconds(t0));
      profiler.write_chrome_trace(out + "/demo-trace.json");
    }
    std::printf("%zu tasks in the graph, %zu run after fusion, %u threads, at most %zu results "
                "(%.1f kB) in memory at once\n",
                run.tasks_in_graph, run.tasks_run, run.threads, run.peak_results,
                static_cast<double>(run.peak_bytes) / 1e3);
    Summary cluster = par;
    if (client.nworkers() > 0) {
      // The same graph on the worker ranks (the default inside weft::main under mpirun).
      t0 = std::chrono::steady_clock::now();
      cluster = stats.compute(weft::scheduler::distributed);
      char label[64];
      std::snprintf(label, sizeof label, "weft on %d worker ranks", client.nworkers());
      print(label, cluster, seconds(t0));
    }
    statistics(4, 8).to_dot(out + "/demo-graph.dot");
    std::printf("wrote %s/demo-trace.json and %s/demo-graph.dot\n", out.c_str(), out.c_str());

    bool ok = close(sync, reference) && close(par, reference) && close(cluster, reference);
    std::printf("%s\n", ok ? "results agree with the serial loop" : "RESULTS DIFFER");
    ok = array_demo(4000) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Rank 0 runs the demo; under mpirun/srun the other ranks are its workers.
  return weft::main(argc, argv, [&](weft::Client& client) { return demo(argc, argv, client); });
}
