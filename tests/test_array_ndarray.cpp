// NDArray: construction, alignment, views (slice, block, transpose,
// broadcast_to, reshape), strided copy / assign / astype against NumPy for
// every dtype pair, equals, item, wrap, errors and encode/decode round trips.
#include <catch2/catch.hpp>

#include <complex>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "../src/array/large_memory.hpp"
#include "array/numpy_oracle.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/error.hpp"
#include "weft/serialize.hpp"
#include "weft/value.hpp"

namespace wa = weft::array;
using Catch::Matchers::StartsWith;

namespace {

// 0, 1, 2, ... in C order, as float64.
wa::NDArray iota(wa::Shape shape) {
  std::vector<double> v(static_cast<std::size_t>(wa::shape_size(shape)));
  std::iota(v.begin(), v.end(), 0.0);
  return wa::NDArray::from(v, std::move(shape));
}

// A mix of zeros, small positives, negatives and fractions, built so that
// every conversion between dtypes is defined in C++ (no negative float goes
// to an unsigned type): integers and bool come from int64, whose negatives
// wrap modulo 2^n as in NumPy.
wa::NDArray mixed(wa::DType dtype, wa::Shape shape) {
  const bool inexact = wa::is_inexact(dtype);
  const std::vector<double> pattern = inexact ? std::vector<double>{0, 1, 2.5, 3, 7, 0, 100, -0.5}
                                              : std::vector<double>{0, 1, 2, -3, 7, 0, 100, -1};
  wa::NDArray base(inexact ? wa::DType::float64 : wa::DType::int64, shape);
  for (std::int64_t i = 0; i < base.size(); ++i) {
    const double v = pattern[static_cast<std::size_t>(i) % pattern.size()];
    if (inexact) base.data<double>()[i] = v;
    else base.data<std::int64_t>()[i] = static_cast<std::int64_t>(v);
  }
  return base.astype(dtype);
}

std::vector<wa::DType> all_dtypes() {
  std::vector<wa::DType> out;
  for (int i = 0; i < wa::kDTypeCount; ++i) out.push_back(static_cast<wa::DType>(i));
  return out;
}

}  // namespace

TEST_CASE("NDArray construction, shape helpers and alignment", "[array-ndarray]") {
  CHECK(wa::shape_size(wa::Shape{}) == 1);
  CHECK(wa::shape_size(wa::Shape{3, 0, 2}) == 0);
  CHECK(wa::shape_str(wa::Shape{}) == "()");
  CHECK(wa::shape_str(wa::Shape{3}) == "(3,)");
  CHECK(wa::shape_str(wa::Shape{3, 4}) == "(3, 4)");
  CHECK(wa::c_strides(wa::Shape{2, 3, 4}) == wa::Strides{12, 4, 1});
  CHECK(wa::c_strides(wa::Shape{2, 0, 4}) == wa::Strides{4, 4, 1});

  const wa::NDArray d;
  CHECK(d.dtype() == wa::DType::float64);
  CHECK(d.ndim() == 0);
  CHECK(d.size() == 1);
  CHECK(d.item<double>() == 0.0);

  for (wa::DType t : all_dtypes()) {
    const wa::NDArray a(t, {3, 5});
    CHECK(reinterpret_cast<std::uintptr_t>(a.raw_data()) % 64 == 0);
    CHECK(a.nbytes() == 15 * wa::itemsize(t));
    CHECK(a.is_contiguous());
  }
  const wa::NDArray filled(wa::DType::int16, {2, 2}, wa::Scalar(7.9));
  CHECK(filled.to_vector<std::int16_t>() == std::vector<std::int16_t>{7, 7, 7, 7});
  const wa::NDArray empty(wa::DType::float32, {0, 4});
  CHECK(empty.size() == 0);
  CHECK(empty.copy().shape() == wa::Shape{0, 4});
  CHECK(wa::NDArray::scalar(wa::Scalar(std::uint8_t{9})).item().dtype() == wa::DType::uint8);
  CHECK_FALSE(wa::NDArray::scalar(wa::Scalar(std::uint8_t{9})).item().weak());
  CHECK(wa::NDArray::from<int>({4, 5, 6}).at<int>({2}) == 6);

  CHECK_THROWS_WITH(wa::NDArray(wa::DType::int8, {2, -1}), StartsWith("[weft.value.bad-shape]"));
  CHECK_THROWS_WITH(wa::NDArray(wa::DType::float64, {1LL << 40, 1LL << 40}), StartsWith("[weft.value.bad-shape]"));
  CHECK_THROWS_WITH(wa::NDArray::from(std::vector<double>{1, 2, 3}, {2, 2}),
                    StartsWith("[weft.value.shape-mismatch]"));
  const wa::NDArray x = iota({2, 3});
  CHECK_THROWS_AS(x.data<float>(), weft::TypeError);
  CHECK_THROWS_WITH(x.data<float>(), StartsWith("[weft.type.dtype-mismatch]"));
  CHECK_THROWS_WITH(x.at<double>({2, 0}), StartsWith("[weft.value.bad-index]"));
  CHECK_THROWS_WITH(x.at<double>({0}), StartsWith("[weft.value.bad-index]"));
  CHECK_THROWS_WITH(x.item(), StartsWith("[weft.value.not-scalar]"));
  CHECK(x.at<double>({1, 2}) == 5.0);
  CHECK(x.slice(1, 2, 3).slice(0, 1, 2).item<int>() == 5);
}

