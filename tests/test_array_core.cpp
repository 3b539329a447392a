// Array's core: layers, block tasks, compute/persist/store on the local
// schedulers, assembling blocks, and the errors before any task runs.
#include <catch2/catch.hpp>

#include <numeric>
#include <string>

#include "array/block_inputs.hpp"
#include "weft/array.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;

namespace {

// Block of an array whose element at flat C-order position p is p.
struct IotaSpec {
  wa::Shape shape, offset, block;
  template <class A>
  void serialize(A& a) {
    a(shape, offset, block);
  }
};

wa::NDArray iota_block(const IotaSpec& s) {
  wa::NDArray out(wa::DType::int64, s.block);
  const wa::Strides global = wa::c_strides(s.shape);
  std::int64_t* p = out.data<std::int64_t>();
  std::vector<std::int64_t> at(s.block.size(), 0);
  for (std::int64_t i = 0; i < out.size(); ++i) {
    std::int64_t flat = 0;
    for (std::size_t a = 0; a < at.size(); ++a) flat += (s.offset[a] + at[a]) * global[a];
    p[i] = flat;
    for (std::size_t a = at.size(); a-- > 0;) {
      if (++at[a] < s.block[a]) break;
      at[a] = 0;
    }
  }
  return out;
}

wa::Array iota(wa::Shape shape, wa::Chunks chunks) {
  wa::detail::ArrayMeta meta{"iota", weft::tokenize(shape, chunks), shape, chunks, wa::DType::int64};
  return wa::make_array(meta, [shape, chunks](std::span<const std::int64_t> index, weft::Key key) {
    IotaSpec spec{shape, {}, {}};
    for (std::size_t a = 0; a < index.size(); ++a) {
      const auto offsets = wa::block_offsets(chunks[a]);
      spec.offset.push_back(offsets[static_cast<std::size_t>(index[a])]);
      spec.block.push_back(chunks[a][static_cast<std::size_t>(index[a])]);
    }
    return weft::detail::make_call_task(std::move(key), false, &iota_block, spec);
  });
}

wa::NDArray iota_expected(const wa::Shape& shape) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(wa::shape_size(shape)));
  std::iota(v.begin(), v.end(), 0);
  return wa::NDArray::from(v, shape);
}

}  // namespace

TEST_CASE("an array's blocks compute and assemble on every scheduler", "[array-core]") {
  const auto scheduler = GENERATE(from_range(weft::test::test_schedulers()));
  SECTION("uneven chunks") {
    wa::Array x = iota({10, 7}, {{4, 4, 2}, {3, 3, 1}});
    CHECK(x.numblocks() == std::vector<std::int64_t>{3, 3});
    CHECK(x.npartitions() == 9);
    CHECK(x.compute(scheduler).equals(iota_expected({10, 7})));
  }
  SECTION("size-1 chunks, a 0-d array, an empty array") {
    CHECK(iota({3, 2}, {{1, 1, 1}, {1, 1}}).compute(scheduler).equals(iota_expected({3, 2})));
    wa::NDArray scalar = iota({}, {}).compute(scheduler);
    CHECK(scalar.ndim() == 0);
    CHECK(scalar.item<std::int64_t>() == 0);
    wa::NDArray empty = iota({0, 3}, {{0}, {3}}).compute(scheduler);
    CHECK(empty.shape() == wa::Shape{0, 3});
  }
}

TEST_CASE("block keys are (name-token, i, j) and each block is one task", "[array-core]") {
  wa::Array x = iota({4, 4}, {{2, 2}, {2, 2}});
  CHECK(x.name() == "iota-" + x.token().hex());
  CHECK(x.block_key(std::vector<std::int64_t>{1, 0}).str() == "('" + x.name() + "', 1, 0)");
  CHECK(x.block_task(std::vector<std::int64_t>{1, 1}) == x.block_task(std::vector<std::int64_t>{1, 1}));
  CHECK(x.graph().size() == 4);
  CHECK(wa::to_delayed(x).size() == 4);
  CHECK(x.block({1, 1}).compute().equals(iota_expected({4, 4}).block(std::vector<std::int64_t>{2, 2},
                                                                        std::vector<std::int64_t>{2, 2})));
  CHECK_THROWS_WITH(x.block({2, 0}), Contains("value.bad-index"));
  CHECK_THROWS_WITH(x.block({0}), Contains("value.bad-index"));
}

TEST_CASE("persist keeps the blocks under the same keys", "[array-core]") {
  wa::Array x = iota({5, 3}, {{2, 2, 1}, {3}});
  wa::Array p = x.persist(weft::scheduler::threads);
  CHECK(p.name() == x.name());
  CHECK(p.block_key(std::vector<std::int64_t>{2, 0}) == x.block_key(std::vector<std::int64_t>{2, 0}));
  CHECK(dynamic_cast<const weft::ConstantTask*>(p.block_task(std::vector<std::int64_t>{0, 0}).get()));
  CHECK(p.compute(weft::scheduler::sync).equals(iota_expected({5, 3})));
}

TEST_CASE("compute of several arrays runs one graph", "[array-core]") {
  wa::Array x = iota({6}, {{4, 2}});
  wa::Array y = iota({2, 2}, {{1, 1}, {2}});
  auto [a, b] = weft::compute(x, y);
  CHECK(a.equals(iota_expected({6})));
  CHECK(b.equals(iota_expected({2, 2})));
}

