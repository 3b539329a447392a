// rechunk: the same elements in other blocks, dask's plan through
// intermediate chunkings, and the errors before any task exists.
#include <catch2/catch.hpp>

#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using weft::test::test_schedulers;
using weft::test::signed_ramp;
using weft::test::untouchable;
using Catch::Matchers::Contains;

namespace {

// Checks every block of y (its shape from y's chunks, its elements from
// `want`) and the whole of y on each of test_schedulers().
void check_blocks(const wa::Array& y, const wa::NDArray& want) {
  std::vector<std::vector<std::int64_t>> offsets;
  for (const auto& axis : y.chunks()) offsets.push_back(wa::block_offsets(axis));
  for (const auto& scheduler : test_schedulers()) {
    CHECK(y.compute(scheduler).equals(want));
    std::vector<std::int64_t> grid = y.numblocks(), index(grid.size(), 0);
    for (std::int64_t flat = 0; flat < wa::shape_size(grid); ++flat) {
      wa::Shape start(grid.size());
      for (std::size_t a = 0; a < grid.size(); ++a) start[a] = offsets[a][static_cast<std::size_t>(index[a])];
      const wa::Shape extent = wa::block_shape(y.chunks(), index);
      const wa::NDArray block = y.block(index).compute(scheduler);
      INFO("block " << wa::shape_str(index));
      CHECK(block.shape() == extent);
      CHECK(block.equals(want.block(start, extent)));
      for (std::size_t a = grid.size(); a-- > 0;) {
        if (++index[a] < grid[a]) break;
        index[a] = 0;
      }
    }
  }
}

std::size_t dependency_count(const weft::Graph& g) {
  std::size_t n = 0;
  for (const weft::Key& k : g.keys()) n += g.at(k)->dependencies().size();
  return n;
}

}  // namespace

TEST_CASE("rechunk gives the same elements in the requested blocks", "[array-rechunk]") {
  struct Case {
    wa::Shape shape;
    wa::Chunks from;
    wa::ChunkSpec to;
    wa::Chunks want;
  };
  const Case cases[] = {
      {{7, 5}, {{3, 3, 1}, {2, 2, 1}}, -1, {{7}, {5}}},
      {{7, 5}, {{3, 3, 1}, {2, 2, 1}}, wa::Chunks{{1, 1, 1, 1, 1, 1, 1}, {5}}, {{1, 1, 1, 1, 1, 1, 1}, {5}}},
      {{7, 5}, {{3, 3, 1}, {2, 2, 1}}, wa::Chunks{{4, 3}, {1, 4}}, {{4, 3}, {1, 4}}},
      {{7, 5}, {{3, 3, 1}, {2, 2, 1}}, 2, {{2, 2, 2, 1}, {2, 2, 1}}},
      {{7, 5}, {{7}, {5}}, {-1, 1}, {{7}, {1, 1, 1, 1, 1}}},
      {{7, 5}, {{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}}, {4, 5}, {{4, 3}, {5}}},
      {{10}, {{3, 3, 3, 1}}, 5, {{5, 5}}},
      {{5}, {{2, 0, 3}}, wa::Chunks{{1, 4}}, {{1, 4}}},
      {{5}, {{5}}, wa::Chunks{{2, 0, 3}}, {{2, 0, 3}}},
      {{4, 6, 5}, {{1, 3}, {2, 2, 2}, {5}}, wa::Chunks{{4}, {3, 3}, {2, 3}}, {{4}, {3, 3}, {2, 3}}},
      {{0, 5}, {{0}, {2, 3}}, -1, {{0}, {5}}},
      {{4, 0, 3}, {{2, 2}, {0}, {3}}, wa::Chunks{{1, 3}, {0}, {1, 1, 1}}, {{1, 3}, {0}, {1, 1, 1}}},
  };
  const wa::DType dtypes[] = {wa::DType::float64, wa::DType::int16, wa::DType::bool_, wa::DType::complex64};
  for (const Case& c : cases) {
    for (wa::DType dtype : dtypes) {
      INFO("shape " << wa::shape_str(c.shape) << " from " << wa::chunks_str(c.from) << " as "
                    << wa::dtype_name(dtype));
      const wa::NDArray input = signed_ramp(c.shape, dtype);
      const wa::Array y = wa::rechunk(wa::from_array(input, c.from), c.to);
      REQUIRE(y.chunks() == c.want);
      CHECK(y.dtype() == dtype);
      CHECK(y.shape() == c.shape);
      check_blocks(y, input);
    }
  }
}

