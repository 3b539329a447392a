// weft/array/creation.hpp against NumPy: values, dtypes, shapes and chunks
// on odd chunkings, on each of test_schedulers(); the errors before
// any task runs; blocks that are views; tasks that travel.
#include <catch2/catch.hpp>

#include <cmath>
#include <complex>
#include <functional>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/creation.hpp"
#include "weft/detail/task_wire.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;
using weft::test::check_close;
using weft::test::numpy;

namespace {

// Checks each array against NumPy's result (exactly when rtol is 0).
void check_all(const std::vector<wa::Array>& got, const std::vector<wa::NDArray>& want, double rtol = 0.0) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("case " << i << ": chunks " << wa::chunks_str(got[i].chunks()));
    check_close(weft::test::computed_everywhere(got[i]), want[i], rtol, 0.0, true, "case " + std::to_string(i));
  }
}

void check_error(const std::function<void()>& f, const std::string& id) {
  try {
    f();
    FAIL("no error; expected " << id);
  } catch (const weft::Error& e) {
    CHECK(e.id() == id);
  }
}

wa::NDArray iota_doubles(wa::Shape shape) {
  std::vector<double> v(static_cast<std::size_t>(wa::shape_size(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i) * 1.5 - 3;
  return wa::NDArray::from(v, std::move(shape));
}

// fromfunction's example function: i + 10 j (+ 100 k) on coordinate arrays.
wa::NDArray weighted_sum(const std::vector<wa::NDArray>& coordinates) {
  wa::NDArray out(wa::DType::float64, coordinates.empty() ? wa::Shape{} : coordinates[0].shape(), 0.0);
  double weight = 1;
  for (const wa::NDArray& c : coordinates) {
    const wa::NDArray values = c.astype(wa::DType::float64);
    for (std::int64_t i = 0; i < out.size(); ++i) out.data<double>()[i] += weight * values.data<double>()[i];
    weight *= 10;
  }
  return out;
}

wa::NDArray index_sum_block(std::span<const std::int64_t> index, const wa::Shape& shape) {
  std::int64_t sum = 0;
  for (std::int64_t i : index) sum += i;
  return wa::NDArray(wa::DType::int32, shape, sum);
}

wa::NDArray wrong_shape_block(std::span<const std::int64_t>, const wa::Shape&) {
  return wa::NDArray(wa::DType::float64, wa::Shape{1, 2, 3}, 0.0);
}

}  // namespace

TEST_CASE("zeros, ones, full and empty match NumPy on odd chunkings", "[array-creation]") {
  const std::vector<wa::Array> got{
      wa::zeros({7, 5}, wa::DType::float64, 3),
      wa::ones({0, 4}, wa::DType::int32, 2),
      wa::full({}, 7),
      wa::full({5}, 2.5, std::nullopt, 1),
      wa::full({3, 2}, true),
      wa::full({4}, 300, wa::DType::int16, 3),
      wa::zeros({2, 3}, wa::DType::complex64, {1, -1}),
      wa::full({3}, wa::Scalar(std::uint8_t{9}, false)),
      wa::ones({10}, wa::DType::bool_, wa::Chunks{{3, 3, 4}}),
  };
  const auto want = numpy(
      "out = [np.zeros((7, 5)), np.ones((0, 4), dtype='int32'), np.full((), 7), np.full((5,), 2.5),"
      " np.full((3, 2), True), np.full((4,), 300, dtype='int16'), np.zeros((2, 3), dtype='complex64'),"
      " np.full((3,), np.uint8(9)), np.ones(10, dtype=bool)]");
  check_all(got, want);
  CHECK(got[0].chunks() == wa::Chunks{{3, 3, 1}, {3, 2}});
  CHECK(got[1].chunks() == wa::Chunks{{0}, {2, 2}});
  CHECK(got[6].chunks() == wa::Chunks{{1, 1}, {3}});

  const wa::Array e = wa::empty({4, 3}, wa::DType::uint16, 2);
  // Uninitialised: only the shape and dtype are defined.
  const wa::NDArray ev = e.compute(weft::scheduler::threads);
  CHECK(ev.shape() == wa::Shape{4, 3});
  CHECK(ev.dtype() == wa::DType::uint16);
  CHECK(e.name() != wa::zeros({4, 3}, wa::DType::uint16, 2).name());
  // Same arguments, same keys (dask's deterministic names).
  CHECK(wa::full({5}, 2.5).name() == wa::full({5}, 2.5).name());
  CHECK(wa::full({5}, 2.5).name() != wa::full({5}, 3.5).name());
}

TEST_CASE("the *_like functions keep shape, dtype and chunks unless given", "[array-creation]") {
  const wa::Array x = wa::ones({7, 5}, wa::DType::int32, {2, 3});
  const std::vector<wa::Array> got{
      wa::zeros_like(x),
      wa::ones_like(x, wa::DType::float64, 4),
      wa::full_like(x, 1.5),
      wa::full_like(x, 2.5, wa::DType::float32, std::nullopt, wa::Shape{3}),
  };
  CHECK(got[0].chunks() == x.chunks());
  CHECK(got[1].chunks() == wa::Chunks{{4, 3}, {4, 1}});
  CHECK(got[2].chunks() == x.chunks());
  CHECK(got[3].chunks() == wa::Chunks{{3}});
  const wa::Array e = wa::empty_like(x);
  CHECK(e.chunks() == x.chunks());
  CHECK(e.dtype() == wa::DType::int32);
  const auto want = numpy(
      "x = np.ones((7, 5), dtype='int32')\n"
      "out = [np.zeros_like(x), np.ones_like(x, dtype=float), np.full_like(x, 1.5),"
      " np.full_like(x, 2.5, dtype='float32', shape=(3,))]");
  check_all(got, want);
}

TEST_CASE("arange matches NumPy's length, dtype and values", "[array-creation]") {
  const std::vector<wa::Array> got{
      wa::arange(10),
      wa::arange(1, 10, 3, std::nullopt, 1),
      wa::arange(10, 0, -3, std::nullopt, 2),
      wa::arange(0.1, 1.0, 0.2, std::nullopt, 2),
      wa::arange(0, 5.5, 1.5, wa::DType::int64, 3),
      wa::arange(5, 1),
      wa::arange(0, 1, 0.1, wa::DType::float32, 4),
      wa::arange(0, 2, 1, wa::DType::bool_),
      wa::arange(-2.5, 40.0, 0.7, std::nullopt, 7),
      wa::arange(3, 20, 2, wa::DType::complex128, 3),
      wa::arange(-7, 8, 3, wa::DType::int8, 2),
      wa::arange(1, 2, 0.5, wa::DType::float32),
  };
  const auto want = numpy(
      "out = [np.arange(10), np.arange(1, 10, 3), np.arange(10, 0, -3), np.arange(0.1, 1.0, 0.2),"
      " np.arange(0, 5.5, 1.5, dtype='int64'), np.arange(5, 1), np.arange(0, 1, 0.1, dtype='float32'),"
      " np.arange(0, 2, 1, dtype=bool), np.arange(-2.5, 40.0, 0.7), np.arange(3, 20, 2, dtype=complex),"
      " np.arange(-7, 8, 3, dtype='int8'), np.arange(1, 2, 0.5, dtype='float32')]");
  check_all(got, want);
  CHECK(got[1].chunks() == wa::Chunks{{1, 1, 1}});
  CHECK(got[5].chunks() == wa::Chunks{{0}});
}

TEST_CASE("linspace uses NumPy's formula", "[array-creation]") {
  const std::vector<wa::Array> got{
      wa::linspace(0, 1, 11, true, std::nullopt, 4),
      wa::linspace(0, 1, 10, false, std::nullopt, 3),
      wa::linspace(2, 3, 1),
      wa::linspace(2, 3, 0),
      wa::linspace(0, 10, 7, true, wa::DType::int64, 3),
      wa::linspace(-1, 1, 5, true, wa::DType::float32, 1),
      wa::linspace(0.0, std::complex<double>(1, 2), 5, true, std::nullopt, 2),
      wa::linspace(1e-310, 2e-310, 4),
      wa::linspace(-7.3, 1e3, 101, true, std::nullopt, 17),
      wa::linspace(5, -3, 9, false, wa::DType::int32, 4),
  };
  const auto want = numpy(
      "out = [np.linspace(0, 1, 11), np.linspace(0, 1, 10, endpoint=False), np.linspace(2, 3, 1),"
      " np.linspace(2, 3, 0), np.linspace(0, 10, 7, dtype='int64'), np.linspace(-1, 1, 5, dtype='float32'),"
      " np.linspace(0, 1+2j, 5), np.linspace(1e-310, 2e-310, 4), np.linspace(-7.3, 1e3, 101),"
      " np.linspace(5, -3, 9, endpoint=False, dtype='int32')]");
  check_all(got, want);
}

TEST_CASE("eye, diag and indices match NumPy", "[array-creation]") {
  const wa::NDArray vector = iota_doubles({7});
  const wa::NDArray matrix = iota_doubles({5, 7});
  const wa::Array v = wa::from_array(vector, 3);
  const wa::Array m = wa::from_array(matrix, {2, 3});
  const wa::Array none = wa::from_array(iota_doubles({0}));
  const std::vector<wa::Array> got{
      wa::eye(7, std::nullopt, 0, wa::DType::float64, 3),
      wa::eye(5, 8, 2, wa::DType::int32, {2, 3}),
      wa::eye(6, 4, -1, wa::DType::float64, 4),
      wa::eye(0),
      wa::eye(4, 4, 10, wa::DType::bool_, 1),
      wa::diag(v),
      wa::diag(v, 2),
      wa::diag(v, -3),
      wa::diag(none, 1),
      wa::diag(m),
      wa::diag(m, 2),
      wa::diag(m, -2),
      wa::diag(m, 10),
      wa::indices({3, 4}, wa::DType::int64, 2),
      wa::indices({0, 3}),
      wa::indices({}),
      wa::indices({5}, wa::DType::int32, 2),
  };
  const auto want = numpy(
      "out = [np.eye(7), np.eye(5, 8, 2, dtype='int32'), np.eye(6, 4, -1), np.eye(0), np.eye(4, 4, 10, dtype=bool),"
      " np.diag(v), np.diag(v, 2), np.diag(v, -3), np.diag(none, 1), np.diag(m), np.diag(m, 2), np.diag(m, -2),"
      " np.diag(m, 10), np.indices((3, 4)), np.indices((0, 3)), np.indices(()), np.indices((5,), dtype='int32')]",
      {{"v", vector}, {"m", matrix}, {"none", iota_doubles({0})}});
  check_all(got, want);
  CHECK(got[6].chunks() == wa::Chunks{{3, 3, 1, 2}, {2, 3, 3, 1}});
  CHECK(got[10].chunks() == wa::Chunks{{1, 1, 2, 1}});
  CHECK(got[13].chunks() == wa::Chunks{{1, 1}, {2, 1}, {2, 2}});
}

TEST_CASE("meshgrid broadcasts its inputs as NumPy does", "[array-creation]") {
  const wa::NDArray x = iota_doubles({4});
  const wa::NDArray y = wa::NDArray::from<std::int32_t>({5, 6, 7});
  const wa::NDArray z = iota_doubles({2});
  const std::vector<wa::Array> inputs{wa::from_array(x, 3), wa::from_array(y, 2), wa::from_array(z, 1)};
  std::vector<wa::Array> got = wa::meshgrid(inputs);
  const std::vector<wa::Array> ij = wa::meshgrid(inputs, "ij");
  got.insert(got.end(), ij.begin(), ij.end());
  got.push_back(wa::meshgrid({inputs[1]})[0]);
  const auto want = numpy("out = list(np.meshgrid(x, y, z)) + list(np.meshgrid(x, y, z, indexing='ij')) + [np.meshgrid(y)[0]]",
                          {{"x", x}, {"y", y}, {"z", z}});
  check_all(got, want);
  CHECK(got[0].chunks() == wa::Chunks{{2, 1}, {3, 1}, {1, 1}});
  CHECK(wa::meshgrid({}).empty());
}

TEST_CASE("fromfunction passes the block's coordinates", "[array-creation]") {
  const std::vector<wa::Array> got{
      wa::fromfunction(&weighted_sum, {5, 7}, wa::DType::float64, {2, 3}),
      wa::fromfunction(&weighted_sum, {2, 3, 4}, wa::DType::int32, 1),
      wa::fromfunction(&weighted_sum, {0, 3}),
      wa::fromfunction([](const std::vector<wa::NDArray>& ix) { return ix[0].astype(wa::DType::int16); }, {6}, wa::DType::float64, 4),
  };
  CHECK(got[3].dtype() == wa::DType::int16);
  const auto want = numpy(
      "out = [np.fromfunction(lambda i, j: i + 10 * j, (5, 7)),"
      " np.fromfunction(lambda i, j, k: (i + 10 * j + 100 * k).astype(float), (2, 3, 4), dtype='int32'),"
      " np.fromfunction(lambda i, j: i + 10 * j, (0, 3)), np.arange(6, dtype='int16')]");
  check_all(got, want);
}

TEST_CASE("from_array blocks are views of the caller's memory", "[array-creation]") {
  std::vector<double> buffer(35);
  for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<double>(i);
  const wa::NDArray wrapped = wa::NDArray::wrap(buffer.data(), wa::Shape{5, 7});
  const wa::Array x = wa::from_array(wrapped, {2, 3});
  CHECK(x.chunks() == wa::Chunks{{2, 2, 1}, {3, 3, 1}});
  CHECK(x.name().rfind("array-", 0) == 0);
  check_close(weft::test::computed_everywhere(x), wrapped, 0.0);
  // Block (1, 1) starts at row 2, column 3 of the buffer, without a copy.
  const std::int64_t index[] = {1, 1};
  weft::Value block = x.block_task(index)->run({});
  CHECK(block.get<wa::NDArray>().raw_data() == buffer.data() + 2 * 7 + 3);

  // Small arrays are named by their contents; large ones get a fresh name per call.
  CHECK(wa::from_array(wrapped, {2, 3}).name() == x.name());
  CHECK(wa::from_array(wrapped, 2).name() != x.name());
  const wa::NDArray large(wa::DType::float64, wa::Shape{200000}, 0.0);
  CHECK(wa::from_array(large).name() != wa::from_array(large).name());

  // A transposed (non-contiguous) view and a 0-d array.
  const int axes[] = {1, 0};
  const wa::NDArray transposed = wrapped.transpose(axes);
  check_close(weft::test::computed_everywhere(wa::from_array(transposed, {3, 2})), transposed.copy(), 0.0);
  const wa::NDArray scalar = wa::NDArray::scalar(4.5);
  check_close(weft::test::computed_everywhere(wa::from_array(scalar)), scalar, 0.0);

  const wa::Array owned = wa::from_array(std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}, {2, 3}, {1, 2});
  check_close(weft::test::computed_everywhere(owned), wa::NDArray::from<std::int32_t>({1, 2, 3, 4, 5, 6}).reshape({2, 3}), 0.0);
  check_error([] { wa::from_array(std::vector<double>(5), {2, 3}); }, "value.size-mismatch");
}

