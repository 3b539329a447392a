// The local schedulers: same results, bounded memory, callbacks, concurrency.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "../src/core/task_help.hpp"
#include "weft/weft.hpp"

using weft::Delayed;
using weft::delayed;

namespace {

std::uint64_t mix(std::vector<std::uint64_t> inputs, std::uint64_t salt) {
  std::uint64_t h = salt * 0x9E3779B97F4A7C15ULL;
  for (std::uint64_t v : inputs) h = (h ^ v) * 0x100000001B3ULL;
  return h;
}

// A random DAG of `n` tasks; each task reads up to 3 earlier ones. Returns
// the tasks and, computed in plain C++, what each must produce.
struct RandomDag {
  std::vector<Delayed<std::uint64_t>> tasks;
  std::vector<std::uint64_t> expected;
};
RandomDag random_dag(unsigned seed, int n) {
  std::mt19937 rng(seed);
  RandomDag dag;
  for (int i = 0; i < n; ++i) {
    std::vector<Delayed<std::uint64_t>> ins;
    std::vector<std::uint64_t> vals;
    if (i > 0) {
      int k = static_cast<int>(rng() % 4);
      for (int j = 0; j < k; ++j) {
        auto pick = static_cast<std::size_t>(rng() % static_cast<unsigned>(i));
        ins.push_back(dag.tasks[pick]);
        vals.push_back(dag.expected[pick]);
      }
    }
    auto salt = static_cast<std::uint64_t>(i);
    dag.tasks.push_back(delayed(mix)(ins, salt));
    dag.expected.push_back(mix(vals, salt));
  }
  return dag;
}

// A chunk that counts how many of its kind are alive.
struct Chunk {
  static inline std::atomic<int> alive{0};
  static inline std::atomic<int> peak{0};
  std::vector<double> data;
  explicit Chunk(std::size_t n, double v) : data(n, v) { note(); }
  Chunk(const Chunk& o) : data(o.data) { note(); }
  Chunk(Chunk&& o) noexcept : data(std::move(o.data)) { note(); }
  ~Chunk() { --alive; }
  static void note() {
    int now = ++alive;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  std::size_t nbytes() const { return data.size() * sizeof(double); }
};

Chunk make_chunk(int i) { return Chunk(100000, static_cast<double>(i)); }
double chunk_sum(const Chunk& c) { return std::accumulate(c.data.begin(), c.data.end(), 0.0); }
double total(std::vector<double> parts) { return std::accumulate(parts.begin(), parts.end(), 0.0); }

struct CountingCallback : weft::Callback {
  std::atomic<int> started{0}, finished{0}, failed{0}, starts{0}, finishes{0};
  std::atomic<std::size_t> announced{0};
  std::atomic<unsigned> max_thread{0}, nthreads{0};
  void start(const weft::ComputeStart& s) override {
    ++starts;
    announced = s.ntasks;
    nthreads = s.nthreads;
  }
  void task_start(const weft::Key&, unsigned t) override {
    ++started;
    unsigned seen = max_thread.load();
    while (t > seen && !max_thread.compare_exchange_weak(seen, t)) {
    }
  }
  void task_finish(const weft::Key&, unsigned, bool f) override {
    ++finished;
    if (f) ++failed;
  }
  void finish(bool) override { ++finishes; }
};

weft::ComputeOptions with(weft::SchedulerKind kind, unsigned threads) {
  weft::ComputeOptions o;
  o.scheduler = kind;
  o.num_workers = threads;
  return o;
}

}  // namespace

TEST_CASE("random DAGs give the same results on sync and on 1-8 threads", "[scheduler]") {
  auto seed = GENERATE(1u, 2u, 3u, 4u);
  auto threads = GENERATE(1u, 2u, 4u, 8u);
  RandomDag dag = random_dag(seed, 300);
  // Request every 7th task at once: shared intermediates, many roots.
  std::vector<Delayed<std::uint64_t>> wanted;
  std::vector<std::uint64_t> expect;
  for (std::size_t i = 0; i < dag.tasks.size(); i += 7) {
    wanted.push_back(dag.tasks[i]);
    expect.push_back(dag.expected[i]);
  }
  auto all = delayed([](std::vector<std::uint64_t> v) { return v; })(wanted);
  CHECK(all.compute(with(weft::SchedulerKind::threads, threads)) == expect);
  CHECK(all.compute(weft::scheduler::sync) == expect);
}

TEST_CASE("a 200-chunk sum streams: peak memory stays at a few chunks", "[scheduler][memory]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  std::vector<Delayed<double>> parts;
  for (int i = 0; i < 200; ++i) parts.push_back(delayed(chunk_sum)(delayed(make_chunk)(i)));
  auto sum = delayed(total)(parts);
  Chunk::alive = 0;
  Chunk::peak = 0;
  weft::ComputeStats stats;
  weft::ComputeOptions o = with(kind, 2);
  o.stats = &stats;
  o.track_memory = true;
  o.optimize_graph = false;  // measure the ordering, not fusion
  CHECK(sum.compute(o) == Approx(100000.0 * (199 * 200 / 2)));
  CHECK(Chunk::alive == 0);
  const std::size_t chunk_bytes = 100000 * sizeof(double);
  INFO("peak chunks alive " << Chunk::peak << ", peak bytes " << stats.peak_bytes);
  CHECK(stats.tasks_in_graph == 401);
  CHECK(stats.tasks_run == 401);
  // Each thread holds at most a chunk or two; 200 would be all of them.
  CHECK(Chunk::peak <= 4);
  CHECK(stats.peak_bytes <= 4 * chunk_bytes + 200 * 64);
}

TEST_CASE("callbacks see every task once, from threads in range", "[scheduler][callbacks]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  auto cb = std::make_shared<CountingCallback>();
  RandomDag dag = random_dag(7, 500);
  auto all = delayed([](std::vector<std::uint64_t> v) { return v.size(); })(dag.tasks);
  weft::ComputeOptions o = with(kind, 4);
  o.callbacks.push_back(cb);
  weft::ComputeStats stats;
  o.stats = &stats;
  CHECK(all.compute(o) == 500);
  CHECK(cb->starts == 1);
  CHECK(cb->finishes == 1);
  CHECK(cb->announced == stats.tasks_run);
  CHECK(cb->started == static_cast<int>(stats.tasks_run));
  CHECK(cb->finished == static_cast<int>(stats.tasks_run));
  CHECK(cb->failed == 0);
  CHECK(cb->max_thread < cb->nthreads);
  CHECK(cb->nthreads == (kind == weft::SchedulerKind::sync ? 1u : 4u));
}

TEST_CASE("a failing task is reported to callbacks as failed", "[scheduler][callbacks][errors]") {
  auto cb = std::make_shared<CountingCallback>();
  weft::CallbackScope scope(cb);
  auto bad = delayed([](int) -> int { throw std::logic_error("no"); })(1);
  CHECK_THROWS_AS(bad.compute(weft::scheduler::threads), weft::TaskError);
  CHECK(cb->failed == 1);
  CHECK(cb->finishes == 1);
}

TEST_CASE("several client threads compute at once", "[scheduler]") {
  std::vector<std::thread> clients;
  std::atomic<int> right{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([c, &right] {
      for (int rep = 0; rep < 5; ++rep) {
        RandomDag dag = random_dag(static_cast<unsigned>(100 + c), 200);
        auto last = dag.tasks.back();
        if (last.compute(weft::scheduler::threads) == dag.expected.back()) ++right;
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(right == 20);
}

TEST_CASE("many small computations in a row", "[scheduler]") {
  // Starts and ends of jobs must not lose wake-ups.
  for (int i = 0; i < 2000; ++i) {
    auto x = delayed([](int v) { return v * 2; })(i);
    REQUIRE(x.compute(with(weft::SchedulerKind::threads, 2)) == 2 * i);
  }
}

TEST_CASE("errors stop the computation without hanging, at any width", "[scheduler][errors]") {
  auto threads = GENERATE(1u, 2u, 8u);
  for (int bad : {0, 999, 5000, 9999}) {
    std::vector<Delayed<int>> xs;
    for (int i = 0; i < 10000; ++i)
      xs.push_back(delayed([](int v, int b) {
        if (v == b) throw std::runtime_error("boom");
        return v;
      })(i, bad));
    auto s = delayed([](std::vector<int> v) { return v.size(); })(xs);
    CHECK_THROWS_AS(s.compute(with(weft::SchedulerKind::threads, threads)), weft::TaskError);
  }
}

TEST_CASE("progress bar and profiler follow a real computation", "[scheduler][diagnostics]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  RandomDag dag = random_dag(11, 400);
  auto all = delayed([](std::vector<std::uint64_t> v) { return v.size(); })(dag.tasks);
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  weft::ComputeStats stats;
  weft::ComputeOptions o = with(kind, 2);
  o.stats = &stats;
  std::vector<weft::diagnostics::TaskRecord> records;
  {
    weft::diagnostics::ProgressBarOptions po;
    po.out = out;
    po.mode = weft::diagnostics::ProgressMode::log;
    weft::diagnostics::ProgressBar bar(po);
    weft::diagnostics::Profiler profiler;
    CHECK(all.compute(o) == 400);
    records = profiler.results();
  }
  std::rewind(out);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, out)) > 0;) text.append(buf, n);
  std::fclose(out);
  const std::string total = std::to_string(stats.tasks_run);
  CHECK_THAT(text, Catch::Matchers::Contains("100% " + total + "/" + total + " tasks, done in"));
  REQUIRE(records.size() == stats.tasks_run);
  std::set<std::string> keys;
  for (const auto& r : records) {
    keys.insert(r.key);
    CHECK(r.start_us <= r.end_us);
    CHECK(r.thread < stats.threads);
    CHECK_FALSE(r.failed);
  }
  CHECK(keys.size() == records.size());
  CHECK(keys.count(all.key().str()) == 1);
}

namespace {

// What the parts of one task saw: the thread of the task, and per part run
// its number and thread.
struct PartLog {
  std::mutex mutex;
  std::condition_variable cv;
  std::thread::id owner;
  std::vector<unsigned> parts;
  std::vector<std::thread::id> threads;
  bool helped() const {
    return std::any_of(threads.begin(), threads.end(), [&](std::thread::id t) { return t != owner; });
  }
};
PartLog* part_log = nullptr;  // tasks travel as plain functions: they find the log here

// A task that offers `count` parts. With `wait_for_help`, the first part to
// run waits (up to 10 s) until another thread has run one, so that an idle
// thread gets its chance on a loaded machine; with `fail_last` the last part throws.
unsigned offer_parts(unsigned count, bool wait_for_help, bool fail_last) {
  {
    std::lock_guard lock(part_log->mutex);
    part_log->owner = std::this_thread::get_id();
  }
  weft::detail::run_parts(count, [&](unsigned p) {
    std::unique_lock lock(part_log->mutex);
    part_log->parts.push_back(p);
    part_log->threads.push_back(std::this_thread::get_id());
    part_log->cv.notify_all();
    if (wait_for_help && part_log->parts.size() == 1)
      part_log->cv.wait_for(lock, std::chrono::seconds(10), [] { return part_log->helped(); });
    lock.unlock();
    if (fail_last && p == count - 1) throw std::runtime_error("part " + std::to_string(p) + " failed");
  });
  return count;
}

std::vector<unsigned> sorted(std::vector<unsigned> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// offer_parts as one task on `kind` with `threads`, its log and the run's stats.
struct OfferRun {
  PartLog log;
  weft::ComputeStats stats;
  unsigned run(weft::SchedulerKind kind, unsigned threads, unsigned count, bool wait_for_help, bool fail_last) {
    part_log = &log;
    weft::ComputeOptions o = with(kind, threads);
    o.stats = &stats;
    return delayed(offer_parts)(count, wait_for_help, fail_last).compute(o);
  }
};

}  // namespace

TEST_CASE("idle threads help a task that offers parts of its work", "[scheduler][help]") {
  OfferRun r;
  CHECK(r.run(weft::SchedulerKind::threads, 2, 8, true, false) == 8u);
  CHECK(sorted(r.log.parts) == std::vector<unsigned>{0, 1, 2, 3, 4, 5, 6, 7});
  REQUIRE(r.log.helped());
  const auto by_helpers = static_cast<std::size_t>(std::count_if(
      r.log.threads.begin(), r.log.threads.end(), [&](std::thread::id t) { return t != r.log.owner; }));
  CHECK(r.stats.parts_helped == by_helpers);
}

TEST_CASE("a part's error fails its task after every part ran; the pool goes on", "[scheduler][help][errors]") {
  OfferRun failing;
  CHECK_THROWS_WITH(failing.run(weft::SchedulerKind::threads, 2, 6, true, true),
                    Catch::Matchers::Contains("part 5 failed"));
  CHECK(sorted(failing.log.parts) == std::vector<unsigned>{0, 1, 2, 3, 4, 5});
  OfferRun again;
  CHECK(again.run(weft::SchedulerKind::threads, 2, 3, false, false) == 3u);
  CHECK(sorted(again.log.parts) == std::vector<unsigned>{0, 1, 2});
}

TEST_CASE("without idle threads the task runs its parts itself, in order", "[scheduler][help]") {
  OfferRun r;
  CHECK(r.run(weft::SchedulerKind::sync, 1, 5, false, false) == 5u);
  CHECK(r.log.parts == std::vector<unsigned>{0, 1, 2, 3, 4});
  CHECK_FALSE(r.log.helped());
  CHECK(r.stats.parts_helped == 0);
}