TEST_CASE("Large arrays start on a huge page and reuse a freed large array's memory", "[array-ndarray]") {
  constexpr std::uintptr_t huge_page = std::uintptr_t{2} << 20;
  weft::array::detail::release_kept_large_memory();  // none kept from other tests
  const void* first = nullptr;
  {
    wa::NDArray a(wa::DType::float64, {1000, 1000});  // 8 MB
    first = a.raw_data();
    CHECK(reinterpret_cast<std::uintptr_t>(first) % huge_page == 0);
    a.fill(wa::Scalar(1.5));
  }
  {
    // Freed memory is kept: the next array of about that size gets it back,
    // and owns every element (written without reading what was there).
    wa::NDArray b(wa::DType::int64, {999, 1001});
    CHECK(b.raw_data() == first);
    b.fill(wa::Scalar(std::int64_t{-3}));
    CHECK(b.at<std::int64_t>({998, 1000}) == -3);
    // A small array does not take a large mapping.
    const wa::NDArray small(wa::DType::float64, {10, 10});
    CHECK(small.raw_data() != first);
  }
  // Given back (the nanny does this before it measures a worker's memory),
  // the kept mapping is unmapped and new arrays work as before.
  weft::array::detail::release_kept_large_memory();
  wa::NDArray c(wa::DType::float64, {1000, 1000});
  CHECK(reinterpret_cast<std::uintptr_t>(c.raw_data()) % huge_page == 0);
  c.fill(wa::Scalar(2.0));
  CHECK(c.at<double>({999, 999}) == 2.0);
}

