// Partitioned collective steps end to end (weft/collective.hpp): Catch2 cases
// run by the client (rank 0) inside weft::main while the other ranks serve.
// Run by tests/mpi/partitioned_collective.sh without a launcher and on 1 to 4
// ranks; every case holds on all of them (one rank: local threads, one call).
#define CATCH_CONFIG_RUNNER
// weft handles SIGTERM itself (a clean stop of every rank).
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "weft/array.hpp"
#include "weft/weft.hpp"

namespace {

using weft::mpi_test::client;

bool distributed() { return client().nworkers() > 0; }

// Blocks decoded in this process: a block that moved between ranks was.
std::atomic<long> blocks_decoded{0};

struct Block {
  std::vector<double> data;
  int made_on = -1;  // weft::rank() of the rank that computed it
  template <class A>
  void save(A& ar) const {
    ar(data, made_on);
  }
  template <class A>
  void load(A& ar) {
    ++blocks_decoded;
    ar(data, made_on);
  }
};

Block make_block(long i) {
  return Block{std::vector<double>(static_cast<std::size_t>(100 + i), static_cast<double>(i)), weft::rank()};
}
double block_sum(const Block& b) { return std::accumulate(b.data.begin(), b.data.end(), 0.0); }
long decoded_here() { return blocks_decoded.load(); }

// What one rank of a step saw.
struct Seen {
  int rank = 0;                    // in ctx.comm
  int weft_rank = 0;
  std::vector<std::size_t> index;  // mine.index
  std::vector<int> owner;          // mine.owner
  double total = 0;                // the sum of every part times `scale`, by MPI_Allreduce
  int foreign = 0;                 // values here that another rank computed
  template <class A>
  void serialize(A& ar) {
    ar(rank, weft_rank, index, owner, total, foreign);
  }
};

Seen survey(const weft::CollectiveContext& ctx, const weft::LocalParts<Block>& mine, double scale) {
  Seen s{ctx.rank, weft::rank(), mine.index, mine.owner, 0, 0};
  double local = 0;
  for (const Block* b : mine.values) {
    local += block_sum(*b);
    if (b->made_on != weft::rank()) ++s.foreign;
  }
  local *= scale;
  s.total = local;
  if (ctx.comm != MPI_COMM_NULL) MPI_Allreduce(&local, &s.total, 1, MPI_DOUBLE, MPI_SUM, ctx.comm);
  return s;
}

// Every rank's view is consistent: the same owners everywhere, each part on
// exactly one rank (its owner), the reference total everywhere.
void check_views(const std::vector<Seen>& seen, std::size_t nparts, double reference) {
  const std::size_t n = static_cast<std::size_t>(std::max(client().nworkers(), 1));
  REQUIRE(seen.size() == n);
  std::vector<int> times_seen(nparts, 0);
  for (std::size_t r = 0; r < n; ++r) {
    CHECK(seen[r].rank == static_cast<int>(r));
    CHECK(seen[r].owner == seen[0].owner);
    REQUIRE(seen[r].owner.size() == nparts);
    CHECK(std::is_sorted(seen[r].index.begin(), seen[r].index.end()));
    for (std::size_t i : seen[r].index) {
      REQUIRE(i < nparts);
      ++times_seen[i];
      CHECK(seen[r].owner[i] == static_cast<int>(r));
    }
    CHECK(seen[r].total == reference);
    CHECK(seen[r].foreign == 0);
  }
  CHECK(times_seen == std::vector<int>(nparts, 1));
}

}  // namespace

TEST_CASE("each worker rank reads exactly the parts it holds, and no part moves", "[partitioned-collective]") {
  const int n = std::max(client().nworkers(), 1);
  // 12 parts placed round-robin, scrambled, by worker restrictions.
  std::vector<weft::Future<Block>> parts;
  double reference = 0;
  for (long i = 0; i < 12; ++i) {
    weft::SubmitOptions where;
    if (distributed()) where.worker = 1 + static_cast<int>((i * 7) % n);
    parts.push_back(client().submit(where, make_block, i));
    reference += static_cast<double>(i * (100 + i));
  }
  client().gather(client().map(block_sum, parts));  // the parts are there; the sums read them in place
  auto holders = client().who_has(parts);
  const std::vector<long> decoded_before = client().run(decoded_here);

  // An extra argument (a future here) reaches every rank whole.
  auto scale = client().submit([](double x) { return x; }, 0.5);
  std::vector<Seen> seen = weft::partitioned_collective(survey)(parts, scale).compute();
  check_views(seen, parts.size(), reference * 0.5);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::vector<int>& has = holders.at(parts[i].key().str());
    const int expected = distributed() ? has.at(0) - 1 : 0;  // worker rank w + 1 is rank w of ctx.comm
    CHECK(seen[0].owner[i] == expected);
    if (distributed()) CHECK(has.at(0) == 1 + static_cast<int>((static_cast<long>(i) * 7) % n));
  }
  // Nothing was fetched: no worker decoded a block.
  CHECK(client().run(decoded_here) == decoded_before);

  // The same parts through a plain collective step do move (each worker gets
  // all of them): the counter above would have seen a transfer.
  auto everything = [](const weft::CollectiveContext&, const std::vector<Block>& all) { return all.size(); };
  for (std::size_t count : weft::collective(everything)(parts).compute()) CHECK(count == parts.size());
  const std::vector<long> decoded_after = client().run(decoded_here);
  if (n > 1) {
    long moved = 0;
    for (std::size_t r = 0; r < decoded_after.size(); ++r) moved += decoded_after[r] - decoded_before[r];
    CHECK(moved == 12L * (n - 1));
  }
}

