// weft::array dtypes against NumPy: names and aliases, itemsize and kind,
// every result_type and can_cast pair, NEP 50 weak scalars, float_result,
// real_type, Scalar conversions and NumPy's printing of values.
#include <catch2/catch.hpp>

#include <complex>
#include <limits>
#include <string>
#include <vector>

#include "array/numpy_oracle.hpp"
#include "weft/array/dtype.hpp"
#include "weft/error.hpp"

namespace wa = weft::array;
using Catch::Matchers::StartsWith;

namespace {

// NumPy's names in DType order, as a Python list literal.
const char* const kPythonNames =
    "names = ['bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',"
    " 'float32', 'float64', 'complex64', 'complex128']\n";

std::vector<wa::DType> all_dtypes() {
  std::vector<wa::DType> out;
  for (int i = 0; i < wa::kDTypeCount; ++i) out.push_back(static_cast<wa::DType>(i));
  return out;
}

// The DType whose index NumPy's code put at `flat` of `indices` (an int64 array).
wa::DType dtype_at(const wa::NDArray& indices, std::int64_t flat) {
  return static_cast<wa::DType>(indices.to_vector<std::int64_t>().at(static_cast<std::size_t>(flat)));
}

}  // namespace

TEST_CASE("dtype names, itemsizes and kinds match NumPy", "[array-dtype]") {
  const std::vector<std::string> aliases = {
      "bool", "bool_", "?", "b1", "|b1", "i1", "b", "byte", "i2", "h", "short", "i4", "i", "intc", "=i4",
      "i8", "l", "q", "int", "int_", "long", "longlong", "intp", "p", "u1", "B", "ubyte", "u2", "H",
      "ushort", "u4", "I", "uintc", "u8", "L", "Q", "uint", "ulong", "ulonglong", "uintp", "P", "f4",
      "f", "single", "f8", "<f8", "d", "double", "float", "float_", "c8", "F", "csingle",
      "singlecomplex", "c16", "D", "cdouble", "complex", "complex_", "cfloat", "int8", "uint64",
      "float32", "complex64", "complex128"};
  std::string list = "aliases = [";
  for (const std::string& a : aliases) list += "'" + a + "', ";
  list += "]\n";
  const auto want = weft::test::numpy(
      std::string(kPythonNames) + list +
      "out = [np.array([names.index(np.dtype(a).name) for a in aliases]),\n"
      "       np.array([np.dtype(n).itemsize for n in names]),\n"
      "       np.array(['biufc'.index(np.dtype(n).kind) for n in names])]");
  for (std::size_t i = 0; i < aliases.size(); ++i) {
    INFO(aliases[i]);
    CHECK(wa::dtype_from_name(aliases[i]) == dtype_at(want[0], static_cast<std::int64_t>(i)));
  }
  for (wa::DType t : all_dtypes()) {
    const auto i = static_cast<std::int64_t>(t);
    INFO(wa::dtype_name(t));
    CHECK(wa::dtype_from_name(wa::dtype_name(t)) == t);
    CHECK(static_cast<std::int64_t>(wa::itemsize(t)) == want[1].to_vector<std::int64_t>()[static_cast<std::size_t>(i)]);
    CHECK(static_cast<std::int64_t>(wa::dtype_kind(t)) == want[2].to_vector<std::int64_t>()[static_cast<std::size_t>(i)]);
  }
  CHECK(wa::dtype_of<double> == wa::DType::float64);
  CHECK(wa::dtype_of<const std::complex<float>> == wa::DType::complex64);
  CHECK(wa::is_integer(wa::DType::uint16));
  CHECK_FALSE(wa::is_integer(wa::DType::bool_));
  CHECK(wa::is_inexact(wa::DType::complex64));
  CHECK_FALSE(wa::is_inexact(wa::DType::int64));

  for (const char* unknown : {">f8", "float16", "object", "f16", "", "Float64"}) {
    INFO(unknown);
    CHECK_THROWS_AS(wa::dtype_from_name(unknown), weft::TypeError);
    CHECK_THROWS_WITH(wa::dtype_from_name(unknown), StartsWith("[weft.type.unknown-dtype]"));
  }
}