TEST_CASE("rechunk with balance spreads the leftover block as dask does", "[array-rechunk]") {
  // The expected chunks are dask 2022.12's x.rechunk(to, balance=True).chunks.
  struct Case {
    wa::Shape shape;
    wa::ChunkSpec to;
    wa::Chunks want;
  };
  const Case cases[] = {
      {{1000}, 400, {{500, 500}}},
      {{100}, 33, {{34, 34, 32}}},
      {{10}, 3, {{4, 4, 2}}},
      {{17}, 5, {{6, 6, 5}}},
      {{9}, 4, {{5, 4}}},
      {{7}, 2, {{3, 3, 1}}},
      {{10}, 1, {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}},
      {{1000, 30}, {400, -1}, {{500, 500}, {30}}},
      {{3}, 2, {{2, 1}}},  // cannot be balanced: dask warns and keeps them
      {{0, 5}, {2, 2}, {{0}, {3, 2}}},  // dask divides by zero on the empty axis; weft keeps it
  };
  for (const Case& c : cases) {
    INFO("shape " << wa::shape_str(c.shape));
    const wa::NDArray input = signed_ramp(c.shape, wa::DType::float64);
    const wa::Array y = wa::rechunk(wa::from_array(input, 1), c.to, {.balance = true});
    REQUIRE(y.chunks() == c.want);
    check_blocks(y, input);
  }
  // Without balance the leftover stays.
  CHECK(wa::rechunk(wa::zeros({1000}, wa::DType::float64, 1), 400).chunks() == wa::Chunks{{400, 400, 200}});
}

TEST_CASE("rechunk to the same chunks is the array itself", "[array-rechunk]") {
  const wa::Array x = wa::from_array(signed_ramp({6, 4}, wa::DType::int32), {4, 3});
  CHECK(wa::rechunk(x, {4, 3}).name() == x.name());
  CHECK(x.rechunk(wa::Chunks{{4, 2}, {3, 1}}).name() == x.name());
  const wa::Array scalar = wa::from_array(wa::NDArray::scalar(2.5));
  CHECK(wa::rechunk(scalar, -1).name() == scalar.name());
  CHECK(wa::rechunk(scalar, -1).compute(weft::scheduler::sync).item<double>() == 2.5);
}

TEST_CASE("rechunk round trips through several chunkings", "[array-rechunk]") {
  const wa::NDArray input = signed_ramp({12, 10}, wa::DType::float32);
  const wa::Array x = wa::from_array(input, wa::Chunks{{5, 5, 2}, {3, 3, 3, 1}});
  const wa::Array there = x.rechunk(1).rechunk({12, -1}).rechunk(wa::Chunks{{7, 5}, {1, 9}});
  const wa::Array back = there.rechunk(wa::Chunks{{5, 5, 2}, {3, 3, 3, 1}});
  CHECK(back.chunks() == x.chunks());
  CHECK(back.name() != x.name());
  check_blocks(back, input);
  // Same inputs, same keys: the graph is deterministic.
  CHECK(x.rechunk(1).name() == x.rechunk(1).name());
}

