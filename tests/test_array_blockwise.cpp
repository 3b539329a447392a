// map_blocks and blockwise against NumPy: broadcasting, drop_axis and
// new_axis, contractions (lists and concatenation), the block's index,
// adjusted chunks, dtype inference; errors before tasks and block mismatches.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/blockwise.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;
using Catch::Matchers::Matches;
using weft::test::chunked;
using weft::test::sample;

namespace {

/// x * 2 for a float64 block.
wa::NDArray twice(const wa::NDArray& x) {
  wa::NDArray out = x.copy();
  for (double& v : std::span(out.data<double>(), static_cast<std::size_t>(out.size()))) v *= 2;
  return out;
}

/// x + y, y broadcast to x's shape.
wa::NDArray add(const wa::NDArray& x, const wa::NDArray& y) {
  wa::NDArray out = x.copy();
  const wa::NDArray yb = y.broadcast_to(x.shape()).copy();
  for (std::int64_t i = 0; i < out.size(); ++i) out.data<double>()[i] += yb.data<double>()[i];
  return out;
}

/// The sum over axis 1 of a 2-d float64 block.
wa::NDArray row_sums(const wa::NDArray& x) {
  const wa::NDArray c = x.contiguous();
  wa::NDArray out(wa::DType::float64, {x.shape()[0]}, 0.0);
  for (std::int64_t i = 0; i < x.shape()[0]; ++i)
    for (std::int64_t j = 0; j < x.shape()[1]; ++j) out.data<double>()[i] += c.data<double>()[i * x.shape()[1] + j];
  return out;
}

/// The matrix product of two 2-d float64 blocks, accumulated into `out`.
void add_product(wa::NDArray& out, const wa::NDArray& x, const wa::NDArray& y) {
  const wa::NDArray a = x.contiguous(), b = y.contiguous();
  const std::int64_t n = a.shape()[0], k = a.shape()[1], m = b.shape()[1];
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t p = 0; p < k; ++p)
      for (std::int64_t j = 0; j < m; ++j)
        out.data<double>()[i * m + j] += a.data<double>()[i * k + p] * b.data<double>()[p * m + j];
}

wa::NDArray product_of_lists(const std::vector<wa::NDArray>& xs, const std::vector<wa::NDArray>& ys) {
  wa::NDArray out(wa::DType::float64, {xs[0].shape()[0], ys[0].shape()[1]}, 0.0);
  for (std::size_t i = 0; i < xs.size(); ++i) add_product(out, xs[i], ys[i]);
  return out;
}

wa::NDArray product(const wa::NDArray& x, const wa::NDArray& y) { return product_of_lists({x}, {y}); }

void check_both(const wa::Array& got, const wa::NDArray& want, const std::string& what) {
  for (const auto scheduler : weft::test::test_schedulers())
    weft::test::check_close(got.compute(scheduler), want, 1e-10, 1e-12, true,
                            what + " on " + std::string(weft::to_string(scheduler.kind)));
}

}  // namespace

TEST_CASE("map_blocks over one and several arrays", "[array-blockwise]") {
  const wa::NDArray x = sample(wa::DType::float64, {7, 5}, 1);
  const wa::NDArray y = sample(wa::DType::float64, {5}, 2);
  const wa::NDArray col = sample(wa::DType::float64, {7, 1}, 3);
  const wa::Array xa = chunked(x, {{3, 3, 1}, {2, 3}});
  const auto want = weft::test::numpy("out = [x * 2, x + y, x + col, x * 2 * 3, x.sum(axis=1), np.stack([x] * 3, axis=1), "
                                      "(x * 2).astype(np.float32)]",
                                      {{"x", x}, {"y", y}, {"col", col}});
  check_both(wa::map_blocks(&twice, xa), want[0], "twice");
  // y's blocks are rechunked to x's along the shared axis.
  check_both(wa::map_blocks(&add, {xa, chunked(y, {{5}})}), want[1], "x + y");
  check_both(wa::map_blocks(&add, {xa, chunked(col, {{3, 4}, {1}})}), want[2], "x + col (broadcast)");
  // A lambda capturing a number: its bytes travel with the task.
  const double factor = 3;
  check_both(wa::map_blocks(
                 [factor](const wa::NDArray& b) {
                   wa::NDArray out = twice(b);
                   for (std::int64_t i = 0; i < out.size(); ++i) out.data<double>()[i] *= factor;
                   return out;
                 },
                 xa),
             want[3], "captured factor");
  // drop_axis: blocks along axis 1 arrive concatenated.
  const wa::Array sums = wa::map_blocks(&row_sums, xa, {.drop_axis = {1}});
  CHECK(sums.chunks() == wa::Chunks{{3, 3, 1}});
  check_both(sums, want[4], "drop_axis");
  // new_axis with declared chunks.
  const wa::Array stacked = wa::map_blocks(
      [](const wa::NDArray& b) {
        wa::NDArray out(wa::DType::float64, {b.shape()[0], 3, b.shape()[1]});
        for (std::int64_t r = 0; r < 3; ++r) out.slice(1, r, r + 1).assign(b.reshape({b.shape()[0], 1, b.shape()[1]}));
        return out;
      },
      xa, {.chunks = wa::Chunks{{3, 3, 1}, {3}, {2, 3}}, .new_axis = {1}});
  CHECK(stacked.shape() == wa::Shape{7, 3, 5});
  check_both(stacked, want[5], "new_axis");
  // dtype learnt from f on empty blocks.
  const wa::Array narrowed = wa::map_blocks([](const wa::NDArray& b) { return twice(b).astype(wa::DType::float32); }, xa);
  CHECK(narrowed.dtype() == wa::DType::float32);
  check_both(narrowed, want[6], "inferred dtype");
  // Block tasks of function pointers and lambdas can travel to other ranks.
  std::vector<std::byte> bytes;
  CHECK_NOTHROW(weft::detail::encode_task(*sums.block_task(std::vector<std::int64_t>{0}), bytes));
  CHECK_NOTHROW(weft::detail::encode_task(*narrowed.block_task(std::vector<std::int64_t>{0, 0}), bytes));
}