TEST_CASE("the blocks of an array: each owned by the rank that computed it", "[partitioned-collective]") {
  namespace wa = weft::array;
  wa::Array x = wa::arange(0, 60, 1, wa::DType::float64, 5);
  std::vector<weft::Delayed<wa::NDArray>> blocks = wa::to_delayed(x + 1.0);
  REQUIRE(blocks.size() == 12);
  auto sum_mine = [](const weft::CollectiveContext& ctx, const weft::LocalParts<wa::NDArray>& mine) {
    double local = 0;
    for (const wa::NDArray* b : mine.values)
      for (std::int64_t k = 0; k < b->size(); ++k) local += b->data<double>()[k];
    double total = local;
    if (ctx.comm != MPI_COMM_NULL) MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, ctx.comm);
    return std::vector<double>{total, static_cast<double>(mine.index.size()), static_cast<double>(mine.total())};
  };
  std::vector<std::vector<double>> per_rank = weft::partitioned_collective(sum_mine)(blocks).compute();
  REQUIRE(per_rank.size() == static_cast<std::size_t>(std::max(client().nworkers(), 1)));
  double owned = 0;
  for (const std::vector<double>& r : per_rank) {
    CHECK(r[0] == 60.0 * 61.0 / 2);  // 1 + ... + 60, on every rank
    CHECK(r[2] == 12.0);
    owned += r[1];
  }
  CHECK(owned == 12.0);  // each block on exactly one rank
}

// Each part on exactly one rank; returns the sum of the parts' elements.
template <class P>
double sum_once(const std::vector<P>& parts) {
  auto where = [](const weft::CollectiveContext& ctx, const weft::LocalParts<Block>& mine) {
    Seen s{ctx.rank, weft::rank(), mine.index, mine.owner, 0, 0};
    for (const Block* b : mine.values) s.total += block_sum(*b);
    return s;
  };
  std::vector<Seen> seen = weft::partitioned_collective(where)(parts).compute();
  REQUIRE(seen.size() == static_cast<std::size_t>(std::max(client().nworkers(), 1)));
  std::vector<int> times_seen(parts.size(), 0);
  double total = 0;
  for (const Seen& s : seen) {
    CHECK(s.owner == seen[0].owner);
    for (std::size_t i : s.index) ++times_seen[i];
    total += s.total;
  }
  CHECK(times_seen == std::vector<int>(parts.size(), 1));
  return total;
}

TEST_CASE("a part held by several workers, or computed in the step's graph, reaches exactly one rank",
          "[partitioned-collective]") {
  // Scattered to every worker: one copy counts.
  weft::ScatterOptions everywhere;
  everywhere.broadcast = true;
  std::vector<weft::Future<Block>> futures{client().scatter(Block{{1, 2, 3}, -1}, everywhere),
                                           client().scatter(Block{{4}, -1})};
  CHECK(sum_once(futures) == 10.0);
  // A literal value and a cheap task (which the planner would otherwise
  // compute inside the step, so on every rank), in the step's own graph.
  std::vector<weft::Delayed<Block>> parts{
      weft::delayed(Block{{10, 20}, -1}),
      weft::delayed([](long i) { return Block{{static_cast<double>(i)}, -1}; }, {.cheap = true})(100L),
      weft::delayed(make_block)(1L)};
  CHECK(sum_once(parts) == 30.0 + 100.0 + 101.0);
}

TEST_CASE("a partitioned step that throws on one rank fails on all; the cluster goes on", "[partitioned-collective]") {
  std::vector<weft::Delayed<Block>> parts;
  for (long i = 0; i < 6; ++i) parts.push_back(weft::delayed(make_block)(i));
  auto refuse_last = [](const weft::CollectiveContext& ctx, const weft::LocalParts<Block>& mine) {
    if (ctx.rank == ctx.size - 1) throw std::runtime_error("the last rank refuses its " + std::to_string(mine.index.size()) + " parts");
    return ctx.rank;
  };
  try {
    weft::partitioned_collective(refuse_last)(parts).compute();
    FAIL("compute() should throw");
  } catch (const weft::TaskError& e) {
    CHECK(e.original_message().find("the last rank refuses its") != std::string::npos);
  }
  // The same parts in a step that works, and ordinary work.
  std::vector<Seen> seen = weft::partitioned_collective(survey)(parts, 1.0).compute();
  check_views(seen, parts.size(), 101.0 + 2 * 102.0 + 3 * 103.0 + 4 * 104.0 + 5 * 105.0);  // i * (100 + i)
  CHECK(client().submit(block_sum, client().submit(make_block, 2L)).result() == 204.0);
}

// Run by partitioned_collective.sh alone, with workers whose data store
// spills everything beyond a few kilobytes.
TEST_CASE("spilled parts are read back where they are, not fetched", "[.spill]") {
  REQUIRE(distributed());
  const int n = client().nworkers();
  std::vector<weft::Future<Block>> parts;
  double reference = 0;
  for (long i = 0; i < 12; ++i) {
    parts.push_back(client().submit(weft::SubmitOptions{.worker = 1 + static_cast<int>(i % n)}, make_block, 1000 + i));
    reference += static_cast<double>((1000 + i) * (1100 + i));
  }
  weft::wait(parts);
  const std::vector<long> decoded_before = client().run(decoded_here);
  std::vector<Seen> seen = weft::partitioned_collective(survey)(parts, 1.0).compute();
  check_views(seen, parts.size(), reference);  // foreign == 0: every value was made where it was read
  // Decoded here, yet made here: read back from the spill files.
  const std::vector<long> decoded_after = client().run(decoded_here);
  for (std::size_t r = 0; r < decoded_after.size(); ++r) CHECK(decoded_after[r] > decoded_before[r]);
}

int main(int argc, char** argv) {
  return weft::mpi_test::run_catch_session(argc, argv, "partitioned-collective-test");
}
