// The distributed runtime end to end: Catch2 test cases run by the client
// (rank 0) inside weft::main while the other ranks serve as workers. Run by
// tests/mpi/runtime.sh on 1 to 5 ranks and without a launcher; every case
// must hold on all of them (with one rank, tasks run on local threads).
#define CATCH_CONFIG_RUNNER
// weft handles SIGTERM itself (a clean stop of every rank).
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace {

using weft::mpi_test::client;

long inc(long x) { return x + 1; }
long add(long a, long b) { return a + b; }
long sum_all(std::vector<long> xs) { return std::accumulate(xs.begin(), xs.end(), 0L); }
int where() { return weft::rank(); }
int where_with(const std::vector<double>& big) { return big.empty() ? -1 : weft::rank(); }
double total(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
std::vector<double> ramp(long n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  return v;
}
long fail_on(long x) {
  if (x == 13) throw std::domain_error("thirteen is unlucky");
  return x;
}
long slow_inc(long x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20 * x));
  return x + 1;
}

// The tree of ../../bench: n incs, then pairwise sums.
weft::Delayed<long> tree(long n) {
  std::vector<weft::Delayed<long>> xs;
  for (long i = 0; i < n; ++i) xs.push_back(weft::delayed(inc)(i));
  while (xs.size() > 1) {
    std::vector<weft::Delayed<long>> next;
    for (std::size_t i = 0; i < xs.size(); i += 2)
      next.push_back(i + 1 < xs.size() ? weft::delayed(add)(xs[i], xs[i + 1]) : xs[i]);
    xs.swap(next);
  }
  return xs[0];
}

bool distributed() { return client().nworkers() > 0; }

}  // namespace

TEST_CASE("compute of a delayed tree equals the threads scheduler's", "[runtime]") {
  weft::ComputeStats stats;
  weft::ComputeOptions options;
  options.stats = &stats;
  long got = tree(3000).compute(options);
  CHECK(got == tree(3000).compute(weft::scheduler::threads));
  CHECK(got == 3000L * 3001L / 2);
  CHECK((stats.threads == static_cast<unsigned>(client().nworkers()) || !distributed()));
  // Callbacks hear every unit finish, whichever scheduler ran it.
  struct Counter : weft::Callback {
    std::atomic<std::size_t> finished{0};
    void task_finish(const weft::Key&, unsigned, bool) override { ++finished; }
  };
  auto counter = std::make_shared<Counter>();
  options.callbacks.push_back(counter);
  CHECK(tree(300).compute(options) == 300L * 301L / 2);
  CHECK(counter->finished == stats.tasks_run);
  // Twice in a row, and several collections sharing intermediates.
  auto t = tree(100);
  auto [a, b] = weft::compute(t, t + weft::delayed(inc)(1L));
  CHECK(a == 5050);
  CHECK(b == 5052);
}

TEST_CASE("submit, futures as arguments, map and gather", "[runtime]") {
  weft::Future<long> f = client().submit(inc, 7L);
  weft::Future<long> g = client().submit(add, f, f);
  CHECK(g.result() == 16);
  CHECK(f.result() == 8);
  CHECK(f.done());
  CHECK(f.status() == weft::FutureStatus::finished);

  std::vector<long> items(50);
  std::iota(items.begin(), items.end(), 0L);
  std::vector<weft::Future<long>> fs = client().map(inc, items);
  std::vector<long> got = client().gather(fs);
  for (long i = 0; i < 50; ++i) CHECK(got[static_cast<std::size_t>(i)] == i + 1);

  // A vector of futures as one argument: every element is a dependency.
  weft::Future<long> s = client().submit(sum_all, fs);
  CHECK(s.result() == 50 * 51 / 2);

  // The same pure call is the same future.
  weft::Future<long> again = client().submit(inc, 7L);
  CHECK(again.key() == f.key());
  // Futures feed delayed calls too.
  CHECK(weft::delayed(add)(f, 2L).compute() == 10);
}

