// delayed, compute, persist: values, arguments, keys, errors, schedulers.
#include <catch2/catch.hpp>

#include <array>
#include <cstdlib>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "weft/weft.hpp"

using weft::Delayed;
using weft::delayed;

namespace {

int inc(int x) { return x + 1; }
int add(int a, int b) { return a + b; }
double mean(std::vector<double> xs) {
  double s = 0;
  for (double x : xs) s += x;
  return xs.empty() ? 0 : s / static_cast<double>(xs.size());
}
int fail_on(int x, int bad) {
  if (x == bad) throw std::runtime_error("bad input " + std::to_string(x));
  return x;
}

std::atomic<int> g_calls{0};
int counted_inc(int x) {
  ++g_calls;
  return x + 1;
}

// Records what each computation says when it starts.
struct StartRecorder : weft::Callback {
  std::vector<std::string> schedulers;
  std::vector<unsigned> threads;
  std::atomic<int> tasks{0};
  void start(const weft::ComputeStart& s) override {
    schedulers.emplace_back(s.scheduler);
    threads.push_back(s.nthreads);
  }
  void task_finish(const weft::Key&, unsigned, bool) override { ++tasks; }
};

weft::ComputeOptions on(weft::SchedulerKind kind) {
  weft::ComputeOptions o;
  o.scheduler = kind;
  return o;
}

}  // namespace

TEST_CASE("delayed calls compute on every scheduler", "[delayed]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  auto a = delayed(inc)(1);
  auto b = delayed(inc)(a);
  auto c = delayed(add)(a, b);
  CHECK(c.compute(on(kind)) == 2 + 3);
  CHECK(delayed(inc)(41).compute(on(kind)) == 42);
}

TEST_CASE("arguments may be values, Delayed, or containers and tuples of them", "[delayed]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  std::vector<Delayed<double>> parts;
  for (int i = 0; i < 10; ++i) parts.push_back(delayed([](int v) { return v * 1.0; })(i));
  CHECK(delayed(mean)(parts).compute(on(kind)) == Approx(4.5));

  std::array<Delayed<int>, 3> arr{delayed(inc)(1), delayed(inc)(2), delayed(inc)(3)};
  auto sum3 = delayed([](std::array<int, 3> v) { return v[0] + v[1] + v[2]; })(arr);
  CHECK(sum3.compute(on(kind)) == 2 + 3 + 4);

  auto tup = std::make_tuple(delayed(inc)(10), std::string("x"), 5);
  auto joined = delayed([](std::tuple<int, std::string, int> t) {
    return std::get<1>(t) + std::to_string(std::get<0>(t) + std::get<2>(t));
  })(tup);
  CHECK(joined.compute(on(kind)) == "x16");

  auto pr = std::make_pair(delayed(inc)(0), delayed(inc)(1));
  CHECK(delayed([](std::pair<int, int> p) { return p.first * 10 + p.second; })(pr).compute(on(kind)) == 12);

  // Nested containers of Delayed, and a plain vector argument.
  std::vector<std::vector<Delayed<int>>> nested{{delayed(inc)(0)}, {delayed(inc)(1), delayed(inc)(2)}};
  auto total = delayed([](std::vector<std::vector<int>> v, std::vector<int> extra) {
    int s = 0;
    for (auto& row : v)
      for (int x : row) s += x;
    for (int x : extra) s += x;
    return s;
  })(nested, std::vector<int>{100, 200});
  CHECK(total.compute(on(kind)) == 1 + 2 + 3 + 300);
}

TEST_CASE("delayed keys are names plus deterministic tokens", "[delayed][tokenize]") {
  auto a = delayed(inc)(1);
  CHECK(a.key().str().rfind("inc-", 0) == 0);
  CHECK(a.key() == delayed(inc)(1).key());
  CHECK(a.key() != delayed(inc)(2).key());
  CHECK(a.key() != delayed(counted_inc)(1).key());
  CHECK(delayed(inc, {.name = "load"})(1).key().name() == "load");
  // Keys of dependent calls depend on the keys of their inputs.
  CHECK(delayed(inc)(a).key() == delayed(inc)(delayed(inc)(1)).key());
  CHECK(delayed(inc)(a).key() != delayed(inc)(delayed(inc)(2)).key());
  // Impure calls get a new key every time.
  auto impure = delayed(inc, {.pure = false});
  CHECK(impure(1).key() != impure(1).key());
}