TEST_CASE("from_block_function calls the function per block", "[array-creation]") {
  const wa::Array x = wa::from_block_function(&index_sum_block, {5, 4}, wa::DType::int64, {2, 3});
  const wa::NDArray got = weft::test::computed_everywhere(x);
  const auto want = numpy("out = np.add.outer([0, 0, 1, 1, 2], [0, 0, 0, 1]).astype('int64')");
  check_close(got, want[0], 0.0);
  const wa::Array wrong = wa::from_block_function(&wrong_shape_block, {4}, wa::DType::float64);
  CHECK_THROWS_WITH(wrong.compute(weft::scheduler::sync), Contains("value.block-mismatch"));
}

TEST_CASE("creation tasks travel to other ranks", "[array-creation]") {
  const wa::Array from_memory = wa::from_array(iota_doubles({5, 3}), 2);
  const std::vector<wa::Array> arrays{
      wa::full({5, 3}, 2.5, std::nullopt, 2), wa::arange(0.5, 9, 0.75, std::nullopt, 4), wa::linspace(0, 3, 9, true, std::nullopt, 4),
      wa::eye(4, 5, 1, wa::DType::int8, 2), wa::indices({3, 2}, wa::DType::int64, 2), from_memory,
      wa::fromfunction(&weighted_sum, {3, 4}, wa::DType::float64, 2),
      wa::from_block_function(&index_sum_block, {3, 3}, wa::DType::int32, 2)};
  for (const wa::Array& a : arrays) {
    std::vector<std::int64_t> index = a.numblocks();
    for (std::int64_t& i : index) i -= 1;
    const weft::TaskPtr task = a.block_task(index);
    REQUIRE(task->dependencies().empty());
    std::vector<std::byte> bytes;
    weft::detail::encode_task(*task, bytes);
    std::span<const std::byte> in(bytes);
    const weft::TaskPtr decoded = weft::detail::decode_task(in);
    INFO(a.name());
    check_close(decoded->run({}).get<wa::NDArray>(), task->run({}).get<wa::NDArray>(), 0.0);
  }
}