TEST_CASE("result_type and can_cast agree with NumPy for every pair", "[array-dtype]") {
  const auto want = weft::test::numpy(
      std::string(kPythonNames) +
      "castings = ['no', 'equiv', 'safe', 'same_kind', 'unsafe']\n"
      "out = [np.array([[names.index(np.result_type(a, b).name) for b in names] for a in names]),\n"
      "       np.array([[[np.can_cast(a, b, c) for b in names] for a in names] for c in castings])]");
  const std::vector<bool> cast = want[1].to_vector<bool>();
  int pairs = 0;
  for (wa::DType a : all_dtypes())
    for (wa::DType b : all_dtypes()) {
      INFO(wa::dtype_name(a) << ", " << wa::dtype_name(b));
      const std::int64_t pair = static_cast<std::int64_t>(a) * wa::kDTypeCount + static_cast<std::int64_t>(b);
      CHECK(wa::result_type(a, b) == dtype_at(want[0], pair));
      for (int c = 0; c < 5; ++c) {
        INFO("casting " << c);
        CHECK(wa::can_cast(a, b, static_cast<wa::Casting>(c)) ==
              cast[static_cast<std::size_t>(c * wa::kDTypeCount * wa::kDTypeCount + pair)]);
      }
      ++pairs;
    }
  CHECK(pairs == 169);
  CHECK(wa::can_cast(wa::DType::int32, wa::DType::float64));  // the default casting is "safe"
  CHECK_FALSE(wa::can_cast(wa::DType::float64, wa::DType::int32));
}

TEST_CASE("weak scalars promote as NumPy's NEP 50 does", "[array-dtype]") {
  // Python's True, 1, 1.5 and 1j added to a 1-element array of each dtype,
  // then NumPy scalars (strong) of int8, uint32, float32 and complex64.
  const auto want = weft::test::numpy(
      std::string(kPythonNames) +
      "np._set_promotion_state('weak')\n"
      "scalars = [True, 1, 1.5, 1j, np.int8(1), np.uint32(1), np.float32(1), np.complex64(1)]\n"
      "out = np.array([[names.index((np.zeros(1, a) + s).dtype.name) for s in scalars] for a in names])");
  const std::vector<wa::Scalar> scalars = {
      wa::Scalar(true),          wa::Scalar(1),
      wa::Scalar(1.5),           wa::Scalar(std::complex<double>(0, 1)),
      wa::Scalar(std::int8_t{1}, false), wa::Scalar(std::uint32_t{1}, false),
      wa::Scalar(1.0f, false),   wa::Scalar(std::complex<float>(1, 0), false)};
  for (wa::DType a : all_dtypes())
    for (std::size_t s = 0; s < scalars.size(); ++s) {
      INFO(wa::dtype_name(a) << " with scalar " << s);
      CHECK(wa::result_type(a, scalars[s]) ==
            dtype_at(want[0], static_cast<std::int64_t>(a) * 8 + static_cast<std::int64_t>(s)));
    }
  // Any C++ type of a kind counts as that kind's Python scalar.
  CHECK(wa::result_type(wa::DType::int8, wa::Scalar(std::uint64_t{7})) == wa::DType::int8);
  CHECK(wa::result_type(wa::DType::float32, wa::Scalar(2.5f)) == wa::DType::float32);
  CHECK(wa::result_type(wa::DType::int16, wa::Scalar(2.5f)) == wa::DType::float64);
}

TEST_CASE("float_result and real_type match NumPy's true_divide and real", "[array-dtype]") {
  const auto want = weft::test::numpy(
      std::string(kPythonNames) +
      "out = [np.array([names.index((np.ones(1, a) / np.ones(1, a)).dtype.name) for a in names]),\n"
      "       np.array([names.index(np.real(np.ones(1, a)).dtype.name) for a in names]),\n"
      "       np.array([names.index(np.mean(np.ones(2, a)).dtype.name) for a in names])]");
  for (wa::DType t : all_dtypes()) {
    INFO(wa::dtype_name(t));
    CHECK(wa::float_result(t) == dtype_at(want[0], static_cast<std::int64_t>(t)));
    CHECK(wa::real_type(t) == dtype_at(want[1], static_cast<std::int64_t>(t)));
    CHECK(wa::float_result(t) == dtype_at(want[2], static_cast<std::int64_t>(t)));
  }
}