TEST_CASE("equal keys are computed once, shared intermediates once", "[delayed]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  g_calls = 0;
  auto shared = delayed(counted_inc)(1);
  auto x = delayed(add)(shared, 10);
  auto y = delayed(add)(delayed(counted_inc)(1), 20);  // the same key as `shared`
  auto [rx, ry] = weft::compute(on(kind), x, y);
  CHECK(rx == 12);
  CHECK(ry == 22);
  CHECK(g_calls == 1);
  // Asking for the same collection twice gives two results.
  auto [a1, a2] = weft::compute(on(kind), shared, shared);
  CHECK(a1 == 2);
  CHECK(a2 == 2);
}

TEST_CASE("persist keeps results in memory under the same keys", "[delayed]") {
  g_calls = 0;
  auto x = delayed(counted_inc)(5);
  auto px = x.persist();
  CHECK(g_calls == 1);
  CHECK(px.key() == x.key());
  CHECK(delayed(add)(px, px).compute() == 12);
  CHECK(px.compute() == 6);
  CHECK(g_calls == 1);
  auto [p1, p2] = weft::persist(x, delayed(inc)(px));
  CHECK(p2.compute() == 7);
}

TEST_CASE("literals, void results and operators", "[delayed]") {
  auto lit = delayed(21);
  CHECK(lit.key().str().rfind("int-", 0) == 0);
  CHECK(lit.key() == delayed(21).key());
  CHECK(delayed(std::string("hi")).key().name() == "string");
  CHECK((lit * 2).compute() == 42);
  CHECK(delayed(lit).key() == lit.key());  // delayed(d) is d

  std::atomic<int> side{0};
  auto effect = delayed([&side](int v) { side += v; })(3);
  static_assert(std::is_same_v<decltype(effect), Delayed<void>>);
  effect.compute();
  CHECK(side == 3);

  auto a = delayed(inc)(1), b = delayed(inc)(2);
  CHECK((a + b).compute() == 5);
  CHECK((a - b).compute() == -1);
  CHECK((a * 3).compute() == 6);
  CHECK((10.0 / delayed(inc)(3)).compute() == Approx(2.5));
  CHECK((-a).compute() == -2);
  CHECK((a + b).key().name() == "add");
}

TEST_CASE("capturing lambdas run locally", "[delayed]") {
  int offset = 100;
  std::vector<Delayed<int>> xs;
  for (int i = 0; i < 5; ++i) xs.push_back(delayed([offset](int v) { return v + offset; })(i));
  auto s = delayed([](std::vector<int> v) {
    int t = 0;
    for (int x : v) t += x;
    return t;
  })(xs);
  CHECK(s.compute() == 510);
}

TEST_CASE("scheduler choice: per call, scoped config, default", "[delayed][scheduler][config]") {
  auto rec = std::make_shared<StartRecorder>();
  weft::CallbackScope scope(rec);
  auto x = delayed(inc)(1);
  x.compute(weft::scheduler::sync);
  x.compute(weft::scheduler::threads);
  {
    weft::config::set cfg{{"scheduler", "sync"}};
    x.compute();
    weft::config::set inner{{"scheduler", "threading"}};
    x.compute();
    x.compute(weft::scheduler::sync);  // the call beats the config
  }
  x.compute();  // back to the default: threads
  REQUIRE(rec->schedulers.size() == 6);
  CHECK(rec->schedulers == std::vector<std::string>{"sync", "threads", "sync", "threads", "sync", "threads"});
  CHECK(rec->threads[0] == 1);

  weft::ComputeOptions three;
  three.num_workers = 3;
  x.compute(three);
  CHECK(rec->threads.back() == 3);
  {
    weft::config::set cfg{{"num-workers", 2}};
    x.compute();
    CHECK(rec->threads.back() == 2);
  }
  {
    weft::config::set cfg{{"scheduler", "processes"}};
    try {
      x.compute();
      FAIL("an unknown scheduler must be an error");
    } catch (const weft::ConfigError& e) {
      CHECK(e.id() == "config.bad-value");
      CHECK_THAT(e.what(), Catch::Matchers::Contains("'processes'"));
      CHECK_THAT(e.what(), Catch::Matchers::Contains("weft::config::set"));
    }
  }
  CHECK_THROWS_AS(weft::parse_scheduler("processes"), weft::ValueError);
}

