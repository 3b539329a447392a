// Indexing of chunked arrays against NumPy: basic slicing, integer-array
// indices, boolean masks, compute_chunk_sizes, and the errors raised before
// any task exists. Every case runs on each of test_schedulers().
#include <catch2/catch.hpp>

#include <numeric>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array.hpp"
#include "weft/array/indexing.hpp"
#include "weft/detail/task_wire.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;
using wa::_;
using wa::ellipsis;
using wa::newaxis;
using wa::slice;
using Vec = std::vector<std::int64_t>;
constexpr auto None = std::nullopt;

namespace {

/// An array whose blocks are copies of `data`'s blocks (constant tasks).
wa::Array chunked(const wa::NDArray& data, const wa::Chunks& chunks) {
  static std::int64_t made = 0;
  wa::detail::ArrayMeta meta{"test-data", weft::tokenize("test-data", made++), data.shape(), chunks, data.dtype()};
  return wa::make_array(meta, [data, chunks](std::span<const std::int64_t> index, weft::Key key) {
    wa::Shape offset;
    for (std::size_t a = 0; a < index.size(); ++a)
      offset.push_back(wa::block_offsets(chunks[a])[static_cast<std::size_t>(index[a])]);
    const wa::Shape shape = wa::block_shape(chunks, index);
    return weft::literal(std::move(key), data.block(offset, shape).copy());
  });
}

/// 0, 1, 2, ... in `shape`, as T.
template <class T>
wa::NDArray counting(const wa::Shape& shape) {
  std::vector<T> v(static_cast<std::size_t>(wa::shape_size(shape)));
  std::iota(v.begin(), v.end(), T{0});
  return wa::NDArray::from(v, shape);
}

wa::NDArray bools(const std::vector<int>& values, const wa::Shape& shape) {
  std::vector<bool> b(values.begin(), values.end());
  wa::NDArray out(wa::DType::bool_, shape);
  std::copy(b.begin(), b.end(), out.data<bool>());
  return out;
}

struct Case {
  std::vector<wa::IndexItem> index;
  std::string python;  ///< the same index in Python
};

/// The result's metadata says what NumPy's shape is (chunks summing to it, or
/// unknown until compute_chunk_sizes).
void check_metadata(const wa::Array& y, const wa::NDArray& want, const std::string& what) {
  INFO(what << ": chunks " << wa::chunks_str(y.chunks()));
  REQUIRE(y.ndim() == want.ndim());
  const wa::Array known = wa::compute_chunk_sizes(y, weft::scheduler::sync);
  CHECK(!wa::has_unknown(known.chunks()));
  for (int axis = 0; axis < y.ndim(); ++axis) {
    const auto a = static_cast<std::size_t>(axis);
    const auto& sizes = known.chunks()[a];
    CHECK(std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) == want.shape()[a]);
    CHECK(known.shape()[a] == want.shape()[a]);
    CHECK(y.shape()[a] == (wa::has_unknown({y.chunks()[a]}) ? wa::kUnknown : want.shape()[a]));
  }
}

/// Runs x[case] for every case against NumPy's x[python] in one Python call.
void check_cases(const wa::Array& x, const weft::test::NumpyInputs& inputs, const std::vector<Case>& cases) {
  std::string code = "out = [";
  for (const Case& c : cases) code += "np.asarray(x[" + c.python + "]), ";
  code += "]";
  const std::vector<wa::NDArray> want = weft::test::numpy(code, inputs);
  REQUIRE(want.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string what = "x[" + cases[i].python + "] with chunks " + wa::chunks_str(x.chunks());
    const wa::Array y = x[cases[i].index];
    check_metadata(y, want[i], what);
    for (const auto scheduler : weft::test::test_schedulers())
      weft::test::check_close(y.compute(scheduler), want[i], 0, 0, true,
                              what + " (" + std::string(weft::to_string(scheduler.kind)) + ")");
  }
}