TEST_CASE("from_array's blocks travel beside their tasks' bytes, from the caller's memory", "[array-creation]") {
  const wa::NDArray data = iota_doubles({40, 30});
  const wa::Array x = wa::from_array(data, wa::Chunks{{20, 20}, {30}});
  const std::int64_t second_row_block[] = {1, 0};
  const weft::TaskPtr task = x.block_task(second_row_block);
  const wa::NDArray block = task->run({}).get<wa::NDArray>();

  // Inline, the block's 4800 bytes are copied into the task's bytes.
  std::vector<std::byte> inline_bytes;
  weft::detail::encode_task(*task, inline_bytes);
  CHECK(inline_bytes.size() > static_cast<std::size_t>(block.nbytes()));

  // Attached, the bytes only name the value, whose buffer is the caller's memory.
  std::vector<std::byte> bytes;
  std::vector<weft::Value> attachments;
  weft::detail::encode_task(*task, bytes, &attachments);
  CHECK(bytes.size() < 200);
  REQUIRE(attachments.size() == 1);
  const weft::Encoded encoded = weft::encode(attachments[0]);
  REQUIRE(encoded.buffers.size() == 1);
  CHECK(encoded.buffers[0].data() == static_cast<const std::byte*>(data.raw_data()) + block.nbytes());

  // Decoding without the value fails and reads nothing; with it, the task takes it.
  std::span<const std::byte> in(bytes);
  CHECK_THROWS_WITH(weft::detail::decode_task(in), Contains("value.bad-encoding"));
  CHECK(in.size() == bytes.size());
  const weft::TaskPtr decoded = weft::detail::decode_task(in, attachments);
  CHECK(in.empty());
  CHECK(decoded->key() == task->key());
  CHECK(decoded->run({}).get<wa::NDArray>().equals(block));
  CHECK_FALSE(attachments[0].has_value());
}