TEST_CASE("map_blocks tells f where its block is", "[array-blockwise]") {
  const wa::Array xa = chunked(sample(wa::DType::float64, {5, 4}), {{2, 2, 1}, {3, 1}});
  const wa::Array ids = wa::map_blocks(
      [](const wa::BlockInfo& info, const wa::NDArray& b) {
        wa::NDArray out(wa::DType::int64, b.shape());
        for (std::int64_t i = 0; i < b.shape()[0]; ++i)
          for (std::int64_t j = 0; j < b.shape()[1]; ++j)
            out.at<std::int64_t>({i, j}) = 100 * info.block_id[0] + 10 * info.block_id[1] +
                                            (info.location[0] + i) * info.shape[1] + info.location[1] + j;
        return out;
      },
      xa, {.dtype = wa::DType::int64});
  std::vector<std::int64_t> want;
  for (std::int64_t i = 0; i < 5; ++i)
    for (std::int64_t j = 0; j < 4; ++j) want.push_back(100 * (i / 2) + 10 * (j / 3) + i * 4 + j);
  for (const auto scheduler : weft::test::test_schedulers())
    CHECK(ids.compute(scheduler).equals(wa::NDArray::from(want, {5, 4})));
}

TEST_CASE("blockwise with index notation", "[array-blockwise]") {
  const wa::NDArray a = sample(wa::DType::float64, {6, 5}, 1);
  const wa::NDArray b = sample(wa::DType::float64, {5, 4}, 2);
  const wa::NDArray u = sample(wa::DType::float64, {6}, 3);
  const wa::NDArray v = sample(wa::DType::float64, {4}, 4);
  const wa::Array aa = chunked(a, {{4, 2}, {2, 2, 1}});
  const wa::Array ba = chunked(b, {{2, 3}, {3, 1}});  // k rechunked to common blocks (2, 2, 1)
  const auto want = weft::test::numpy("out = [a @ b, np.outer(u, v), a.T * 2, np.concatenate([a, a]), np.stack([u] * 2, 1)]",
                                      {{"a", a}, {"b", b}, {"u", u}, {"v", v}});
  // Contraction over k: lists of blocks, or one concatenated block.
  const wa::Array listed = wa::blockwise(&product_of_lists, "ij", {{aa, "ik"}, {ba, "kj"}}, {.dtype = wa::DType::float64});
  CHECK(listed.chunks() == wa::Chunks{{4, 2}, {3, 1}});
  check_both(listed, want[0], "contraction over lists");
  check_both(wa::blockwise(&product, "ij", {{aa, "ik"}, {ba, "kj"}}, {.concatenate = true}), want[0],
             "contraction, concatenated");
  // Outer product of two vectors.
  check_both(wa::blockwise(
                 [](const wa::NDArray& x, const wa::NDArray& y) {
                   return product(x.reshape({x.shape()[0], 1}), y.reshape({1, y.shape()[0]}));
                 },
                 "ij", {{chunked(u, {{1, 5}}), "i"}, {chunked(v, {{2, 2}}), "j"}}),
             want[1], "outer");
  // Transpose: the block grid and each block.
  const wa::Array t = wa::blockwise([](const wa::NDArray& x) { return twice(x.transpose(std::vector<int>{1, 0})); }, "ji",
                                    {{aa, "ij"}});
  CHECK(t.chunks() == wa::Chunks{{2, 2, 1}, {4, 2}});
  check_both(t, want[2], "transpose");
  // adjust_chunks as a function of the old size.
  const wa::Array doubled = wa::blockwise(
      [](const wa::NDArray& x) {
        const std::vector<const wa::NDArray*> both{&x, &x};
        return wa::concatenate_blocks({{x.shape()[0], x.shape()[0]}, {x.shape()[1]}}, both, x.dtype());
      },
      "ij", {{aa, "ij"}}, {.adjust_chunks = {{'i', std::function<std::int64_t(std::int64_t)>([](std::int64_t n) { return 2 * n; })}}});
  CHECK(doubled.chunks() == wa::Chunks{{8, 4}, {2, 2, 1}});
  const auto want_doubled = weft::test::numpy(
      "out = np.concatenate([np.concatenate([a[:4], a[:4]]), np.concatenate([a[4:], a[4:]])])", {{"a", a}});
  check_both(doubled, want_doubled[0], "adjust_chunks");
  // new_axes in two blocks.
  const wa::Array widened = wa::blockwise(
      [](const wa::NDArray& x) {
        wa::NDArray out(wa::DType::float64, {x.shape()[0], 1});
        out.assign(x.reshape({x.shape()[0], 1}));
        return out;
      },
      "iz", {{chunked(u, {{4, 2}}), "i"}}, {.new_axes = {{'z', {1, 1}}}});
  CHECK(widened.chunks() == wa::Chunks{{4, 2}, {1, 1}});
  check_both(widened, want[4], "new_axes");
}

