// The array benchmarks: the workloads of ../shared/peers/dask_array.py, each
// beside its local baseline measured in the same run (a STREAM-like OpenMP
// sum, one OpenBLAS dgemm of the whole matrices).
#include <cblas.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "weft/array.hpp"

namespace weft_bench {
namespace {

namespace wa = weft::array;

void print(const nlohmann::json& j) { std::printf("%s\n", j.dump().c_str()); }
void print(nlohmann::json head, const nlohmann::json& more) {
  head.update(more);
  print(head);
}

// An n x n float64 array in memory with values that are cheap to make and
// check (element (i, j) is ((i * n + j) % 1000) / 1000).
wa::NDArray square_matrix(std::int64_t n) {
  wa::NDArray a(wa::DType::float64, {n, n});
  double* p = a.data<double>();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n * n; ++i) p[i] = static_cast<double>(i % 1000) / 1000.0;
  return a;
}

// The same sum the way STREAM would: one OpenMP pass over the memory.
double stream_sum(const wa::NDArray& a) {
  const double* p = a.data<double>();
  const std::int64_t n = a.size();
  double total = 0.0;
#pragma omp parallel for simd reduction(+ : total) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) total += p[i];
  return total;
}

double scalar(const wa::Array& x, const weft::ComputeOptions& co) { return x.compute(co).item<double>(); }

// What the workload benchmarks read from their options: --n, --chunk,
// --repeat and the scheduler (--scheduler, --threads).
struct Workload {
  std::int64_t n, chunk;
  long repeat;
  weft::ComputeOptions co;
  Workload(Options& opts, std::int64_t default_n)
      : n(opts.get_int("n", default_n)),
        chunk(opts.get_int("chunk", 1000)),
        repeat(opts.get_int("repeat", 3)),
        co(compute_options(opts)) {
    opts.check_all_used();
  }
  // The fields every line starts with.
  nlohmann::json fields(const char* bench) const {
    return {{"bench", bench}, {"n", n}, {"ranks", weft::nranks()}};
  }
};

}  // namespace

// (x + x.T - x.mean(0)).sum() with x random inside the graph. The sum equals
// x.sum() (the other terms cancel), which checks the result. x is generated
// where it is read (three times: x, x.T, the mean); beside it, the same with
// x materialised first (persisted, then the expression), and x.sum() alone,
// which is the generator's speed (100 M doubles, nothing read from memory).
void array_expr(Options& opts) {
  const Workload w(opts, 10000);
  const std::int64_t n = w.n, c = w.chunk;
  wa::random::RandomState rs(42);
  wa::Array x = rs.random({n, n}, {c, c});
  wa::Array expr = (x + x.T() - x.mean(0)).sum();
  double value = 0.0, materialised_value = 0.0, check = 0.0;
  const double seconds = best_of(w.repeat, [&] { value = scalar(expr, w.co); });
  const double materialised_seconds = best_of(w.repeat, [&] {
    const wa::Array kept = x.persist(w.co);
    materialised_value = scalar((kept + kept.T() - kept.mean(0)).sum(), w.co);
  });
  const double generate_seconds = best_of(w.repeat, [&] { check = scalar(x.sum(), w.co); });
  print(w.fields("array-expr"), {{"chunk", c}, {"seconds", seconds}, {"value", value},
         {"materialised_seconds", materialised_seconds}, {"generate_seconds", generate_seconds},
         {"generated_per_second", static_cast<double>(n * n) / generate_seconds},
         {"correct", near(value, check, 1e-9) && near(materialised_value, check, 1e-9)}});
}

// x.sum() of an 800 MB float64 array in memory, beside one OpenMP pass.
void array_sum(Options& opts) {
  const Workload w(opts, 10000);
  const std::int64_t n = w.n, c = w.chunk;
  wa::NDArray data = square_matrix(n);
  wa::Array x = wa::from_array(data, {c, c});
  double value = 0.0, reference = 0.0;
  const auto [seconds, stream_seconds] = best_of_side_by_side(
      w.repeat, [&] { value = scalar(x.sum(), w.co); }, [&] { reference = stream_sum(data); });
  const double bytes = static_cast<double>(data.nbytes());
  print(w.fields("array-sum"), {{"chunk", c}, {"seconds", seconds}, {"value", value}, {"gbps", bytes / seconds / 1e9},
         {"stream_seconds", stream_seconds}, {"stream_gbps", bytes / stream_seconds / 1e9},
         {"threads", omp_get_max_threads()},
         {"ratio_to_stream", stream_seconds / seconds}, {"correct", near(value, reference, 1e-12)}});
}