template <class E, class F>
void check_error(F&& f, const std::string& id, const std::string& text = "") {
  try {
    f();
    FAIL("no error; expected " << id);
  } catch (const E& e) {
    CHECK(e.id() == id);
    CHECK_THAT(e.text(), Contains(text));
  }
}

}  // namespace

TEST_CASE("basic indexing of 1-d arrays matches NumPy", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const std::vector<Case> cases = {
      {{3}, "3"},
      {{-1}, "-1"},
      {{slice(2, 8)}, "2:8"},
      {{slice(None, None, -1)}, "::-1"},
      {{slice(8, 1, -3)}, "8:1:-3"},
      {{slice(-100, 100)}, "-100:100"},
      {{slice(5, 5)}, "5:5"},
      {{slice(None, None, 2)}, "::2"},
      {{slice(1, None, 4)}, "1::4"},
      {{slice(-2, None, -4)}, "-2::-4"},
      {{slice(100, -100, -1)}, "100:-100:-1"},
      {{slice(7)}, ":7"},
      {{newaxis}, "None"},
      {{ellipsis, newaxis}, "..., None"},
      {{newaxis, slice(3), newaxis}, "None, :3, None"},
      {{ellipsis}, "..."},
      {{_}, ":"},
      {{}, "()"},
  };
  for (const wa::Chunks& chunks : {wa::Chunks{{3, 3, 3, 1}}, wa::Chunks{{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
                                   wa::Chunks{{10}}, wa::Chunks{{4, 0, 6}}})
    check_cases(chunked(data, chunks), {{"x", data}}, cases);

  const wa::NDArray empty = counting<double>({0});
  check_cases(chunked(empty, {{0}}), {{"x", empty}},
              {{{slice(1, 3)}, "1:3"}, {{slice(None, None, -1)}, "::-1"}, {{newaxis}, "None"},
               {{Vec{}}, "np.array([], dtype=np.int64)"}});
}

TEST_CASE("basic indexing of 2-d and 3-d arrays matches NumPy", "[array-indexing]") {
  const wa::NDArray data2 = counting<double>({5, 7});
  const std::vector<Case> cases2 = {
      {{1}, "1"},
      {{1, 2}, "1, 2"},
      {{-1, -7}, "-1, -7"},
      {{_, 3}, ":, 3"},
      {{slice(None, None, -1), slice(1, 6, 2)}, "::-1, 1:6:2"},
      {{newaxis, _, newaxis}, "None, :, None"},
      {{ellipsis, 2}, "..., 2"},
      {{-1, ellipsis}, "-1, ..."},
      {{slice(1, 1)}, "1:1"},
      {{slice(4, None, -2), newaxis, slice(-2, None)}, "4::-2, None, -2:"},
  };
  for (const wa::Chunks& chunks : {wa::Chunks{{2, 2, 1}, {3, 4}}, wa::Chunks{{1, 1, 1, 1, 1}, {7}},
                                   wa::Chunks{{5}, {1, 1, 1, 1, 1, 1, 1}}})
    check_cases(chunked(data2, chunks), {{"x", data2}}, cases2);

  const wa::NDArray data3 = counting<std::int32_t>({4, 3, 5});
  check_cases(chunked(data3, {{3, 1}, {1, 2}, {2, 2, 1}}), {{"x", data3}},
              {
                  {{1, 2, 3}, "1, 2, 3"},
                  {{slice(None, None, -1), slice(None, None, -1), slice(None, None, -1)}, "::-1, ::-1, ::-1"},
                  {{ellipsis, 1, newaxis, slice(None, None, -2)}, "..., 1, None, ::-2"},
                  {{_, 2}, ":, 2"},
                  {{newaxis, 3, slice(1, 3), ellipsis, newaxis}, "None, 3, 1:3, ..., None"},
              });

  const wa::NDArray scalar = wa::NDArray::scalar(2.5);
  check_cases(chunked(scalar, {}), {{"x", scalar}},
              {{{}, "()"}, {{ellipsis}, "..."}, {{newaxis}, "None"}, {{newaxis, ellipsis, newaxis}, "None, ..., None"}});
}

TEST_CASE("basic indexing follows dask's chunk arithmetic and makes views", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const wa::Array x = chunked(data, {{3, 3, 3, 1}});
  CHECK(x[{slice(2, 8)}].chunks() == wa::Chunks{{1, 3, 2}});
  CHECK(x[{slice(None, None, -1)}].chunks() == wa::Chunks{{1, 3, 3, 3}});
  CHECK(x[{slice(8, 1, -3)}].chunks() == wa::Chunks{{1, 1, 1}});
  CHECK(x[{slice(4, 4)}].chunks() == wa::Chunks{{0}});
  CHECK(x[{newaxis, 3}].chunks() == wa::Chunks{{1}});
  CHECK(x[{_}].name() == x.name());  // `:` is x itself

  // A block of a slice shares the memory of the input block.
  const wa::Array y = x[{slice(4, 6)}];
  const auto [in, out] = weft::compute(weft::scheduler::sync, x.block({1}), y.block({0}));
  CHECK(out.raw_data() == static_cast<const double*>(in.raw_data()) + 1);
  CHECK(out.to_vector<double>() == std::vector<double>{4, 5});
}

TEST_CASE("integer-array indexing matches NumPy", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const wa::NDArray lazy_index = wa::NDArray::from<std::int64_t>({3, -1, 0, 0, 7});
  for (const wa::Chunks& chunks : {wa::Chunks{{3, 3, 3, 1}}, wa::Chunks{{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
                                   wa::Chunks{{10}}, wa::Chunks{{4, 0, 6}}}) {
    check_cases(chunked(data, chunks), {{"x", data}, {"i", lazy_index}},
                {
                    {{Vec{4, 0, 4, -1}}, "[4, 0, 4, -1]"},
                    {{Vec{}}, "np.array([], dtype=np.int64)"},
                    {{Vec{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}}, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]"},
                    {{Vec{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, "list(range(10))"},
                    {{wa::NDArray::from<std::int16_t>({-10, 9})}, "np.array([-10, 9], dtype=np.int16)"},
                    {{chunked(lazy_index, {{2, 3}})}, "i"},
                    {{chunked(lazy_index, {{1, 1, 1, 1, 1}})}, "i"},
                });
  }

  const wa::NDArray data2 = counting<double>({5, 7});
  const wa::NDArray columns = wa::NDArray::from<std::int64_t>({6, -1, 0, 3, 3});
  for (const wa::Chunks& chunks : {wa::Chunks{{2, 2, 1}, {3, 4}}, wa::Chunks{{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}})
    check_cases(chunked(data2, chunks), {{"x", data2}, {"i", columns}},
                {
                    {{slice(1, 4), Vec{6, 0, 0}}, "1:4, [6, 0, 0]"},
                    {{Vec{3, 1}, slice(None, None, 2)}, "[3, 1], ::2"},
                    {{2, Vec{0, 6}}, "2, [0, 6]"},
                    {{Vec{0, 4}, 3}, "[0, 4], 3"},
                    {{_, Vec{}}, ":, np.array([], dtype=np.int64)"},
                    {{slice(4, None, -2), newaxis, Vec{-1, -2}}, "4::-2, None, [-1, -2]"},
                    {{_, chunked(columns, {{2, 3}})}, ":, i"},
                    {{-1, chunked(columns, {{5}})}, "-1, i"},
                });

  // NumPy puts the gathered axis first when integers and the array index are
  // apart (an ellipsis or newaxis between them counts).
  const wa::NDArray data3 = counting<std::int32_t>({4, 3, 5});
  const wa::NDArray last = wa::NDArray::from<std::int64_t>({4, 4, 0, -5});
  check_cases(chunked(data3, {{3, 1}, {1, 2}, {2, 2, 1}}), {{"x", data3}, {"i", last}},
              {
                  {{1, _, Vec{4, 0}}, "1, :, [4, 0]"},
                  {{Vec{1, 0}, newaxis, 2}, "[1, 0], None, 2"},
                  {{_, 1, Vec{4, 0}}, ":, 1, [4, 0]"},
                  {{_, 0, ellipsis, Vec{1}}, ":, 0, ..., [1]"},
                  {{_, Vec{0, 2}, ellipsis, 1}, ":, [0, 2], ..., 1"},
                  {{_, _, chunked(last, {{3, 1}})}, ":, :, i"},
                  {{2, _, chunked(last, {{1, 3}})}, "2, :, i"},
              });

  // take (np.take along an axis).
  const wa::Array x3 = chunked(data3, {{3, 1}, {1, 2}, {2, 2, 1}});
  const std::vector<wa::NDArray> want =
      weft::test::numpy("out = [np.take(x, [2, 0], axis=-1), np.take(x, [3, 3, 0], axis=0)]", {{"x", data3}});
  weft::test::check_close(wa::take(x3, Vec{2, 0}, -1).compute(weft::scheduler::threads), want[0]);
  weft::test::check_close(wa::take(x3, Vec{3, 3, 0}).compute(weft::scheduler::sync), want[1]);
}

TEST_CASE("integer-array indexing makes blocks of the average chunk size in index order", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const wa::Array x = chunked(data, {{3, 3, 3, 1}});
  // 10 elements in 4 blocks: pieces of 2 indices.
  CHECK(x[{Vec{4, 0, 4, -1, 5}}].chunks() == wa::Chunks{{2, 2, 1}});
  CHECK(x[{Vec{}}].chunks() == wa::Chunks{{0}});
  const wa::Array lazy = chunked(wa::NDArray::from<std::int64_t>({1, 2, 3}), {{1, 2}});
  CHECK(x[{lazy}].chunks() == wa::Chunks{{1, 2}});
  // An index beyond the axis in a lazy index is found when its block runs.
  const wa::Array beyond = chunked(wa::NDArray::from<std::int64_t>({1, 10}), {{2}});
  CHECK_THROWS_AS(x[{beyond}].compute(weft::scheduler::sync), weft::TaskError);
}

TEST_CASE("boolean masks match NumPy", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const wa::NDArray m = bools({1, 0, 0, 1, 1, 1, 0, 0, 0, 1}, {10});
  for (const wa::Chunks& chunks : {wa::Chunks{{3, 3, 3, 1}}, wa::Chunks{{10}}, wa::Chunks{{4, 0, 6}}})
    check_cases(chunked(data, chunks), {{"x", data}, {"m", m}},
                {
                    {{m}, "m"},
                    {{chunked(m, {{5, 5}})}, "m"},
                    {{chunked(m, {{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}})}, "m"},
                    {{newaxis, chunked(m, {{3, 7}})}, "None, m"},
                });

  const wa::NDArray data2 = counting<double>({5, 7});
  const wa::NDArray rows = bools({0, 1, 1, 0, 1}, {5});
  const wa::NDArray columns = bools({1, 1, 0, 0, 0, 1, 0}, {7});
  const wa::NDArray whole = bools({1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                                   0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1},
                                  {5, 7});
  for (const wa::Chunks& chunks : {wa::Chunks{{2, 2, 1}, {3, 4}}, wa::Chunks{{5}, {7}}, wa::Chunks{{1, 1, 1, 1, 1}, {2, 5}}})
    check_cases(chunked(data2, chunks), {{"x", data2}, {"r", rows}, {"c", columns}, {"m", whole}},
                {
                    {{rows}, "r"},
                    {{ellipsis, columns}, "..., c"},
                    {{chunked(rows, {{2, 3}})}, "r"},
                    {{3, chunked(columns, {{4, 3}})}, "3, c"},
                    {{slice(None, None, -1), chunked(columns, {{7}})}, "::-1, c"},
                    {{whole}, "m"},
                    {{chunked(whole, {{3, 2}, {7}})}, "m"},
                    {{chunked(whole, {{1, 4}, {2, 2, 3}})}, "m"},
                });

  const wa::NDArray data3 = counting<std::int32_t>({4, 3, 5});
  const wa::NDArray mask3 = counting<std::int64_t>({4, 3, 5}).astype(wa::DType::bool_);  // all but the first
  const wa::NDArray middle = bools({1, 0, 1}, {3});
  check_cases(chunked(data3, {{3, 1}, {1, 2}, {2, 2, 1}}), {{"x", data3}, {"m", mask3}, {"c", middle}},
              {
                  {{mask3}, "m"},
                  {{chunked(mask3, {{2, 2}, {3}, {1, 4}})}, "m"},
                  {{1, chunked(middle, {{2, 1}}), _}, "1, c, :"},
                  {{_, chunked(middle, {{2, 1}})}, ":, c"},
              });
}

TEST_CASE("masks give unknown chunks until compute_chunk_sizes", "[array-indexing]") {
  const wa::NDArray data = counting<double>({10});
  const wa::NDArray m = bools({1, 0, 0, 1, 1, 1, 0, 0, 0, 1}, {10});
  const wa::Array x = chunked(data, {{3, 3, 3, 1}});
  CHECK(x[{m}].chunks() == wa::Chunks{{2, 2, 1}});  // a known mask is an index list
  const wa::Array y = x[{chunked(m, {{5, 5}})}];
  CHECK(y.chunks() == wa::Chunks{{wa::kUnknown, wa::kUnknown, wa::kUnknown, wa::kUnknown}});
  CHECK(y.shape() == wa::Shape{wa::kUnknown});
  const wa::Array known = wa::compute_chunk_sizes(y, weft::scheduler::threads);
  CHECK(known.chunks() == wa::Chunks{{1, 3, 0, 1}});
  CHECK(known.shape() == wa::Shape{5});
  CHECK(known[{slice(1, 4)}].compute().to_vector<double>() == std::vector<double>{3, 4, 5});

  // A known mask of the whole shape counts per block-row; a lazy one cannot.
  const wa::NDArray data2 = counting<double>({4, 3});
  const wa::NDArray whole = bools({1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1}, {4, 3});
  const wa::Array x2 = chunked(data2, {{2, 2}, {1, 2}});
  CHECK(x2[{whole}].chunks() == wa::Chunks{{2, 5}});
  CHECK(x2[{chunked(whole, {{4}, {3}})}].chunks() == wa::Chunks{{wa::kUnknown, wa::kUnknown}});

  // What needs sizes says so, before any task runs.
  check_error<weft::ValueError>([&] { (void)y[{2}]; }, "value.unknown-chunks", "axis 0");
  check_error<weft::ValueError>([&] { (void)y[{slice(1, 3)}]; }, "value.unknown-chunks");
  check_error<weft::ValueError>([&] { (void)y[{Vec{0}}]; }, "value.unknown-chunks");
  const wa::Array unknown_mask = chunked(m, {{5, 5}})[{chunked(m, {{5, 5}})}];
  check_error<weft::ValueError>([&] { (void)x[{unknown_mask}]; }, "value.unknown-chunks", "boolean index");
  // `:` and newaxis work with unknown sizes, and so does compute.
  CHECK(y[{_, newaxis}].chunks() == wa::Chunks{{wa::kUnknown, wa::kUnknown, wa::kUnknown, wa::kUnknown}, {1}});
  CHECK(y[{ellipsis, newaxis}].compute(weft::scheduler::sync).shape() == wa::Shape{5, 1});
  CHECK(y.compute(weft::scheduler::threads).to_vector<double>() == std::vector<double>{0, 3, 4, 5, 9});
}

TEST_CASE("indexing errors are raised before any task exists", "[array-indexing]") {
  const wa::NDArray data = counting<double>({5, 7});
  const wa::Array x = chunked(data, {{2, 3}, {7}});
  check_error<weft::ValueError>([&] { (void)x[{1, 2, 3}]; }, "value.too-many-indices", "2-dimensional, but 3");
  check_error<weft::ValueError>([&] { (void)x[{5}]; }, "value.index-out-of-range", "index 5 is out of bounds for axis 0 with size 5");
  check_error<weft::ValueError>([&] { (void)x[{_, -8}]; }, "value.index-out-of-range", "axis 1 with size 7");
  check_error<weft::ValueError>([&] { (void)x[{_, Vec{0, 7}}]; }, "value.index-out-of-range", "index 7");
  check_error<weft::ValueError>([&] { (void)x[{slice(None, None, 0)}]; }, "value.bad-slice");
  check_error<weft::ValueError>([&] { (void)x[{bools({1, 0, 1}, {3})}]; }, "value.mask-shape-mismatch",
                                "size of axis is 5 but size of corresponding boolean axis is 3");
  check_error<weft::ValueError>([&] { (void)x[{chunked(bools({1, 0, 1}, {3}), {{3}})}]; },
                                "value.mask-shape-mismatch");
  check_error<weft::ValueError>([&] { (void)x[{bools(std::vector<int>(35, 1), {7, 5})}]; },
                                "value.mask-shape-mismatch");
  check_error<weft::ValueError>([&] { (void)x[{bools(std::vector<int>(35, 1), {5, 7, 1})}]; },
                                "value.too-many-indices");
  check_error<weft::TypeError>([&] { (void)x[{wa::NDArray::from<double>({0.0, 1.0})}]; }, "type.bad-index", "float64");
  check_error<weft::TypeError>([&] { (void)x[{chunked(wa::NDArray::from<float>({0.0f}), {{1}})}]; }, "type.bad-index");
  check_error<weft::TypeError>([&] { (void)wa::take(x, slice(1, 2)); }, "type.bad-index");
  check_error<weft::ValueError>([&] { (void)x[{Vec{0}, Vec{1}}]; }, "value.unsupported-index");
  check_error<weft::ValueError>([&] { (void)x[{ellipsis, 1, ellipsis}]; }, "value.unsupported-index", "ellipsis");
  check_error<weft::ValueError>([&] { (void)x[{counting<std::int64_t>({2, 2})}]; }, "value.unsupported-index");
  check_error<weft::ValueError>([&] { (void)x[{bools({1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {5, 2}), 0}]; },
                                "value.unsupported-index");
  check_error<weft::ValueError>([&] { (void)wa::take(x, Vec{0}, 2); }, "value.bad-axis");
}

TEST_CASE("indexing tasks can be sent to other ranks", "[array-indexing]") {
  const wa::NDArray data = counting<double>({4, 6});
  const wa::Array x = chunked(data, {{2, 2}, {3, 3}});
  const wa::NDArray rows = bools({1, 0, 1, 1}, {4});
  const std::vector<wa::Array> results = {
      x[{slice(None, None, -1), 2}],
      x[{Vec{3, 0, 3}}],
      x[{_, chunked(wa::NDArray::from<std::int64_t>({5, 0}), {{2}})}],
      x[{chunked(rows, {{1, 3}})}],
      x[{bools(std::vector<int>(24, 1), {4, 6})}],
      wa::compute_chunk_sizes(x[{chunked(rows, {{4}})}], weft::scheduler::sync),
  };
  for (const wa::Array& y : results) {
    for (std::int64_t b = 0; b < y.numblocks()[0]; ++b) {
      std::vector<std::int64_t> index(static_cast<std::size_t>(y.ndim()), 0);
      index[0] = b;
      std::vector<std::byte> bytes;
      weft::detail::encode_task(*y.block_task(index), bytes);
      std::span<const std::byte> in(bytes);
      const weft::TaskPtr decoded = weft::detail::decode_task(in);
      CHECK(decoded->key() == y.block_key(index));
      CHECK(in.empty());
    }
  }
}