TEST_CASE("sync runs every task on the calling thread", "[delayed][scheduler]") {
  const auto caller = std::this_thread::get_id();
  std::vector<Delayed<bool>> same;
  for (int i = 0; i < 50; ++i)
    same.push_back(delayed([caller](int) { return std::this_thread::get_id() == caller; })(i));
  auto all = delayed([](std::vector<bool> v) {
    for (bool b : v)
      if (!b) return false;
    return true;
  })(same);
  CHECK(all.compute(weft::scheduler::sync));
}

TEST_CASE("a task that throws: TaskError naming the key, pool usable afterwards", "[delayed][errors]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  std::vector<Delayed<int>> xs;
  for (int i = 0; i < 200; ++i) xs.push_back(delayed(fail_on)(i, 137));
  auto total = delayed([](std::vector<int> v) {
    int s = 0;
    for (int x : v) s += x;
    return s;
  })(xs);
  try {
    total.compute(on(kind));
    FAIL("compute must throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.id() == "task.failed");
    CHECK(e.key() == xs[137].key().str());
    CHECK(e.original_message() == "bad input 137");
    CHECK_THAT(e.what(), Catch::Matchers::Contains(xs[137].key().str()));
    CHECK_THROWS_AS(e.rethrow_original(), std::runtime_error);
  }
  // The scheduler is fine afterwards, and the same graph without the bad task works.
  std::vector<Delayed<int>> good(xs.begin(), xs.begin() + 100);
  auto ok = delayed([](std::vector<int> v) { return static_cast<int>(v.size()); })(good);
  CHECK(ok.compute(on(kind)) == 100);
}

TEST_CASE("a computation inside a task runs (nested compute)", "[delayed][scheduler]") {
  auto outer = delayed([](int n) {
    std::vector<Delayed<int>> xs;
    for (int i = 0; i < n; ++i) xs.push_back(delayed(inc)(i));
    return delayed([](std::vector<int> v) {
      int s = 0;
      for (int x : v) s += x;
      return s;
    })(xs).compute();
  });
  std::vector<Delayed<int>> many;
  for (int n = 1; n <= 8; ++n) many.push_back(outer(n));
  auto total = delayed([](std::vector<int> v) {
    int s = 0;
    for (int x : v) s += x;
    return s;
  })(many);
  int expect = 0;
  for (int n = 1; n <= 8; ++n) expect += n * (n + 1) / 2;
  CHECK(total.compute(weft::scheduler::threads) == expect);
}

TEST_CASE("to_dot writes a Graphviz picture of the graph", "[delayed][graph]") {
  auto a = delayed(inc)(1);
  auto b = delayed(add)(a, a);
  std::string path = "test_delayed_graph.dot";
  b.to_dot(path);
  std::FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f);
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  std::remove(path.c_str());
  CHECK(text.rfind("digraph", 0) == 0);
  CHECK_THAT(text, Catch::Matchers::Contains(a.key().str()));
  CHECK_THAT(text, Catch::Matchers::Contains(b.key().str()));
  CHECK_THAT(text, Catch::Matchers::Contains("label=\"inc\""));
}

TEST_CASE("the environment chooses the scheduler globally (WEFT_SCHEDULER)", "[delayed][scheduler][config]") {
  auto rec = std::make_shared<StartRecorder>();
  weft::CallbackScope scope(rec);
  ::setenv("WEFT_SCHEDULER", "single-threaded", 1);
  weft::config::refresh();
  delayed(inc)(1).compute();
  ::unsetenv("WEFT_SCHEDULER");
  weft::config::refresh();
  delayed(inc)(1).compute();
  CHECK(rec->schedulers == std::vector<std::string>{"sync", "threads"});
}