TEST_CASE("persist keeps a result on the workers for later graphs", "[runtime]") {
  weft::Delayed<long> t = tree(500);
  weft::Delayed<long> kept = client().persist(t);
  CHECK(kept.key() == t.key());
  weft::ComputeStats stats;
  weft::ComputeOptions options;
  options.stats = &stats;
  // Built on the persisted value, the graph does not compute the tree again.
  CHECK(weft::delayed(inc)(kept).compute(options) == 500L * 501L / 2 + 1);
  CHECK(stats.tasks_in_graph == 2);
  CHECK(kept.compute() == 500L * 501L / 2);
  if (distributed()) {
    auto who = client().who_has(std::vector{client().compute(kept)});
    CHECK(who[t.key().str()].size() == 1);
  }
}

TEST_CASE("a failing task errs its future and its dependents, and the cluster carries on", "[runtime]") {
  weft::Future<long> bad = client().submit(fail_on, 13L);
  weft::Future<long> dependent = client().submit(inc, bad);
  try {
    bad.result();
    FAIL("result() should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.key() == bad.key().str());
    CHECK(e.original_message().find("thirteen is unlucky") != std::string::npos);
    if (distributed()) {
      CHECK(std::string(e.what()).find("worker rank") != std::string::npos);
      CHECK_THROWS_AS(e.rethrow_original(), weft::RemoteError);
      try {
        e.rethrow_original();
      } catch (const weft::RemoteError& r) {
        CHECK(r.type() == "std::domain_error");
        CHECK(r.rank() >= 1);
      }
    } else {
      CHECK_THROWS_AS(e.rethrow_original(), std::domain_error);
    }
  }
  CHECK(bad.status() == weft::FutureStatus::error);
  CHECK_THROWS_AS(dependent.result(), weft::TaskError);
  CHECK(dependent.exception() != nullptr);
  // Delayed graphs fail the same way, naming the task that threw.
  auto d = weft::delayed(inc)(weft::delayed(fail_on)(13L));
  try {
    d.compute();
    FAIL("compute() should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.key().rfind("fail_on", 0) == 0);
  }
  // Still usable.
  CHECK(client().submit(inc, 41L).result() == 42);
}

TEST_CASE("scatter puts data on workers once; tasks read it there", "[runtime]") {
  std::vector<double> v = ramp(100000);
  weft::Future<std::vector<double>> data = client().scatter(v);
  CHECK(client().submit(total, data).result() == 100000.0 * 99999.0 / 2);
  CHECK(data.result() == v);

  auto many = client().scatter_each(std::vector<long>{1, 2, 3, 4});
  CHECK(client().gather(many) == std::vector<long>{1, 2, 3, 4});

  weft::Future<std::vector<double>> everywhere = client().scatter(ramp(1000), {.broadcast = true});
  std::vector<weft::Future<double>> sums;
  for (int i = 0; i < 6; ++i) sums.push_back(client().submit({.pure = false}, total, everywhere));
  for (double s : client().gather(sums)) CHECK(s == 999.0 * 1000.0 / 2);
}

TEST_CASE("run calls a function once on every worker", "[runtime]") {
  std::vector<int> ranks = client().run(where);
  if (!distributed()) {
    CHECK(ranks == std::vector<int>{0});
    return;
  }
  std::vector<int> expect(static_cast<std::size_t>(client().nworkers()));
  std::iota(expect.begin(), expect.end(), 1);
  CHECK(ranks == expect);
  // A result that cannot travel back is an error of the call; the workers carry on.
  struct Opaque {
    std::unique_ptr<int> p;
  };
  try {
    client().run([] { return Opaque{}; });
    FAIL("run should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.original_message().find("cannot be sent to rank 0") != std::string::npos);
  }
  CHECK(client().run(where) == expect);
}

TEST_CASE("a task runs where its large input is, and inputs move peer to peer", "[runtime]") {
  if (!distributed()) return;
  int last = client().nworkers();
  // The big input is made on the last worker; its consumer follows it.
  auto big = client().submit({.worker = last}, ramp, 2000000L);
  CHECK(client().submit(where_with, big).result() == last);
  // Inputs on two different workers: one of them is fetched from its peer
  // (never through rank 0), and the result is right.
  auto a = client().submit({.worker = 1}, ramp, 1000L);
  auto b = client().submit({.worker = last}, ramp, 3000L);
  auto both = client().submit([](const std::vector<double>& x, const std::vector<double>& y) {
    return total(x) + total(y);
  }, a, b);
  CHECK(both.result() == 999.0 * 1000 / 2 + 2999.0 * 3000 / 2);
  auto who = client().who_has(std::vector{a, b});
  CHECK(who[a.key().str()] == std::vector<int>{1});
  CHECK(who[b.key().str()] == std::vector<int>{last});
  // Bad worker ranks are refused before anything runs.
  try {
    client().submit({.worker = last + 1}, inc, 1L);
    FAIL("submit should throw");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.bad-worker");
  }
}

TEST_CASE("results are freed when their last future goes", "[runtime]") {
  if (!distributed()) return;
  auto count_keys = [] {
    std::size_t n = 0;
    for (auto& [rank, keys] : client().has_what()) n += keys.size();
    return n;
  };
  std::size_t before = count_keys();
  {
    std::vector<long> items(20);
    std::iota(items.begin(), items.end(), 1000L);
    auto fs = client().map(inc, items);
    weft::wait(fs);
    CHECK(count_keys() == before + 20);
  }
  // Releases travel asynchronously: ask until they have arrived.
  for (int i = 0; i < 200 && count_keys() != before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(count_keys() == before);
}

TEST_CASE("wait, as_completed and cancel", "[runtime]") {
  std::vector<weft::Future<long>> fs;
  for (long i : {5L, 1L, 3L}) fs.push_back(client().submit({.pure = false}, slow_inc, i));
  weft::wait(fs, weft::ReturnWhen::first_completed);
  CHECK(std::any_of(fs.begin(), fs.end(), [](auto& f) { return f.done(); }));
  std::multiset<long> seen;
  for (const weft::Future<long>& f : weft::as_completed(fs)) seen.insert(f.result());
  CHECK(seen == std::multiset<long>{6, 2, 4});
  weft::wait(fs);
  for (auto& f : fs) CHECK(f.done());

  auto slow = client().submit({.pure = false}, slow_inc, 50L);
  auto after = client().submit(inc, slow);
  slow.cancel();
  weft::wait(std::vector{slow, after});
  if (slow.cancelled()) {
    CHECK(after.cancelled());
    try {
      after.result();
      FAIL("result() of a cancelled future should throw");
    } catch (const weft::RuntimeError& e) {
      CHECK(e.id() == "runtime.cancelled");
    }
  } else {
    CHECK(after.result() == 52);  // it had finished before the cancel arrived
  }
  CHECK(client().submit(inc, 1L).result() == 2);
}

TEST_CASE("tasks that cannot travel are refused at submission", "[runtime]") {
  if (!distributed()) return;
  std::string text = "captured";
  try {
    client().submit([text](long x) { return x + static_cast<long>(text.size()); }, 1L);
    FAIL("submit should throw");
  } catch (const weft::TypeError& e) {
    CHECK(e.id() == "type.not-serializable");
  }
  // A closure of plain values travels.
  long offset = 5;
  CHECK(client().submit([offset](long x) { return x + offset; }, 1L).result() == 6);
  CHECK(client().submit([](long x) { return x * 2; }, 21L).result() == 42);
}

namespace {
// Each rank's place in the worker communicator, checked with an MPI call on it.
std::vector<int> where_in(const weft::CollectiveContext& ctx, long offset) {
  int total = ctx.rank;
  if (ctx.comm != MPI_COMM_NULL) MPI_Allreduce(&ctx.rank, &total, 1, MPI_INT, MPI_SUM, ctx.comm);
  return {ctx.rank, ctx.size, total, static_cast<int>(offset), weft::rank()};
}
double chunk_sum(const weft::CollectiveContext& ctx, const std::vector<double>& v) {
  // Each rank sums its share; the parts add up to the whole.
  std::size_t n = v.size(), lo = n * static_cast<std::size_t>(ctx.rank) / static_cast<std::size_t>(ctx.size),
              hi = n * static_cast<std::size_t>(ctx.rank + 1) / static_cast<std::size_t>(ctx.size);
  return std::accumulate(v.begin() + static_cast<std::ptrdiff_t>(lo), v.begin() + static_cast<std::ptrdiff_t>(hi), 0.0);
}
int fail_on_last(const weft::CollectiveContext& ctx) {
  if (ctx.rank == ctx.size - 1) throw std::runtime_error("the last rank refuses");
  return ctx.rank;
}
}  // namespace

TEST_CASE("collective steps run on every worker at once, between ordinary tasks", "[runtime]") {
  const int n = std::max(client().nworkers(), 1);
  // Ordinary tasks before, an input from a future, more tasks after.
  std::vector<long> items(40);
  std::iota(items.begin(), items.end(), 0L);
  auto before = client().map(inc, items);
  auto offset = client().submit(inc, 6L);
  std::vector<std::vector<int>> parts = weft::collective(where_in)(offset).compute();
  REQUIRE(parts.size() == static_cast<std::size_t>(n));
  for (int r = 0; r < n; ++r) {
    CHECK(parts[static_cast<std::size_t>(r)][0] == r);
    CHECK(parts[static_cast<std::size_t>(r)][1] == n);
    CHECK(parts[static_cast<std::size_t>(r)][2] == n * (n - 1) / 2);
    CHECK(parts[static_cast<std::size_t>(r)][3] == 7);
    CHECK(parts[static_cast<std::size_t>(r)][4] == (distributed() ? r + 1 : 0));
  }
  auto after = client().map(inc, items);
  CHECK(client().gather(before) == client().gather(after));

  // Inside a graph: an ordinary task reads the gathered parts.
  auto data = weft::delayed(ramp)(10000L);
  auto sums = weft::collective(chunk_sum)(data);
  auto whole = weft::delayed([](const std::vector<double>& s) { return std::accumulate(s.begin(), s.end(), 0.0); })(sums);
  CHECK(whole.compute() == 9999.0 * 10000.0 / 2);
  // Several collectives and ordinary tasks in one computation.
  auto [a, b, c] = weft::compute(weft::collective(chunk_sum)(data), weft::delayed(total)(data), whole);
  CHECK(std::accumulate(a.begin(), a.end(), 0.0) == b);
  CHECK(b == c);

  // A failure on one rank fails the step on all, naming it; the cluster goes on.
  try {
    weft::collective(fail_on_last)().compute();
    FAIL("compute() should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.original_message().find("the last rank refuses") != std::string::npos);
  }
  CHECK(client().submit(inc, 1L).result() == 2);
}

namespace {
std::atomic<int> gpu_tasks_running{0};
// Holds a "GPU" for 30 ms; returns how many such tasks ran in this process at once.
int use_gpu(long) {
  int now = ++gpu_tasks_running;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  --gpu_tasks_running;
  return now;
}
}  // namespace

TEST_CASE("tasks with resource requirements run only where, and as often as, the resources allow", "[runtime]") {
  if (!distributed()) return;
  weft::SubmitOptions gpu;
  gpu.resources = {{"GPU", 1}};
  gpu.pure = false;
  if (!weft::config::get_optional<std::string>("distributed.worker.resources")) {
    // Workers without --resources cannot run them: refused at submission.
    try {
      client().submit(gpu, use_gpu, 0L);
      FAIL("submit should throw");
    } catch (const weft::ValueError& e) {
      CHECK(e.id() == "value.no-worker-resources");
      CHECK(e.text().find("GPU=1") != std::string::npos);
    }
    return;
  }
  // runtime.sh starts this run with --nthreads 2 --resources GPU=1: two threads
  // per worker, but one GPU, so never two of these at once on a worker.
  std::vector<long> items(8);
  std::iota(items.begin(), items.end(), 0L);
  for (int most : client().gather(client().map(use_gpu, items, gpu))) CHECK(most == 1);
  weft::SubmitOptions two = gpu;
  two.resources = {{"GPU", 2}};
  CHECK_THROWS_AS(client().submit(two, use_gpu, 0L), weft::ValueError);
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "runtime-test"); }