TEST_CASE("creation errors are raised before any task exists", "[array-creation]") {
  check_error([] { wa::zeros({-1, 3}); }, "value.bad-shape");
  check_error([] { wa::eye(-2); }, "value.bad-shape");
  check_error([] { wa::indices({2, -1}); }, "value.bad-shape");
  check_error([] { wa::zeros({4}, wa::DType::float64, wa::Chunks{{2, 3}}); }, "value.bad-chunks");
  check_error([] { wa::ones({4, 4}, wa::DType::float64, {2, 2, 2}); }, "value.bad-chunks");
  check_error([] { wa::linspace(0, 1, -1); }, "value.bad-num");
  check_error([] { wa::arange(0, 5, 0); }, "value.zero-step");
  check_error([] { wa::arange(0.0, 5.0, 0.0); }, "value.zero-step");
  check_error([] { wa::arange(0.0, HUGE_VAL, 1.0); }, "value.arange-length");
  check_error([] { wa::arange(0, std::complex<double>(5, 1)); }, "type.arange-complex");
  check_error([] { wa::arange(0, 3, 1, wa::DType::bool_); }, "type.arange-dtype");
  check_error([] { wa::diag(wa::zeros({2, 2, 2})); }, "value.bad-ndim");
  check_error([] { wa::meshgrid({wa::zeros({2, 2})}); }, "value.bad-ndim");
  check_error([] { wa::meshgrid({wa::zeros({2})}, "xz"); }, "value.bad-indexing");
  check_error([] { wa::fromfunction(&weighted_sum, {3, -3}); }, "value.bad-shape");
  check_error([] { wa::from_block_function(&index_sum_block, {-3}, wa::DType::int32); }, "value.bad-shape");
}