TEST_CASE("NDArray views match NumPy's slicing, transpose, broadcast and reshape", "[array-ndarray]") {
  const wa::NDArray x = iota({4, 5, 3});
  const int reversed[] = {2, 0, 1};
  const wa::NDArray s1 = x.slice(1, 4, -1, -2);    // x[:, 4::-2]
  const wa::NDArray s2 = x.slice(0, 1, 4, 2);      // x[1:4:2]
  const wa::NDArray s3 = x.slice(2, 2, 0, -1);     // x[:, :, 2:0:-1]
  const wa::NDArray s4 = x.slice(1, 3, 3);         // x[:, 3:3]
  const wa::NDArray t = x.transpose(reversed);     // x.transpose(2, 0, 1)
  const wa::NDArray tt = x.transpose({});          // x.T
  const wa::Shape at{1, 2, 0};
  const wa::Shape shape{2, 3, 3};
  const wa::NDArray b = x.block(at, shape);        // x[1:3, 2:5, 0:3]
  const wa::NDArray row = iota({5}).slice(0, 1, 5, 3);                 // [1, 4]
  const wa::NDArray bc = iota({3, 1}).broadcast_to({2, 3, 4});
  const wa::NDArray r = x.reshape({-1, 6});
  const wa::NDArray rt = t.reshape({3, 20});       // a copy: t is not contiguous
  CHECK(r.raw_data() == x.raw_data());
  CHECK(rt.raw_data() != x.raw_data());
  CHECK_FALSE(t.is_contiguous());
  CHECK(x.slice(0, 1, 2).is_contiguous());  // one row of a C-order array
  CHECK(s1.raw_data() != x.raw_data());     // views share memory at an offset
  CHECK(bc.strides() == wa::Strides{0, 1, 0});

  const auto want = weft::test::numpy(
      "out = [x[:, 4::-2], x[1:4:2], x[:, :, 2:0:-1], x[:, 3:3], x.transpose(2, 0, 1), x.T,\n"
      "       x[1:3, 2:5, 0:3], np.arange(5.0)[1:5:3], np.broadcast_to(np.arange(3.0).reshape(3, 1), (2, 3, 4)),\n"
      "       x.reshape(-1, 6), x.transpose(2, 0, 1).reshape(3, 20)]",
      {{"x", x}});
  const wa::NDArray got[] = {s1, s2, s3, s4, t, tt, b, row, bc, r, rt};
  for (std::size_t i = 0; i < std::size(got); ++i) {
    weft::test::check_close(got[i], want[i], 0, 0, true, "view " + std::to_string(i));
    CHECK(got[i].copy().equals(want[i]));
  }

  CHECK_THROWS_WITH(x.slice(3, 0, 1), StartsWith("[weft.value.bad-axis]"));
  CHECK_THROWS_WITH(x.slice(0, 0, 1, 0), StartsWith("[weft.value.bad-slice]"));
  CHECK_THROWS_WITH(x.slice(0, 2, 6), StartsWith("[weft.value.bad-index]"));
  const wa::Shape too_big{3, 5, 3};
  CHECK_THROWS_WITH(x.block(at, too_big), StartsWith("[weft.value.bad-index]"));
  const int repeated[] = {0, 0, 1};
  CHECK_THROWS_WITH(x.transpose(repeated), StartsWith("[weft.value.bad-axes]"));
  CHECK_THROWS_WITH(iota({3, 2}).broadcast_to({3, 3}), StartsWith("[weft.value.shape-mismatch]"));
  CHECK_THROWS_WITH(iota({3}).broadcast_to({}), StartsWith("[weft.value.shape-mismatch]"));
  CHECK_THROWS_WITH(x.reshape({7, -1}), StartsWith("[weft.value.bad-shape]"));
  CHECK_THROWS_WITH(x.reshape({59}), StartsWith("[weft.value.bad-shape]"));
  CHECK(iota({0, 3}).reshape({3, -1, 5}).shape() == wa::Shape{3, 0, 5});
}

TEST_CASE("astype converts every dtype pair as NumPy does, from strided views too", "[array-ndarray]") {
  // The source of each pair is a non-contiguous view (every other column of
  // a transposed array) and a contiguous one; NumPy converts the same values.
  std::vector<wa::NDArray> sources;
  weft::test::NumpyInputs inputs;
  for (wa::DType t : all_dtypes()) {
    sources.push_back(mixed(t, {6, 4}));
    inputs.emplace_back("a" + std::to_string(inputs.size()), sources.back());
  }
  const auto want = weft::test::numpy(
      "names = ['bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',"
      " 'float32', 'float64', 'complex64', 'complex128']\n"
      "import warnings\nwarnings.simplefilter('ignore')\n"
      "srcs = [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12]\n"
      "out = [s.T[:, ::2].astype(t) for s in srcs for t in names]",
      inputs);
  const int swap[] = {1, 0};
  for (std::size_t from = 0; from < sources.size(); ++from) {
    const wa::NDArray view = sources[from].transpose(swap).slice(1, 0, 6, 2);
    const wa::NDArray contiguous = view.copy();
    CHECK(contiguous.is_contiguous());
    for (wa::DType to : all_dtypes()) {
      const wa::NDArray& expected = want[from * wa::kDTypeCount + static_cast<std::size_t>(to)];
      const std::string what = std::string(wa::dtype_name(sources[from].dtype())) + " -> " +
                               std::string(wa::dtype_name(to));
      CHECK(view.astype(to).equals(expected));
      CHECK(contiguous.astype(to).equals(expected));
      weft::test::check_close(view.astype(to), expected, 0, 0, true, what);
    }
  }
  const wa::NDArray c = sources[10].copy();
  CHECK(c.astype(wa::DType::float64).raw_data() == c.raw_data());  // no copy when nothing changes
  CHECK(c.contiguous().raw_data() == c.raw_data());
  CHECK(c.copy().raw_data() != c.raw_data());
}