TEST_CASE("Scalar keeps its dtype and converts as NumPy's astype", "[array-dtype]") {
  const wa::Scalar f(-1.75);
  CHECK(f.dtype() == wa::DType::float64);
  CHECK(f.weak());
  CHECK_FALSE(wa::Scalar(std::int16_t{3}, false).weak());
  CHECK(wa::Scalar(std::uint8_t{200}).dtype() == wa::DType::uint8);
  CHECK(wa::Scalar().dtype() == wa::DType::float64);
  CHECK(wa::Scalar().as<double>() == 0.0);

  const auto want = weft::test::numpy(
      "vals = [np.float64(1.75), np.int64(-300), np.complex128(1.5 + 2j), np.float64(0.0), np.complex128(1j)]\n"
      "out = [np.array([np.array(v).astype(t) for v in vals]) for t in "
      "['int32', 'uint8', 'float32', 'complex64', 'bool']]");
  const std::vector<wa::Scalar> values = {wa::Scalar(1.75), wa::Scalar(std::int64_t{-300}),
                                          wa::Scalar(std::complex<double>(1.5, 2)), wa::Scalar(0.0),
                                          wa::Scalar(std::complex<double>(0, 1))};
  const wa::DType targets[] = {wa::DType::int32, wa::DType::uint8, wa::DType::float32, wa::DType::complex64,
                               wa::DType::bool_};
  for (std::size_t t = 0; t < 5; ++t) {
    wa::NDArray got(targets[t], {static_cast<std::int64_t>(values.size())});
    for (std::size_t v = 0; v < values.size(); ++v) {
      const wa::Scalar converted = values[v].astype(targets[t]);
      CHECK(converted.dtype() == targets[t]);
      CHECK(converted.weak() == values[v].weak());
      wa::NDArray one = wa::NDArray::scalar(converted);
      got.slice(0, static_cast<std::int64_t>(v), static_cast<std::int64_t>(v) + 1).assign(one);
    }
    weft::test::check_close(got, want[t], 0, 0, true, std::string(wa::dtype_name(targets[t])));
  }
  CHECK(wa::Scalar(-2.5).astype(wa::DType::int32).as<std::int32_t>() == -2);
  CHECK(wa::Scalar(std::complex<double>(2.5, -1)).as<std::complex<float>>() == std::complex<float>(2.5f, -1.0f));
  CHECK(wa::Scalar(3).as<std::complex<double>>() == std::complex<double>(3, 0));
  CHECK(wa::Scalar(1.0) == wa::Scalar(1.0));
  CHECK_FALSE(wa::Scalar(1.0) == wa::Scalar(1.0f));  // another dtype
}

TEST_CASE("to_string prints values as NumPy does", "[array-dtype]") {
  // Expected texts are str() of the NumPy scalar (numpy 1.24).
  const std::vector<std::pair<wa::Scalar, std::string>> cases = {
      {1.5, "1.5"},
      {1.0, "1.0"},
      {-0.0, "-0.0"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.2345e-7, "1.2345e-07"},
      {std::numeric_limits<double>::quiet_NaN(), "nan"},
      {-std::numeric_limits<double>::infinity(), "-inf"},
      {0.1, "0.1"},
      {123456789.125, "123456789.125"},
      {2.5e300, "2.5e+300"},
      {1e22, "1e+22"},
      {123.0, "123.0"},
      {0.1f, "0.1"},
      {3.4e38f, "3.4e+38"},
      {1.0f / 3.0f, "0.33333334"},
      {std::complex<double>(1, 2), "(1+2j)"},
      {std::complex<double>(0, 2), "2j"},
      {std::complex<double>(-0.0, 2), "(-0+2j)"},
      {std::complex<double>(1, -0.0), "(1-0j)"},
      {std::complex<double>(0, 0), "0j"},
      {std::complex<double>(1.5, -2.25), "(1.5-2.25j)"},
      {std::complex<float>(0.1f, 0.2f), "(0.1+0.2j)"},
      {std::complex<double>(1e20, 1), "(1e+20+1j)"},
      {std::complex<double>(std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()),
       "(inf+nanj)"},
      {std::int8_t{-128}, "-128"},
      {std::numeric_limits<std::uint64_t>::max(), "18446744073709551615"},
      {true, "True"},
      {false, "False"},
  };
  for (const auto& [value, text] : cases) {
    INFO(text);
    CHECK(wa::to_string(value) == text);
  }
}