TEST_CASE("store writes blocks into caller memory, converting the dtype", "[array-core]") {
  std::vector<double> memory(12, -1.0);
  wa::NDArray target = wa::NDArray::wrap(memory.data(), {3, 4});
  wa::store(iota({3, 4}, {{2, 1}, {3, 1}}), target, weft::scheduler::threads);
  for (std::size_t i = 0; i < memory.size(); ++i) CHECK(memory[i] == static_cast<double>(i));
  wa::NDArray wrong(wa::DType::float64, {4, 3});
  CHECK_THROWS_WITH(wa::store(iota({3, 4}, {{3}, {4}}), wrong), Contains("value.shape-mismatch"));
}

TEST_CASE("blocks go into the result as their tasks finish and are freed at once", "[array-core]") {
  const auto scheduler = GENERATE(from_range(weft::test::test_schedulers()));
  wa::Array x = iota({400, 3}, {std::vector<std::int64_t>(100, 4), {3}});
  weft::ComputeStats stats;
  weft::ComputeOptions o = scheduler;
  o.stats = &stats;
  o.track_memory = true;
  CHECK(x.compute(o).equals(iota_expected({400, 3})));
  if (scheduler.kind != weft::SchedulerKind::distributed) CHECK(stats.peak_results <= 4);
  std::vector<double> memory(1200, -1.0);
  wa::NDArray target = wa::NDArray::wrap(memory.data(), {400, 3});
  wa::store(x, target, o);
  for (std::size_t i = 0; i < memory.size(); ++i) REQUIRE(memory[i] == static_cast<double>(i));
  if (scheduler.kind != weft::SchedulerKind::distributed) CHECK(stats.peak_results <= 4);
}

TEST_CASE("roots that are asked twice or read by other roots assemble too", "[array-core]") {
  const auto scheduler = GENERATE(from_range(weft::test::test_schedulers()));
  wa::Array x = iota({6, 4}, {{2, 2, 2}, {3, 1}});
  auto [a, b, c] = weft::compute(scheduler, x, x, x + 1);
  CHECK(a.equals(iota_expected({6, 4})));
  CHECK(b.equals(iota_expected({6, 4})));
  std::vector<std::int64_t> plus_one(24);
  std::iota(plus_one.begin(), plus_one.end(), 1);
  CHECK(c.equals(wa::NDArray::from(plus_one, {6, 4})));
  // With a collection that does not assemble, every result is finalized.
  auto [d, n] = weft::compute(scheduler, x, weft::delayed([](int v) { return v * 2; })(21));
  CHECK(d.equals(iota_expected({6, 4})));
  CHECK(n == 42);
}

TEST_CASE("a block that does not fit its chunk fails compute and store by name", "[array-core]") {
  // Block (1) claims 3 rows but its task makes 2.
  const wa::Chunks chunks{{2, 3}};
  wa::detail::ArrayMeta meta{"misfit", weft::tokenize(std::string("misfit")), {5}, chunks, wa::DType::int64};
  wa::Array misfit = wa::make_array(meta, [](std::span<const std::int64_t>, weft::Key key) {
    return weft::detail::make_call_task(std::move(key), false, &iota_block, IotaSpec{{4}, {0}, {2}});
  });
  CHECK_THROWS_WITH(misfit.compute(weft::scheduler::threads), Contains("value.block-mismatch") && Contains("(1,)"));
  wa::NDArray target(wa::DType::int64, {5});
  CHECK_THROWS_WITH(wa::store(misfit, target, weft::scheduler::sync), Contains("does not line up"));
}

TEST_CASE("from_delayed and to_delayed round trip", "[array-core]") {
  wa::Array x = iota({3, 2}, {{3}, {2}});
  wa::Array back = wa::from_delayed(wa::to_delayed(x)[0], {3, 2}, wa::DType::int64);
  CHECK(back.compute().equals(iota_expected({3, 2})));
  wa::Array wrong = wa::from_delayed(wa::to_delayed(x)[0], {2, 3}, wa::DType::int64);
  CHECK_THROWS_WITH(wrong.compute(weft::scheduler::sync), Contains("value.block-mismatch"));
}

TEST_CASE("concatenate_blocks takes sizes from the blocks", "[array-core]") {
  // Unknown chunk sizes along axis 0 (as after boolean indexing).
  wa::NDArray a = iota_expected({2, 3}), b = iota_expected({1, 3});
  std::vector<const wa::NDArray*> blocks{&a, &b};
  wa::NDArray out = wa::concatenate_blocks({{wa::kUnknown, wa::kUnknown}, {3}}, blocks, wa::DType::int64);
  CHECK(out.shape() == wa::Shape{3, 3});
  CHECK(out.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 0, 1, 2});
  wa::NDArray narrow = iota_expected({1, 2});
  std::vector<const wa::NDArray*> misaligned{&a, &narrow};
  CHECK_THROWS_WITH(wa::concatenate_blocks({{2, 1}, {3}}, misaligned, wa::DType::int64),
                    Contains("value.block-mismatch"));
}

TEST_CASE("Axes resolve and an empty handle says so", "[array-core]") {
  CHECK(wa::Axes().resolve(3, "sum") == std::vector<int>{0, 1, 2});
  CHECK(wa::Axes({-1, 0}).resolve(3, "sum") == std::vector<int>{0, 2});
  CHECK_THROWS_WITH(wa::Axes(3).resolve(3, "sum"), Contains("value.bad-axis") && Contains("sum"));
  CHECK_THROWS_WITH(wa::Axes({1, -2}).resolve(3, "sum"), Contains("twice"));
  wa::Array none;
  CHECK(none.empty_handle());
  CHECK_THROWS_WITH(none.shape(), Contains("value.empty-array"));
}
