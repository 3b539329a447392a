// Graph optimisation before execution: cull, linear fusion, inlining.
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "weft/weft.hpp"

using weft::Delayed;
using weft::delayed;

namespace {

int inc(int x) { return x + 1; }
int add(int a, int b) { return a + b; }
int getitem(std::vector<int> v, int i) { return v.at(static_cast<std::size_t>(i)); }

Delayed<int> chain(int length, int start = 0) {
  Delayed<int> x = delayed(inc)(start);
  for (int i = 1; i < length; ++i) x = delayed(inc)(x);
  return x;
}

weft::ComputeStats run(const Delayed<int>& x, int expect, weft::ComputeOptions o = {}) {
  weft::ComputeStats stats;
  o.stats = &stats;
  CHECK(x.compute(o) == expect);
  return stats;
}

}  // namespace

TEST_CASE("linear chains fuse into one task", "[optimize]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  weft::ComputeOptions o;
  o.scheduler = kind;
  auto x = chain(10);
  auto stats = run(x, 10, o);
  CHECK(stats.tasks_in_graph == 10);
  CHECK(stats.tasks_run == 1);

  o.optimize_graph = false;
  stats = run(x, 10, o);
  CHECK(stats.tasks_run == 10);
}

TEST_CASE("fusion follows config: active and max-height", "[optimize][config]") {
  auto x = chain(10);
  {
    weft::config::set off{{"optimization.fuse.active", false}};
    CHECK(run(x, 10).tasks_run == 10);
  }
  {
    weft::config::set short_chains{{"optimization.fuse.max-height", 4}};
    CHECK(run(x, 10).tasks_run == 3);  // 4 + 4 + 2
  }
}

TEST_CASE("fusion stops where a result has two users or is requested", "[optimize]") {
  // a -> b -> c, and a is also used by d: a stays its own task; b, c fuse.
  auto a = delayed(inc)(0);
  auto b = delayed(inc)(a);
  auto c = delayed(inc)(b);
  auto d = delayed(add)(a, 100);
  weft::ComputeStats stats;
  weft::ComputeOptions o;
  o.stats = &stats;
  auto [rc, rd] = weft::compute(o, c, d);
  CHECK(rc == 3);
  CHECK(rd == 101);
  CHECK(stats.tasks_in_graph == 4);
  CHECK(stats.tasks_run == 3);  // a, (b c), d

  // Requesting the middle of a chain keeps it.
  auto [rb, rc2] = weft::compute(o, b, c);
  CHECK(rb == 2);
  CHECK(rc2 == 3);
  CHECK(stats.tasks_run == 2);  // (a b), c
}

TEST_CASE("cheap tasks are inlined into each of their users", "[optimize]") {
  auto data = delayed([] { return std::vector<int>{10, 20, 30}; })();
  auto pick = delayed(getitem, {.cheap = true});
  auto x = delayed(add)(pick(data, 0), pick(data, 1));
  auto y = delayed(add)(pick(data, 2), 1);
  weft::ComputeStats stats;
  weft::ComputeOptions o;
  o.stats = &stats;
  auto [rx, ry] = weft::compute(o, x, y);
  CHECK(rx == 30);
  CHECK(ry == 31);
  CHECK(stats.tasks_in_graph == 6);
  CHECK(stats.tasks_run == 3);  // data, x (with two getitems), y (with one)
  {
    weft::config::set off{{"optimization.inline.active", false}};
    auto [a, b] = weft::compute(o, x, y);
    CHECK(a == 30);
    CHECK(b == 31);
    // Without inlining, y's getitem still fuses into y (a chain of two).
    CHECK(stats.tasks_run == 5);
  }
}

TEST_CASE("an error inside a fused task names the step that failed", "[optimize][errors]") {
  auto a = delayed(inc)(0);
  auto bad = delayed([](int v) -> int {
    if (v == 1) throw std::domain_error("step two failed");
    return v;
  })(a);
  auto c = delayed(inc)(bad);
  weft::ComputeStats stats;
  weft::ComputeOptions o;
  o.stats = &stats;
  try {
    c.compute(o);
    FAIL("must throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.key() == bad.key().str());
    CHECK(e.original_message() == "step two failed");
  }
  CHECK(stats.tasks_run == 1);
}

TEST_CASE("only what the requested keys need runs (cull)", "[optimize]") {
  std::atomic<int> calls{0};
  auto counted = [&calls](int v) {
    ++calls;
    return v;
  };
  auto a = delayed(counted)(1);
  auto unused = delayed(counted)(2);
  auto b = delayed(add)(a, 1);
  (void)unused;
  CHECK(b.compute() == 2);
  CHECK(calls == 1);
}