TEST_CASE("blockwise and map_blocks check before tasks and per block", "[array-blockwise]") {
  const wa::Array xa = chunked(sample(wa::DType::float64, {6, 5}), {{3, 3}, {5}});
  const wa::Array ya = chunked(sample(wa::DType::float64, {4, 5}), {{4}, {5}});
  CHECK_THROWS_WITH(wa::blockwise(&add, "ij", {{xa, "ij"}, {ya, "ij"}}),
                    Contains("[weft.value.shape-mismatch] blockwise: index 'i'"));
  CHECK_THROWS_WITH(wa::map_blocks(&add, {xa, ya}), Contains("[weft.value.shape-mismatch] map_blocks"));
  CHECK_THROWS_WITH(wa::blockwise(&twice, "ij", {{xa, "i"}}), Contains("[weft.value.bad-index-notation]"));
  CHECK_THROWS_WITH(wa::blockwise(&twice, "ii", {{xa, "ij"}}), Contains("twice"));
  CHECK_THROWS_WITH(wa::blockwise(&twice, "iz", {{xa, "ij"}}), Contains("[weft.value.bad-index-notation]"));
  CHECK_THROWS_WITH(wa::blockwise(&twice, "i", {{xa, "ij"}}), Contains("[weft.type.bad-block-function]"));
  CHECK_THROWS_WITH(wa::blockwise(&add, "ij", {{xa, "ij"}}), Contains("[weft.type.bad-block-function]"));
  CHECK_THROWS_WITH(wa::blockwise(&twice, "ij", {{xa, "ij"}}, {.adjust_chunks = {{'i', std::vector<std::int64_t>{1, 2, 3}}}}),
                    Contains("[weft.value.bad-chunks]"));
  CHECK_THROWS_WITH(wa::map_blocks(&twice, xa, {.chunks = wa::Chunks{{3}}}), Contains("[weft.value.bad-chunks]"));
  CHECK_THROWS_WITH(wa::map_blocks(&twice, xa, {.drop_axis = {2}}), Contains("[weft.value.bad-axis]"));
  CHECK_THROWS_WITH(wa::map_blocks(&twice, xa, {.new_axis = {-4}}), Contains("[weft.value.bad-axis]"));
  CHECK_THROWS_WITH(wa::map_blocks(&twice, std::vector<wa::Array>{}), Contains("[weft.value.no-arrays]"));

  // A block that is not what was declared fails its task, naming the block.
  const wa::Array wrong = wa::map_blocks(&row_sums, xa);  // keeps 2 axes as declared
  const wa::Array wrong_dtype = wa::map_blocks(&twice, xa, {.dtype = wa::DType::float32});
  for (const wa::Array* bad : {&wrong, &wrong_dtype})
    for (const auto scheduler : weft::test::test_schedulers()) {
      try {
        bad->compute(scheduler);
        FAIL("no error");
      } catch (const weft::TaskError& e) {
        // Every block is wrong; on the distributed scheduler any may fail first.
        CHECK_THAT(e.original_message(), Matches(R"(\[weft\.value\.block-mismatch\] map_blocks: block \(\d, 0\) of map_blocks-[\s\S]*)"));
      }
    }
}