TEST_CASE("plan_rechunk ports dask's plan", "[array-rechunk]") {
  const std::vector<std::int64_t> tens(10, 10), ones(100, 1);
  const wa::Chunks squares{tens, tens};
  const wa::Chunks columns{{100}, ones};
  const std::size_t mib128 = std::size_t{128} << 20;

  SECTION("close chunkings go directly") {
    const wa::Chunks fives{{20, 20, 20, 20, 20}, {20, 20, 20, 20, 20}};
    CHECK(wa::plan_rechunk(squares, fives, 8, 4.0, mib128) == std::vector<wa::Chunks>{fives});
    CHECK(wa::plan_rechunk(squares, squares, 8, 4.0, mib128) == std::vector<wa::Chunks>{squares});
    const wa::Chunks flat{tens};
    CHECK(wa::plan_rechunk(flat, wa::Chunks{{100}}, 8, 4.0, 1) == std::vector<wa::Chunks>{wa::Chunks{{100}}});
  }
  SECTION("rows to columns first merges the axis the target does not cut") {
    // 10 x 109 pieces directly against 4 x (100 + 100) blocks: dask merges axis 0.
    CHECK(wa::estimate_graph_size(squares, columns) == 1090);
    const wa::Chunks merged{{100}, tens};
    CHECK(wa::plan_rechunk(squares, columns, 8, 4.0, mib128) == std::vector<wa::Chunks>{merged, columns});
    // A threshold that allows the direct rechunk.
    CHECK(wa::plan_rechunk(squares, columns, 8, 10.0, mib128) == std::vector<wa::Chunks>{columns});
  }
  SECTION("the block size limit stops the merge part of the way") {
    // 2000 bytes are 250 float64: axis 0 merges into blocks of 25 rows.
    const wa::Chunks partly{{25, 25, 25, 25}, tens};
    CHECK(wa::plan_rechunk(squares, columns, 8, 4.0, 2000) == std::vector<wa::Chunks>{partly, columns});
  }
  SECTION("a limit below the blocks that exist is raised to them") {
    const auto plan = wa::plan_rechunk(squares, columns, 8, 4.0, 8);
    REQUIRE_FALSE(plan.empty());
    CHECK(plan.back() == columns);
    for (const wa::Chunks& step : plan)
      for (std::size_t a = 0; a < step.size(); ++a)
        CHECK(std::accumulate(step[a].begin(), step[a].end(), std::int64_t{0}) == 100);
  }
}

TEST_CASE("rechunk from squares to columns bounds its tasks", "[array-rechunk]") {
  const wa::NDArray input = signed_ramp({100, 100}, wa::DType::float64);
  const wa::Array x = wa::from_array(input, 10);
  const std::size_t input_tasks = 100;

  const wa::Array planned = wa::rechunk(x, {100, 1});
  REQUIRE(planned.chunks() == wa::Chunks{{100}, std::vector<std::int64_t>(100, 1)});
  const weft::Graph g = planned.graph();
  // 10 merged blocks of (100, 10), then 100 views of them.
  CHECK(g.size() == input_tasks + 10 + 100);
  CHECK(dependency_count(g) == 10 * 10 + 100);
  CHECK(dependency_count(g) < static_cast<std::size_t>(wa::estimate_graph_size(x.chunks(), planned.chunks())));
  check_blocks(planned, input);

  const wa::Array direct = wa::rechunk(x, {100, 1}, {.threshold = 100.0});
  CHECK(direct.graph().size() == input_tasks + 100);
  CHECK(dependency_count(direct.graph()) == 100 * 10);
  CHECK(direct.compute(weft::scheduler::threads).equals(input));

  // A 2000-byte limit: blocks of (25, 10) first.
  const wa::Array limited = wa::rechunk(x, {100, 1}, {.block_size_limit = 2000});
  CHECK(limited.graph().size() == input_tasks + 4 * 10 + 100);
  check_blocks(limited, input);
}

TEST_CASE("rechunk errors come before any task", "[array-rechunk]") {
  const wa::Array x = untouchable({7, 5}, {{3, 3, 1}, {2, 2, 1}});
  const auto fails_with = [&](const wa::ChunkSpec& spec, const std::string& id) {
    try {
      wa::rechunk(x, spec);
      FAIL("no error");
    } catch (const weft::ValueError& e) {
      CHECK(e.id() == id);
      CHECK_THAT(e.what(), Contains("rechunk"));
    }
  };
  fails_with(wa::Chunks{{3, 3}, {5}}, "value.bad-chunks");
  fails_with(wa::ChunkSpec{2, 2, 2}, "value.bad-chunks");
  fails_with(wa::Chunks{{7}, {6, -1}}, "value.bad-chunks");

  const wa::Array unknown = untouchable({wa::kUnknown, 5}, {{wa::kUnknown, wa::kUnknown}, {5}});
  try {
    wa::rechunk(unknown, -1);
    FAIL("no error");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.unknown-chunks");
  }
}