TEST_CASE("assign broadcasts and converts; fill writes through views", "[array-ndarray]") {
  const wa::NDArray row = wa::NDArray::from<std::int32_t>({1, 2, 3});
  const wa::NDArray col = wa::NDArray::from(std::vector<float>{10.5f, 20.5f}, {2, 1});
  wa::NDArray a(wa::DType::float64, {2, 3}, wa::Scalar(0.0));
  a.assign(row);
  wa::NDArray b(wa::DType::int64, {2, 3});
  b.assign(col);
  wa::NDArray c(wa::DType::complex64, {4, 6}, wa::Scalar(-1.0));
  c.slice(1, 1, 6, 2).fill(wa::Scalar(std::complex<double>(2, 3)));
  wa::NDArray d = iota({4, 6});
  d.transpose({}).slice(0, 5, -1, -2).assign(iota({3, 4}));  // writes through a reversed transposed view
  wa::NDArray e = iota({5});
  e.slice(0, 1, 5).assign(e.slice(0, 0, 4));  // overlapping: NumPy reads before it writes
  // Transposing copies go tile by tile: tiles cut at uneven edges, an outer axis.
  const int swap_last[] = {0, 2, 1};
  const wa::NDArray f = iota({3, 70, 45}).transpose(swap_last).astype(wa::DType::float32);
  const wa::NDArray g = iota({70, 45}).transpose({}).slice(0, 44, -1, -3).copy();
  wa::NDArray z(wa::DType::uint8, {}, wa::Scalar(3));
  z.assign(wa::NDArray::scalar(wa::Scalar(258)));

  const auto want = weft::test::numpy(
      "a = np.zeros((2, 3)); a[...] = np.array([1, 2, 3], np.int32)\n"
      "b = np.empty((2, 3), np.int64); b[...] = np.array([[10.5], [20.5]], np.float32)\n"
      "c = np.full((4, 6), -1, np.complex64); c[:, 1::2] = 2 + 3j\n"
      "d = np.arange(24.0).reshape(4, 6); d.T[5::-2] = np.arange(12.0).reshape(3, 4)\n"
      "e = np.arange(5.0); e[1:] = e[:4]\n"
      "f = np.arange(3 * 70 * 45.0).reshape(3, 70, 45).transpose(0, 2, 1).astype(np.float32)\n"
      "g = np.arange(70 * 45.0).reshape(70, 45).T[44::-3]\n"
      "out = [a, b, c, d, e, f, g, np.array(258).astype(np.uint8).reshape(1)]");
  CHECK(z.ndim() == 0);
  const wa::NDArray got[] = {a, b, c, d, e, f, g, z.reshape({1})};
  for (std::size_t i = 0; i < std::size(got); ++i)
    weft::test::check_close(got[i], want[i], 0, 0, true, "assign " + std::to_string(i));

  wa::NDArray target(wa::DType::float64, {2, 3});
  CHECK_THROWS_WITH(target.assign(iota({3, 2})), StartsWith("[weft.value.shape-mismatch]"));
  CHECK_THROWS_WITH(target.assign(iota({2, 2, 3})), StartsWith("[weft.value.shape-mismatch]"));
}

