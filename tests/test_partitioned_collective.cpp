// Partitioned collective steps on the local schedulers (weft/collective.hpp):
// one rank that owns every part. The distributed cases are in
// tests/mpi/partitioned_collective_test.cpp.
#include <catch2/catch.hpp>

#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "weft/weft.hpp"

namespace {

std::vector<double> block(long i) { return std::vector<double>(static_cast<std::size_t>(i + 1), static_cast<double>(i)); }
std::vector<double> doubled(const std::vector<double>& v) {
  std::vector<double> out(v);
  for (double& x : out) x *= 2;
  return out;
}

struct Seen {
  int rank, size;
  bool null_comm;
  std::vector<std::size_t> index;
  std::vector<int> owner;
  double sum;
};

// What the step saw, and the sum of its parts times `scale`.
Seen look(const weft::CollectiveContext& ctx, const weft::LocalParts<std::vector<double>>& mine, double scale) {
  double sum = 0;
  for (const std::vector<double>* v : mine.values) sum += std::accumulate(v->begin(), v->end(), 0.0);
  return {ctx.rank, ctx.size, ctx.comm == MPI_COMM_NULL, mine.index, mine.owner, sum * scale};
}

}  // namespace

TEST_CASE("a partitioned collective step runs once locally, owning every part", "[partitioned-collective]") {
  auto kind = GENERATE(weft::SchedulerKind::sync, weft::SchedulerKind::threads);
  weft::ComputeOptions o;
  o.scheduler = kind;
  std::vector<weft::Delayed<std::vector<double>>> parts;
  double expected = 0;
  for (long i = 0; i < 6; ++i) {
    parts.push_back(weft::delayed(block)(i));
    expected += static_cast<double>(i * (i + 1));
  }
  // An extra argument reaches the step whole; it may be a task's result too.
  auto scale = weft::delayed([](double x) { return x; })(0.5);
  std::vector<Seen> seen = weft::partitioned_collective(look)(parts, scale).compute(o);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].rank == 0);
  CHECK(seen[0].size == 1);
  CHECK(seen[0].null_comm);
  CHECK(seen[0].index == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
  CHECK(seen[0].owner == std::vector<int>(6, 0));
  CHECK(seen[0].sum == expected * 0.5);

  // No parts: an empty selection, still one call.
  seen = weft::partitioned_collective(look)(std::vector<weft::Delayed<std::vector<double>>>{}, 1.0).compute(o);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].index.empty());
  CHECK(seen[0].owner.empty());
}

TEST_CASE("a partitioned collective step's key depends on its parts and arguments", "[partitioned-collective]") {
  std::vector<weft::Delayed<std::vector<double>>> a{weft::delayed(block)(1), weft::delayed(block)(2)};
  std::vector<weft::Delayed<std::vector<double>>> b{weft::delayed(block)(2), weft::delayed(block)(1)};
  auto step = weft::partitioned_collective(look);
  CHECK(step(a, 1.0).key() == step(a, 1.0).key());
  CHECK(step(a, 1.0).key() != step(b, 1.0).key());
  CHECK(step(a, 1.0).key() != step(a, 2.0).key());
  // Not the key of a plain collective step over the same arguments.
  auto plain = [](const weft::CollectiveContext&, const std::vector<std::vector<double>>&, double) { return 0; };
  CHECK(weft::partitioned_collective(look, {.name = "same"})(a, 1.0).key() !=
        weft::collective(plain, {.name = "same"})(a, 1.0).key());
}

TEST_CASE("a cheap part stays a task of its own, never inlined into a partitioned step", "[partitioned-collective]") {
  // Inlined, every worker rank would compute the part: it must have one holder.
  auto cheap_part = weft::delayed(doubled, {.cheap = true})(std::vector<double>{1, 2});
  weft::ComputeStats stats;
  weft::ComputeOptions o;
  o.stats = &stats;
  std::vector<Seen> seen = weft::partitioned_collective(look)(std::vector{cheap_part}, 1.0).compute(o);
  CHECK(seen.at(0).sum == 6.0);
  CHECK(stats.tasks_run == 2);
  // A plain collective step still takes it in (it gives every rank every input anyway).
  auto sum_all = [](const weft::CollectiveContext&, const std::vector<std::vector<double>>& vs) {
    return std::accumulate(vs.at(0).begin(), vs.at(0).end(), 0.0);
  };
  CHECK(weft::collective(sum_all)(std::vector{cheap_part}).compute(o).at(0) == 6.0);
  CHECK(stats.tasks_run == 1);
}

TEST_CASE("a failing partitioned collective step throws a TaskError naming it", "[partitioned-collective]") {
  auto refuse = [](const weft::CollectiveContext&, const weft::LocalParts<std::vector<double>>& mine) -> int {
    if (mine.total() == 2) throw std::invalid_argument("two parts are too many");
    return 0;
  };
  std::vector parts{weft::delayed(block)(1), weft::delayed(block)(2)};
  auto step = weft::partitioned_collective(refuse, {.name = "refuse"})(parts);
  try {
    step.compute();
    FAIL("compute() should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.key() == step.key().str());
    CHECK(e.original_message() == "two parts are too many");
  }
}
