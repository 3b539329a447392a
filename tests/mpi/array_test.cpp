// Arrays on the distributed scheduler: Catch2 cases run by the client (rank
// 0) inside weft::main while the other ranks serve as workers. Each case
// computes array expressions on the cluster and on the sync scheduler and
// requires the same elements: blocks are computed by the same kernels in the
// same tree whatever runs them, so not even rounding may differ. Run by
// tests/mpi/array.sh on 1 to 4 ranks.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>
#include <set>
#include <string>
#include <vector>

#include "../../src/core/task_help.hpp"
#include "weft/array.hpp"
#include "weft/config.hpp"
#include "weft/weft.hpp"

namespace {

namespace wa = weft::array;
using Catch::Matchers::Contains;

// The result on the default scheduler (the cluster under mpirun) must be the
// sync scheduler's, element for element.
void check_same_everywhere(const wa::Array& x) {
  wa::NDArray here = x.compute();
  wa::NDArray reference = x.compute(weft::scheduler::sync);
  INFO(x.name() << " " << wa::shape_str(x.shape()));
  CHECK(here.dtype() == reference.dtype());
  CHECK(here.shape() == reference.shape());
  CHECK(here.equals(reference));
}

wa::NDArray ramp(std::int64_t rows, std::int64_t cols) {
  std::vector<double> v(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 97) - 40.0;
  return wa::NDArray::from(v, {rows, cols});
}

}  // namespace

TEST_CASE("a random expression and its reductions", "[array-dist]") {
  wa::random::RandomState rs(7);
  wa::Array x = rs.random({300, 300}, {70, 70});
  check_same_everywhere(x);
  check_same_everywhere((x + x.T() - x.mean(0)).sum());
  check_same_everywhere(x.std(0));
  check_same_everywhere(x.max(1));
  check_same_everywhere(x.cumsum(0));
  check_same_everywhere(wa::exp(x) * 2.0 >= 3.0);
}

TEST_CASE("data from the client: slicing, rechunk, matmul", "[array-dist]") {
  wa::Array a = wa::from_array(ramp(120, 90), wa::Chunks{{50, 50, 20}, {30, 60}});
  check_same_everywhere(a[{wa::slice(5, 110, 3), wa::slice(std::nullopt, std::nullopt, -2)}]);
  check_same_everywhere(a.rechunk({120, 9}));
  check_same_everywhere(wa::matmul(a, a.T()));
  check_same_everywhere(wa::reshape(a, {90, 120}).sum(1));
  check_same_everywhere(wa::concatenate({a, a * 2}, 1).argmax(1));
}

TEST_CASE("persisted blocks stay on the cluster and compute again", "[array-dist]") {
  wa::Array x = wa::from_array(ramp(64, 64), {16, 16});
  wa::Array p = (x * 3).persist();
  CHECK(p.name() == (x * 3).name());
  if (weft::nranks() > 1) {
    // Every block is held by a worker, none was brought to rank 0.
    std::vector<weft::TaskRef> blocks;
    weft::CollectionTraits<wa::Array>::roots(p, blocks);
    std::set<std::string> held;
    for (const auto& [rank, keys] : weft::mpi_test::client().has_what()) {
      CHECK(rank > 0);
      held.insert(keys.begin(), keys.end());
    }
    for (const weft::TaskRef& b : blocks) CHECK(held.count(b.key.str()) == 1);
  }
  check_same_everywhere(p.sum(0));
}

TEST_CASE("a failing block reports its error on the client", "[array-dist]") {
  wa::Array x = wa::from_array(ramp(4, 4), {4, 4});
  wa::Array wrong = wa::from_delayed(wa::to_delayed(x)[0], {3, 4}, wa::DType::float64);
  CHECK_THROWS_WITH(wrong.compute(), Contains("value.block-mismatch"));
  // The cluster is still usable afterwards.
  check_same_everywhere(x + 1);
}

namespace {

// A task that offers `parts` parts of its work: the first part to run waits
// (up to 10 s) for another thread to run one. Returns how many threads ran parts.
std::size_t threads_running_parts(unsigned parts) {
  std::mutex mutex;
  std::condition_variable cv;
  std::set<std::thread::id> threads;
  bool first = true;
  weft::detail::run_parts(parts, [&](unsigned) {
    std::unique_lock lock(mutex);
    threads.insert(std::this_thread::get_id());
    cv.notify_all();
    if (std::exchange(first, false)) cv.wait_for(lock, std::chrono::seconds(10), [&] { return threads.size() > 1; });
  });
  return threads.size();
}

}  // namespace

// Hidden: array.sh runs it on 2 ranks with --nthreads 2.
TEST_CASE("idle compute threads of a worker help its long task", "[.help]") {
  const auto nthreads = weft::config::get_optional<std::int64_t>("distributed.worker.nthreads");
  REQUIRE(weft::nranks() == 2);
  REQUIRE(nthreads.value_or(1) == 2);
  CHECK(weft::delayed(threads_running_parts, {.pure = false})(4u).compute() == 2);
  // A long contraction with help gives the bits of one thread without.
  std::vector<double> v(330000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<double>(i));
  const wa::Array a = wa::from_array(wa::NDArray::from(v, {300, 1100}), {300, 1100});
  const wa::Array product = wa::matmul(a, a.T());
  weft::ComputeOptions one(weft::scheduler::threads);
  one.num_workers = 1;
  CHECK(product.compute().equals(product.compute(one)));
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "array-test"); }