TEST_CASE("equals, to_vector, item and wrap", "[array-ndarray]") {
  const wa::NDArray x = iota({2, 3});
  CHECK(x.equals(x.copy()));
  CHECK(x.equals(x.transpose({}).transpose({})));
  CHECK_FALSE(x.equals(x.astype(wa::DType::float32)));
  CHECK_FALSE(x.equals(x.reshape({3, 2})));
  wa::NDArray y = x.copy();
  y.at<double>({1, 2}) = 9;
  CHECK_FALSE(x.equals(y));
  const wa::NDArray nan = wa::NDArray::scalar(std::numeric_limits<double>::quiet_NaN());
  CHECK_FALSE(nan.equals(nan));
  CHECK(wa::NDArray(wa::DType::int8, {0, 2}).equals(wa::NDArray(wa::DType::int8, {0, 2})));

  CHECK(x.transpose({}).to_vector<int>() == std::vector<int>{0, 3, 1, 4, 2, 5});
  CHECK(x.slice(1, 1, 2).slice(0, 1, 2).item().dtype() == wa::DType::float64);
  CHECK(wa::NDArray::from<std::complex<double>>({{1.5, -2}}).item<int>() == 1);

  // wrap: caller memory, C order by default or the strides given (a column).
  std::vector<std::int32_t> buffer = {1, 2, 3, 4, 5, 6};
  wa::NDArray w = wa::NDArray::wrap(buffer.data(), {2, 3});
  CHECK(w.raw_data() == buffer.data());
  w.at<std::int32_t>({1, 0}) = 40;
  CHECK(buffer[3] == 40);
  const wa::NDArray column = wa::NDArray::wrap(buffer.data() + 1, {2}, {3});
  CHECK(column.to_vector<std::int32_t>() == std::vector<std::int32_t>{2, 5});
  auto owned = std::make_shared<std::vector<double>>(4, 2.5);
  const wa::NDArray kept = wa::NDArray::wrap(owned->data(), {4}, {}, owned);
  owned.reset();
  CHECK(kept.to_vector<double>() == std::vector<double>(4, 2.5));
  CHECK_THROWS_WITH(wa::NDArray::wrap(buffer.data(), {2, 3}, {1}), StartsWith("[weft.value.bad-strides]"));
}

TEST_CASE("NDArray round-trips through weft::encode and weft::decode", "[array-ndarray]") {
  const auto round_trip = [](const wa::NDArray& a) {
    const weft::Value v = weft::Value::of(a);
    const weft::Encoded e = weft::encode(v);
    return std::make_pair(weft::decode(e.header, e.buffers).get<wa::NDArray>(), e);
  };
  const wa::NDArray x = mixed(wa::DType::complex64, {3, 4});
  const auto [back, encoded] = round_trip(x);
  CHECK(back.equals(x));
  REQUIRE(encoded.buffers.size() == 1);  // contiguous: the elements travel from x's own memory
  CHECK(encoded.buffers[0].data() == static_cast<const std::byte*>(x.raw_data()));
  CHECK(encoded.buffers[0].size() == x.nbytes());
  CHECK(back.raw_data() != x.raw_data());

  const wa::NDArray strided = x.transpose({}).slice(0, 3, -1, -2);
  const auto [back_strided, encoded_strided] = round_trip(strided);
  // Packed once into memory the encoding keeps alive, not into the header.
  REQUIRE(encoded_strided.buffers.size() == 1);
  CHECK(encoded_strided.buffers[0].size() == strided.nbytes());
  CHECK(encoded_strided.keep_alive != nullptr);
  CHECK(encoded.keep_alive == nullptr);
  CHECK(back_strided.equals(strided));
  CHECK(back_strided.is_contiguous());
  for (const wa::NDArray& a : {wa::NDArray(), wa::NDArray(wa::DType::bool_, {0, 3}), mixed(wa::DType::bool_, {5}),
                               mixed(wa::DType::uint64, {2, 1, 2})})
    CHECK(round_trip(a).first.equals(a));

  // A buffer of the wrong size, a truncated header, a bad bool byte.
  const weft::Encoded e = weft::encode(weft::Value::of(x));
  const std::vector<std::byte> shorter(x.nbytes() - 1);
  const std::span<const std::byte> short_buffer[] = {shorter};
  CHECK_THROWS_WITH(weft::decode(e.header, short_buffer), StartsWith("[weft.value.bad-encoding]"));
  const std::span<const std::byte> cut(e.header.data(), e.header.size() - 4);
  CHECK_THROWS_WITH(weft::decode(cut, e.buffers), StartsWith("[weft.value.bad-encoding]"));
  const wa::NDArray flags = mixed(wa::DType::bool_, {4});
  const weft::Encoded fe = weft::encode(weft::Value::of(flags));
  std::vector<std::byte> bad(fe.buffers[0].begin(), fe.buffers[0].end());
  bad[2] = std::byte{7};
  const std::span<const std::byte> bad_buffer[] = {bad};
  CHECK_THROWS_WITH(weft::decode(fe.header, bad_buffer), StartsWith("[weft.value.bad-encoding]"));
}