// x.std(axis=0) of the same array.
void array_std(Options& opts) {
  const Workload w(opts, 10000);
  const std::int64_t n = w.n, c = w.chunk;
  wa::NDArray data = square_matrix(n);
  wa::Array x = wa::from_array(data, {c, c});
  wa::NDArray result;
  const double seconds = best_of(w.repeat, [&] { result = x.std(0).compute(w.co); });
  // Column 0 by two passes, directly.
  double mean = 0.0, m2 = 0.0;
  for (std::int64_t i = 0; i < n; ++i) mean += data.at<double>({i, 0});
  mean /= static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i) m2 += std::pow(data.at<double>({i, 0}) - mean, 2);
  const double want = std::sqrt(m2 / static_cast<double>(n));
  print(w.fields("array-std"), {{"chunk", c}, {"seconds", seconds}, {"correct", near(result.at<double>({0}), want, 1e-10)}});
}

// (1000, 1000) blocks -> (10000, 100), then summed (as the peer does).
void rechunk(Options& opts) {
  const Workload w(opts, 10000);
  const std::int64_t n = w.n, c = w.chunk;
  wa::NDArray data = square_matrix(n);
  wa::Array x = wa::from_array(data, {c, c});
  wa::Array y = x.rechunk({n, n / 100});
  double value = 0.0;
  const double seconds = best_of(w.repeat, [&] { value = scalar(y.sum(), w.co); });
  print(w.fields("rechunk"), {{"from", c}, {"to", nlohmann::json::array({n, n / 100})}, {"tasks", y.graph().size()}, {"seconds", seconds},
         {"correct", near(value, stream_sum(data), 1e-12)}});
}

// A @ B of 4000^2 float64 in 1000^2 blocks, beside one dgemm of the whole.
void matmul(Options& opts) {
  const Workload w(opts, 4000);
  const std::int64_t n = w.n, c = w.chunk;
  wa::NDArray a = square_matrix(n), b = wa::NDArray(wa::DType::float64, {n, n});
  {
    const double* pa = a.data<double>();
    double* pb = b.data<double>();
    for (std::int64_t i = 0; i < n * n; ++i) pb[i] = 1.0 - pa[(i * 7) % (n * n)];
  }
  wa::Array A = wa::from_array(a, {c, c}), B = wa::from_array(b, {c, c});
  wa::Array product = wa::matmul(A, B);
  wa::NDArray result;
  wa::NDArray reference(wa::DType::float64, {n, n});
  const auto [seconds, dgemm_seconds] = best_of_side_by_side(w.repeat, [&] { result = product.compute(w.co); }, [&] {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n),
                static_cast<int>(n), 1.0, a.data<double>(), static_cast<int>(n), b.data<double>(),
                static_cast<int>(n), 0.0, reference.data<double>(), static_cast<int>(n));
  });
  bool correct = true;
  for (std::int64_t i = 0; i < n; i += n / 7)
    for (std::int64_t j = 0; j < n; j += n / 5)
      correct = correct && near(result.at<double>({i, j}), reference.at<double>({i, j}), 1e-10);
  print(w.fields("matmul"), {{"chunk", c}, {"seconds", seconds},
         {"dgemm_seconds", dgemm_seconds}, {"ratio_to_dgemm", dgemm_seconds / seconds},
         {"gflops", 2.0 * std::pow(static_cast<double>(n), 3) / seconds / 1e9}, {"correct", correct}});
}

// Building and running a graph of many small blocks: (x + 1) * 2 summed, x of
// `blocks` blocks of `chunk` elements. Times the layers (no tasks yet), the
// tasks (materialising the graph) and the computation separately.
void array_graph(Options& opts) {
  const std::int64_t blocks = opts.get_int("blocks", 100000), c = opts.get_int("chunk", 10);
  weft::ComputeOptions co = compute_options(opts);
  opts.check_all_used();
  Clock::time_point t = Clock::now();
  wa::Array x = wa::ones({blocks * c}, wa::DType::float64, c);
  wa::Array y = ((x + 1) * 2).sum();
  const double layers_seconds = seconds_since(t);
  t = Clock::now();
  const std::size_t tasks = y.graph().size();
  const double tasks_seconds = seconds_since(t);
  t = Clock::now();
  const double value = scalar(y, co);
  const double run_seconds = seconds_since(t);
  print({{"bench", "array-graph"}, {"blocks", blocks}, {"chunk", c}, {"ranks", weft::nranks()},
         {"tasks", tasks}, {"layers_seconds", layers_seconds}, {"graph_seconds", tasks_seconds},
         {"seconds", run_seconds}, {"per_block_us", run_seconds / static_cast<double>(blocks) * 1e6},
         {"correct", value == 4.0 * static_cast<double>(blocks * c)}});
}

}  // namespace weft_bench
