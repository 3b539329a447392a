// Elementwise functions against NumPy: every ufunc on every dtype (and the
// TypeError where NumPy has no loop), operators with scalars, broadcasting
// and chunk unification, fusion of chains into one task per block, the
// tile-by-tile evaluation over strided and broadcast blocks, and the errors
// raised when an operation is built.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "array/block_inputs.hpp"
#include "array/numpy_oracle.hpp"
#include "src/array/kernels/elementwise.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/elementwise.hpp"
#include "weft/detail/task_wire.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace wa = weft::array;
using Catch::Matchers::Contains;

namespace {

using weft::test::test_scheduler;
using weft::test::test_schedulers;

const wa::DType kDTypes[] = {wa::DType::bool_,   wa::DType::int8,    wa::DType::uint8,     wa::DType::int16,
                             wa::DType::int32,   wa::DType::int64,   wa::DType::uint64,    wa::DType::float32,
                             wa::DType::float64, wa::DType::complex64, wa::DType::complex128};

// Values per kind: integers without 0 (NumPy's integer reciprocal of 0 is
// whatever the CPU gives), floats with signed zeros, halves, NaN and
// infinities, complex numbers finite (libm and NumPy differ at complex
// infinities).
wa::NDArray sample(const wa::Shape& shape, wa::DType dtype, int rotate = 0) {
  static const double kFloats[] = {0.0, -0.0, 0.5, -0.5, 1.5,  2.5,  -2.5, 0.3, 0.9,   -0.7,    1.0,   3.75,
                                   -12.25, 100.0, NAN, INFINITY, -INFINITY, 1e-3, 7.0, -3.0, 42.5, 0.25};
  static const double kFinite[] = {0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 0.3, 0.9, -0.7, 1.0, 3.75, -1.25, 2.0, -3.0, 0.25};
  const auto n = static_cast<std::size_t>(wa::shape_size(shape));
  const auto at = [&](std::size_t i, std::size_t size) { return (i + static_cast<std::size_t>(rotate)) % size; };
  switch (wa::dtype_kind(dtype)) {
    case wa::DTypeKind::complex: {
      std::vector<std::complex<double>> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = {kFinite[at(i, 15)], kFinite[at(i * 7 + 3, 15)]};
      return wa::NDArray::from(v, shape).astype(dtype);
    }
    case wa::DTypeKind::floating: {
      std::vector<double> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = kFloats[at(i, std::size(kFloats))];
      return wa::NDArray::from(v, shape).astype(dtype);
    }
    case wa::DTypeKind::boolean: {
      std::vector<std::int64_t> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = (at(i, 3) == 0) ? 0 : 1;
      return wa::NDArray::from(v, shape).astype(dtype);
    }
    case wa::DTypeKind::unsigned_integer: {
      std::vector<std::int64_t> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::int64_t>(at(i, 20)) + 1;
      return wa::NDArray::from(v, shape).astype(dtype);
    }
    case wa::DTypeKind::signed_integer: break;
  }
  std::vector<std::int64_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::int64_t>(at(i, 18)) - 9;
    v[i] = k >= 0 ? k + 1 : k;  // -9 .. 9 without 0
  }
  return wa::NDArray::from(v, shape).astype(dtype);
}

// Small non-negative exponents (as `dtype`) for power.
wa::NDArray exponents(const wa::Shape& shape, wa::DType dtype) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(wa::shape_size(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int64_t>(i % (dtype == wa::DType::bool_ ? 2 : 4));
  return wa::NDArray::from(v, shape).astype(dtype);
}

// Calls f on every case; NumPy's None (a TypeError or ValueError there)
// comes back as an empty int8 array behind a flag.
constexpr const char* kPrelude = R"PY(
import warnings
warnings.simplefilter("ignore")
np.seterr(all="ignore")
def F(f, *a):
    try:
        r = f(*a)
    except (TypeError, ValueError):
        return None
    if np.asarray(r).dtype == np.float16:  # weft has no float16: NumPy's float32 loop
        if isinstance(f, np.ufunc):
            r = f(*a, dtype=np.float32)
        else:
            r = f(*[b.astype(np.float32) if b.dtype.itemsize == 1 else b for b in a])
    return r
def run(results):
    return [np.array([r is not None for r in results])] + [np.zeros(0, np.int8) if r is None else r for r in results]
)PY";

struct Case {
  std::string numpy;  ///< Python: F(...) of the inputs
  std::function<wa::Array(const std::vector<wa::Array>&)> weft;
};

double rtol_for(wa::DType t) {
  return t == wa::DType::float32 || t == wa::DType::complex64 ? 2e-5 : 1e-11;
}

// Runs every case with NumPy in one call and with weft on both local
// schedulers; a case NumPy refuses must throw TypeError "type.ufunc-dtype"
// when built.
void check_cases(const std::vector<Case>& cases, const weft::test::NumpyInputs& inputs,
                 const std::vector<wa::Array>& arrays, const std::string& what) {
  std::string code = std::string(kPrelude) + "out = run([\n";
  for (const Case& c : cases) code += "  " + c.numpy + ",\n";
  code += "])\n";
  const std::vector<wa::NDArray> want = weft::test::numpy(code, inputs);
  REQUIRE(want.size() == cases.size() + 1);
  const std::vector<bool> numpy_ok = want[0].to_vector<bool>();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO(what << ": " << cases[i].numpy);
    if (!numpy_ok[i]) {
      try {
        cases[i].weft(arrays);
        FAIL("weft built what NumPy refuses");
      } catch (const weft::Error& e) {
        CHECK((e.id() == "type.ufunc-dtype" || e.id() == "value.negative-int-power"));
      }
      continue;
    }
    wa::Array got;
    REQUIRE_NOTHROW(got = cases[i].weft(arrays));
    CHECK(got.dtype() == want[i + 1].dtype());
    for (auto scheduler : test_schedulers()) {
      const wa::NDArray result = got.compute(scheduler);
      weft::test::check_close(result, want[i + 1], rtol_for(want[i + 1].dtype()),
                              rtol_for(want[i + 1].dtype()) / 10, true, cases[i].numpy);
    }
  }
}

std::string dtype_label(wa::DType a) { return std::string(wa::dtype_name(a)); }

}  // namespace

TEST_CASE("every unary ufunc matches NumPy on every dtype", "[array-elementwise]") {
  using A = const std::vector<wa::Array>&;
  const std::vector<Case> cases = {
      {"F(np.negative, x)", [](A v) { return wa::negative(v[0]); }},
      {"F(np.positive, x)", [](A v) { return wa::positive(v[0]); }},
      {"F(np.absolute, x)", [](A v) { return wa::absolute(v[0]); }},
      {"F(np.fabs, x)", [](A v) { return wa::fabs(v[0]); }},
      {"F(np.sign, x)", [](A v) { return wa::sign(v[0]); }},
      {"F(np.reciprocal, x)", [](A v) { return wa::reciprocal(v[0]); }},
      {"F(np.square, x)", [](A v) { return wa::square(v[0]); }},
      {"F(np.sqrt, x)", [](A v) { return wa::sqrt(v[0]); }},
      {"F(np.cbrt, x)", [](A v) { return wa::cbrt(v[0]); }},
      {"F(np.sin, x)", [](A v) { return wa::sin(v[0]); }},
      {"F(np.cos, x)", [](A v) { return wa::cos(v[0]); }},
      {"F(np.tan, x)", [](A v) { return wa::tan(v[0]); }},
      {"F(np.arcsin, x)", [](A v) { return wa::arcsin(v[0]); }},
      {"F(np.arccos, x)", [](A v) { return wa::arccos(v[0]); }},
      {"F(np.arctan, x)", [](A v) { return wa::arctan(v[0]); }},
      {"F(np.sinh, x)", [](A v) { return wa::sinh(v[0]); }},
      {"F(np.cosh, x)", [](A v) { return wa::cosh(v[0]); }},
      {"F(np.tanh, x)", [](A v) { return wa::tanh(v[0]); }},
      {"F(np.arcsinh, x)", [](A v) { return wa::arcsinh(v[0]); }},
      {"F(np.arccosh, x)", [](A v) { return wa::arccosh(v[0]); }},
      {"F(np.arctanh, x)", [](A v) { return wa::arctanh(v[0]); }},
      {"F(np.deg2rad, x)", [](A v) { return wa::deg2rad(v[0]); }},
      {"F(np.rad2deg, x)", [](A v) { return wa::rad2deg(v[0]); }},
      {"F(np.degrees, x)", [](A v) { return wa::degrees(v[0]); }},
      {"F(np.radians, x)", [](A v) { return wa::radians(v[0]); }},
      {"F(np.exp, x)", [](A v) { return wa::exp(v[0]); }},
      {"F(np.exp2, x)", [](A v) { return wa::exp2(v[0]); }},
      {"F(np.expm1, x)", [](A v) { return wa::expm1(v[0]); }},
      {"F(np.log, x)", [](A v) { return wa::log(v[0]); }},
      {"F(np.log2, x)", [](A v) { return wa::log2(v[0]); }},
      {"F(np.log10, x)", [](A v) { return wa::log10(v[0]); }},
      {"F(np.log1p, x)", [](A v) { return wa::log1p(v[0]); }},
      {"F(np.floor, x)", [](A v) { return wa::floor(v[0]); }},
      {"F(np.ceil, x)", [](A v) { return wa::ceil(v[0]); }},
      {"F(np.trunc, x)", [](A v) { return wa::trunc(v[0]); }},
      {"F(np.rint, x)", [](A v) { return wa::rint(v[0]); }},
      {"F(np.fix, x)", [](A v) { return wa::fix(v[0]); }},
      {"F(lambda a: np.round(a, 0), x)", [](A v) { return wa::round(v[0]); }},
      {"F(lambda a: np.round(a, 2), x)", [](A v) { return v[0].round(2); }},
      {"F(lambda a: np.around(a, -1), x)", [](A v) { return wa::around(v[0], -1); }},
      {"F(np.spacing, x)", [](A v) { return wa::spacing(v[0]); }},
      {"F(np.conj, x)", [](A v) { return v[0].conj(); }},
      {"F(np.invert, x)", [](A v) { return wa::invert(v[0]); }},
      {"F(np.bitwise_not, x)", [](A v) { return ~v[0]; }},
      {"F(np.logical_not, x)", [](A v) { return !v[0]; }},
      {"F(np.isnan, x)", [](A v) { return wa::isnan(v[0]); }},
      {"F(np.isinf, x)", [](A v) { return wa::isinf(v[0]); }},
      {"F(np.isfinite, x)", [](A v) { return wa::isfinite(v[0]); }},
      {"F(np.signbit, x)", [](A v) { return wa::signbit(v[0]); }},
      {"F(np.real, x)", [](A v) { return v[0].real(); }},
      {"F(np.imag, x)", [](A v) { return v[0].imag(); }},
      {"F(np.angle, x)", [](A v) { return wa::angle(v[0]); }},
      {"F(lambda a: np.angle(a, deg=True), x)", [](A v) { return wa::angle(v[0], true); }},
      {"F(np.iscomplex, x)", [](A v) { return wa::iscomplex(v[0]); }},
      {"F(np.isreal, x)", [](A v) { return wa::isreal(v[0]); }},
      {"F(np.nan_to_num, x)", [](A v) { return wa::nan_to_num(v[0]); }},
      {"F(lambda a: np.nan_to_num(a, nan=-1.0, posinf=9.0, neginf=-9.0), x)",
       [](A v) { return wa::nan_to_num(v[0], -1.0, 9.0, -9.0); }},
      {"F(lambda a: np.frexp(a)[0], x)", [](A v) { return wa::frexp(v[0]).first; }},
      {"F(lambda a: np.frexp(a)[1], x)", [](A v) { return wa::frexp(v[0]).second; }},
      {"F(lambda a: np.modf(a)[0], x)", [](A v) { return wa::modf(v[0]).first; }},
      {"F(lambda a: np.modf(a)[1], x)", [](A v) { return wa::modf(v[0]).second; }},
      {"F(lambda a: np.clip(a, 0, 2), x)", [](A v) { return v[0].clip(0, 2); }},
      {"F(lambda a: np.where(a, a, 3), x)", [](A v) { return wa::where(v[0], v[0], 3); }},
  };
  for (wa::DType dtype : kDTypes) {
    const wa::NDArray x = sample({7, 5}, dtype);
    const wa::Array ax = wa::from_array(x, wa::Chunks{{3, 3, 1}, {2, 3}});
    check_cases(cases, {{"x", x}}, {ax}, dtype_label(dtype));
  }
}

TEST_CASE("every binary ufunc matches NumPy on equal and mixed dtypes", "[array-elementwise]") {
  using A = const std::vector<wa::Array>&;
  const std::vector<Case> cases = {
      {"F(np.add, a, b)", [](A v) { return v[0] + v[1]; }},
      {"F(np.subtract, a, b)", [](A v) { return v[0] - v[1]; }},
      {"F(np.multiply, a, b)", [](A v) { return v[0] * v[1]; }},
      {"F(np.divide, a, b)", [](A v) { return wa::divide(v[0], v[1]); }},
      {"F(np.true_divide, a, b)", [](A v) { return v[0] / v[1]; }},
      {"F(np.floor_divide, a, b)", [](A v) { return wa::floor_divide(v[0], v[1]); }},
      {"F(np.remainder, a, b)", [](A v) { return v[0] % v[1]; }},
      {"F(np.mod, a, b)", [](A v) { return wa::mod(v[0], v[1]); }},
      {"F(np.fmod, a, b)", [](A v) { return wa::fmod(v[0], v[1]); }},
      {"F(lambda u, w: np.divmod(u, w)[0], a, b)", [](A v) { return wa::divmod(v[0], v[1]).first; }},
      {"F(lambda u, w: np.divmod(u, w)[1], a, b)", [](A v) { return wa::divmod(v[0], v[1]).second; }},
      {"F(np.power, a, p)", [](A v) { return wa::power(v[0], v[2]); }},
      {"F(np.float_power, a, p)", [](A v) { return wa::float_power(v[0], v[2]); }},
      {"F(np.arctan2, a, b)", [](A v) { return wa::arctan2(v[0], v[1]); }},
      {"F(np.hypot, a, b)", [](A v) { return wa::hypot(v[0], v[1]); }},
      {"F(np.logaddexp, a, b)", [](A v) { return wa::logaddexp(v[0], v[1]); }},
      {"F(np.logaddexp2, a, b)", [](A v) { return wa::logaddexp2(v[0], v[1]); }},
      {"F(np.maximum, a, b)", [](A v) { return wa::maximum(v[0], v[1]); }},
      {"F(np.minimum, a, b)", [](A v) { return wa::minimum(v[0], v[1]); }},
      {"F(np.fmax, a, b)", [](A v) { return wa::fmax(v[0], v[1]); }},
      {"F(np.fmin, a, b)", [](A v) { return wa::fmin(v[0], v[1]); }},
      {"F(np.copysign, a, b)", [](A v) { return wa::copysign(v[0], v[1]); }},
      {"F(np.nextafter, a, b)", [](A v) { return wa::nextafter(v[0], v[1]); }},
      {"F(np.ldexp, a, b)", [](A v) { return wa::ldexp(v[0], v[1]); }},
      {"F(np.bitwise_and, a, b)", [](A v) { return v[0] & v[1]; }},
      {"F(np.bitwise_or, a, b)", [](A v) { return v[0] | v[1]; }},
      {"F(np.bitwise_xor, a, b)", [](A v) { return v[0] ^ v[1]; }},
      {"F(np.left_shift, a, b)", [](A v) { return v[0] << v[1]; }},
      {"F(np.right_shift, a, b)", [](A v) { return v[0] >> v[1]; }},
      {"F(np.logical_and, a, b)", [](A v) { return wa::logical_and(v[0], v[1]); }},
      {"F(np.logical_or, a, b)", [](A v) { return wa::logical_or(v[0], v[1]); }},
      {"F(np.logical_xor, a, b)", [](A v) { return wa::logical_xor(v[0], v[1]); }},
      {"F(np.greater, a, b)", [](A v) { return v[0] > v[1]; }},
      {"F(np.greater_equal, a, b)", [](A v) { return v[0] >= v[1]; }},
      {"F(np.less, a, b)", [](A v) { return v[0] < v[1]; }},
      {"F(np.less_equal, a, b)", [](A v) { return v[0] <= v[1]; }},
      {"F(np.equal, a, b)", [](A v) { return v[0] == v[1]; }},
      {"F(np.not_equal, a, b)", [](A v) { return v[0] != v[1]; }},
      {"F(np.where, a > b, a, b)", [](A v) { return wa::where(v[0] > v[1], v[0], v[1]); }},
      {"F(np.clip, a, b, a + b)", [](A v) { return wa::clip(v[0], v[1], v[0] + v[1]); }},
  };
  std::vector<std::pair<wa::DType, wa::DType>> pairs;
  for (wa::DType t : kDTypes) pairs.emplace_back(t, t);
  using D = wa::DType;
  for (auto p : {std::pair{D::int8, D::uint8}, {D::int16, D::uint64}, {D::int32, D::float32}, {D::int64, D::uint64},
                 {D::uint8, D::float32}, {D::bool_, D::int8}, {D::float32, D::complex128}, {D::int64, D::complex64},
                 {D::float32, D::float64}, {D::uint8, D::int64}})
    pairs.push_back(p);
  for (auto [ta, tb] : pairs) {
    // b broadcasts along the rows of a; chunks agree along the shared axis.
    const wa::NDArray a = sample({7, 5}, ta), b = sample({5}, tb, 5), p = exponents({5}, tb);
    const std::vector<wa::Array> arrays = {wa::from_array(a, wa::Chunks{{3, 3, 1}, {2, 3}}),
                                           wa::from_array(b, wa::Chunks{{2, 3}}),
                                           wa::from_array(p, wa::Chunks{{2, 3}})};
    check_cases(cases, {{"a", a}, {"b", b}, {"p", p}}, arrays, dtype_label(ta) + ", " + dtype_label(tb));
  }
}

TEST_CASE("integer division by zero gives 0 and the minimum over -1 wraps, as in NumPy", "[array-elementwise]") {
  for (wa::DType dtype : {wa::DType::int8, wa::DType::int32, wa::DType::int64, wa::DType::uint16}) {
    const bool is_signed = wa::dtype_kind(dtype) == wa::DTypeKind::signed_integer;
    const std::int64_t lowest = dtype == wa::DType::int8 ? -128 : dtype == wa::DType::int32 ? INT32_MIN : INT64_MIN;
    const wa::NDArray a =
        wa::NDArray::from<std::int64_t>({7, is_signed ? -7 : 9, 0, is_signed ? lowest : 3, 5, 6}).astype(dtype);
    const wa::NDArray b = wa::NDArray::from<std::int64_t>({0, 0, 0, is_signed ? -1 : 2, 3, is_signed ? -4 : 4})
                              .astype(dtype);
    const wa::Array x = wa::from_array(a, 4), y = wa::from_array(b, 4);
    const auto want = weft::test::numpy(
        "np.seterr(all='ignore')\nout = [a // b, a % b, np.fmod(a, b), np.divmod(a, b)[0]]", {{"a", a}, {"b", b}});
    INFO(wa::dtype_name(dtype));
    weft::test::check_close(wa::floor_divide(x, y).compute(), want[0]);
    weft::test::check_close(wa::remainder(x, y).compute(), want[1]);
    weft::test::check_close(wa::fmod(x, y).compute(), want[2]);
    weft::test::check_close(wa::divmod(x, y).first.compute(), want[3]);
  }
}

TEST_CASE("operators take arrays and numbers on either side, numbers as weak scalars", "[array-elementwise]") {
  const wa::NDArray xv = sample({7, 5}, wa::DType::float64), iv = sample({7, 5}, wa::DType::int32, 3);
  const wa::NDArray fv = sample({7, 5}, wa::DType::float32, 1), bv = sample({7, 5}, wa::DType::int8, 2);
  const wa::Array x = wa::from_array(xv, 3), i = wa::from_array(iv, 3), f = wa::from_array(fv, 3),
                  b = wa::from_array(bv, 3);
  const std::vector<wa::Array> got = {
      x + 1.5, 2 * x,   x == 0,  x - i,   x * i,   i / 2,   i % 3,  -x,     i << 1, i >> 1, i & 6,
      i | 1,   i ^ 3,   ~i,      x < 0.5, 0.5 <= x, x > i, x >= i, x != i, !x,     +x,     f * 2,
      f + 1.5, b + 1,   3 - b,   f / 4,   i + f,   1.0 - f, i * true};
  const auto want = weft::test::numpy(
      "np.seterr(all='ignore')\n"
      "out = [x + 1.5, 2 * x, x == 0, x - i, x * i, i / 2, i % 3, -x, i << 1, i >> 1, i & 6,\n"
      "       i | 1, i ^ 3, ~i, x < 0.5, 0.5 <= x, x > i, x >= i, x != i, np.logical_not(x), +x, f * 2,\n"
      "       f + 1.5, b + 1, 3 - b, f / 4, i + f, 1.0 - f, i * True]",
      {{"x", xv}, {"i", iv}, {"f", fv}, {"b", bv}});
  REQUIRE(want.size() == got.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    INFO("operator case " << k);
    weft::test::check_close(got[k].compute(test_scheduler(k)), want[k], 1e-6);
  }
}

TEST_CASE("astype converts between every pair of dtypes as NumPy does", "[array-elementwise]") {
  std::string names;
  for (wa::DType t : kDTypes) names += std::string(names.empty() ? "" : ", ") + "'" + dtype_label(t) + "'";
  // Sources made by NumPy, so that negative floats to unsigned are NumPy's.
  const wa::NDArray v = wa::NDArray::from<double>({-3.7, -1.0, 0.0, 0.5, 2.9, 100.0, 1.5, -0.5});
  const auto sources = weft::test::numpy("out = [v.astype(t) for t in [" + names + "]]", {{"v", v}});
  REQUIRE(sources.size() == std::size(kDTypes));
  weft::test::NumpyInputs inputs;
  for (std::size_t s = 0; s < sources.size(); ++s) inputs.emplace_back("s" + std::to_string(s), sources[s]);
  const auto want = weft::test::numpy(
      "import warnings\nwarnings.simplefilter('ignore')\nout = [s.astype(t) for s in [" + [&] {
        std::string list;
        for (std::size_t s = 0; s < sources.size(); ++s) list += (s ? ", s" : "s") + std::to_string(s);
        return list;
      }() + "] for t in [" + names + "]]",
      inputs);
  std::size_t k = 0;
  for (const wa::NDArray& source : sources) {
    const wa::Array x = wa::from_array(source, 3);
    for (wa::DType to : kDTypes) {
      INFO(wa::dtype_name(source.dtype()) << " -> " << wa::dtype_name(to));
      const wa::Array y = x.astype(to);
      if (to == source.dtype()) CHECK(y.name() == x.name());
      weft::test::check_close(y.compute(test_scheduler(k)), want[k]);
      ++k;
    }
  }
}

TEST_CASE("operands broadcast with NumPy's rules and unify their chunks", "[array-elementwise]") {
  struct Operands {
    wa::Shape a_shape;
    wa::Chunks a_chunks;
    wa::Shape b_shape;
    wa::Chunks b_chunks;
    wa::Chunks out_chunks;
  };
  const std::vector<Operands> cases = {
      {{4, 1, 3}, {{1, 3}, {1}, {2, 1}}, {5, 1}, {{2, 3}, {1}}, {{1, 3}, {2, 3}, {2, 1}}},
      {{}, {}, {3}, {{1, 2}}, {{1, 2}}},
      {{}, {}, {}, {}, {}},
      {{0, 3}, {{0}, {3}}, {3}, {{3}}, {{0}, {3}}},
      {{1}, {{1}}, {0}, {{0}}, {{0}}},
      {{6}, {{4, 2}}, {6}, {{3, 3}}, {{3, 1, 2}}},
      {{2, 6}, {{1, 1}, {2, 2, 2}}, {6}, {{3, 3}}, {{1, 1}, {2, 1, 1, 2}}},
      {{3, 1}, {{1, 1, 1}, {1}}, {1, 4}, {{1}, {1, 1, 2}}, {{1, 1, 1}, {1, 1, 2}}},
  };
  const auto g_shape = [](const Operands& c) { return wa::broadcast_shapes({c.a_shape, c.b_shape}); };
  for (const Operands& c : cases) {
    INFO(wa::shape_str(c.a_shape) << " with " << wa::shape_str(c.b_shape));
    const wa::NDArray av = sample(c.a_shape, wa::DType::float64), bv = sample(c.b_shape, wa::DType::int16, 4);
    const wa::Array a = wa::from_array(av, wa::ChunkSpec(c.a_chunks));
    const wa::Array b = wa::from_array(bv, wa::ChunkSpec(c.b_chunks));
    const std::vector<wa::Array> got = {a * 2 + b, wa::where(a > b, a, b), wa::broadcast_arrays({a, b})[0],
                                        wa::broadcast_arrays({a, b})[1]};
    for (const wa::Array& g : got) CHECK(g.chunks() == c.out_chunks);
    const auto want = weft::test::numpy("out = [a * 2 + b, np.where(a > b, a, b), *np.broadcast_arrays(a, b)]",
                                        {{"a", av}, {"b", bv}});
    for (std::size_t k = 0; k < got.size(); ++k) {
      for (auto scheduler : test_schedulers()) {
        const wa::NDArray result = got[k].compute(scheduler);
        CHECK(result.shape() == g_shape(c));
        // The oracle returns 0-d results as shape (1,) (np.ascontiguousarray).
        weft::test::check_close(result.reshape(want[k].shape()), want[k]);
      }
    }
  }
}

TEST_CASE("broadcast_to stretches axes as dask does and checks its chunks", "[array-elementwise]") {
  const wa::NDArray v = sample({3, 1}, wa::DType::int32);
  const wa::Array x = wa::from_array(v, wa::Chunks{{2, 1}, {1}});
  const wa::Array y = wa::broadcast_to(x, {2, 3, 4});
  CHECK(y.chunks() == wa::Chunks{{2}, {2, 1}, {4}});
  const wa::Array z = wa::broadcast_to(x, {2, 3, 4}, wa::ChunkSpec(wa::Chunks{{1, 1}, {2, 1}, {3, 1}}));
  CHECK(z.chunks() == wa::Chunks{{1, 1}, {2, 1}, {3, 1}});
  CHECK(wa::broadcast_to(x, {3, 1}).name() == x.name());
  const auto want = weft::test::numpy("out = np.broadcast_to(v, (2, 3, 4))", {{"v", v}});
  for (auto scheduler : test_schedulers()) {
    weft::test::check_close(y.compute(scheduler), want[0]);
    weft::test::check_close(z.compute(scheduler), want[0]);
    weft::test::check_close((z + 1 - 1).compute(scheduler), want[0]);
  }
  CHECK_THROWS_WITH(wa::broadcast_to(x, {2, 4}), Contains("value.shape-mismatch"));
  CHECK_THROWS_WITH(wa::broadcast_to(x, {3, 4}, wa::ChunkSpec(wa::Chunks{{3}, {4}})), Contains("value.bad-chunks"));
  CHECK(wa::broadcast_shapes({{4, 1, 3}, {5, 1}, {}}) == wa::Shape{4, 5, 3});
}

TEST_CASE("a chain of elementwise operations is one task per block", "[array-elementwise]") {
  const wa::NDArray xv = sample({10, 8}, wa::DType::float64), vv = sample({8}, wa::DType::float32, 2);
  const wa::Array x = wa::from_array(xv, wa::Chunks{{4, 4, 2}, {3, 3, 2}});
  const wa::Array v = wa::from_array(vv, wa::Chunks{{3, 3, 2}});
  const wa::Array y = wa::sqrt(wa::abs((x + 1.5) * 2 - x)) + x * x;
  const wa::Array z = wa::where(y > 3, y * v + 1, wa::nan_to_num(x)).astype(wa::DType::float32);
  // x's 9 blocks, v's 3 and one task per output block.
  CHECK(y.graph().size() == 9 + 9);
  CHECK(z.graph().size() == 9 + 3 + 9);
  const auto* layer = wa::kernels::elementwise_layer(z);
  REQUIRE(layer != nullptr);
  CHECK(layer->leaves().size() == 2);
  // x is loaded once however often the chain uses it.
  CHECK(std::count_if(layer->program().begin(), layer->program().end(),
                      [](const wa::kernels::Instr& i) { return i.op == wa::kernels::Op::load; }) == 2);
  // Built twice, the same expression has the same keys.
  CHECK((wa::sqrt(wa::abs((x + 1.5) * 2 - x)) + x * x).name() == y.name());
  const auto want = weft::test::numpy(
      "np.seterr(all='ignore')\ny = np.sqrt(np.abs((x + 1.5) * 2 - x)) + x * x\n"
      "out = [y, np.where(y > 3, y * v + 1, np.nan_to_num(x)).astype(np.float32)]",
      {{"x", xv}, {"v", vv}});
  for (auto scheduler : test_schedulers()) {
    weft::test::check_close(y.compute(scheduler), want[0]);
    weft::test::check_close(z.compute(scheduler), want[1], 1e-6);
  }
}

TEST_CASE("tiles read transposed, broadcast and long blocks correctly", "[array-elementwise]") {
  std::vector<double> values(200 * 200);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>((i * 7919) % 1000) / 10.0;
  const wa::NDArray xv = wa::NDArray::from(values, {200, 200});
  const wa::NDArray rv = sample({200}, wa::DType::float64);
  const wa::Array x = wa::from_array(xv, wa::Chunks{{120, 80}, {80, 120}});
  const wa::Array row = wa::from_array(rv, wa::Chunks{{80, 120}});
  // Rows of 80 or 120 elements: tiles of many rows, a strided transposed leaf.
  const wa::Array square = (x + x.T()) * 0.5 - row;
  // One long run per block: tiles of 4096 elements and a shorter last one.
  const wa::Array flat = wa::from_array(wa::NDArray::from(values, {40000}), 15000);
  const wa::Array long_run = wa::exp(flat / 100) - flat;
  // Rows longer than a tile: each row in pieces; a leaf broadcast down columns.
  const wa::NDArray wide_v = wa::NDArray::from(values, {8, 5000});
  const wa::Array wide = wa::from_array(wide_v, wa::Chunks{{3, 5}, {5000}});
  const std::vector<double> head5000(values.begin(), values.begin() + 5000), head8(values.begin(), values.begin() + 8);
  const wa::Array wide_expr = wide * 2 - wa::from_array(wa::NDArray::from(head5000, {1, 5000}), 5000) +
                              wa::from_array(wa::NDArray::from(head8, {8, 1}), 4);
  const auto want = weft::test::numpy(
      "f = x.reshape(-1)\nw = f.reshape(8, 5000)\n"
      "out = [(x + x.T) * 0.5 - r, np.exp(f / 100) - f, w * 2 - f[:5000].reshape(1, 5000) + f[:8].reshape(8, 1)]",
      {{"x", xv}, {"r", rv}});
  for (auto scheduler : test_schedulers()) {
    weft::test::check_close(square.compute(scheduler), want[0]);
    weft::test::check_close(long_run.compute(scheduler), want[1]);
    weft::test::check_close(wide_expr.compute(scheduler), want[2]);
  }
}

TEST_CASE("for_each_tile hands a fused expression to a consumer tile by tile", "[array-elementwise]") {
  std::vector<double> values(30000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i % 101) - 50.0;
  const wa::NDArray xv = wa::NDArray::from(values, {100, 300});
  std::vector<float> column(300);
  for (std::size_t i = 0; i < column.size(); ++i) column[i] = static_cast<float>(i % 7) * 0.25f;
  const wa::NDArray cv = wa::NDArray::from(column, {300});
  const wa::Array x = wa::from_array(xv, wa::Chunks{{100}, {300}});
  const wa::Array y = x * 2 + wa::from_array(cv, 300) - x.T().T();
  const auto* layer = wa::kernels::elementwise_layer(y);
  REQUIRE(layer != nullptr);
  std::vector<wa::NDArray> leaves;
  for (const wa::Array& leaf : layer->leaves()) leaves.push_back(leaf.compute());
  double sum = 0;
  std::int64_t next = 0, tiles = 0;
  wa::kernels::for_each_tile(layer->program(), leaves, y.shape(),
                             [&](std::int64_t offset, const void* tile, std::int64_t count) {
                               CHECK(offset == next);
                               next = offset + count;
                               ++tiles;
                               const auto* p = static_cast<const double*>(tile);
                               for (std::int64_t k = 0; k < count; ++k) sum += p[k];
                             });
  CHECK(next == 30000);
  CHECK(tiles > 1);
  const auto want = weft::test::numpy("out = (x * 2 + c - x).sum()", {{"x", xv}, {"c", cv}});
  CHECK(sum == Approx(want[0].item<double>()));
}

TEST_CASE("elementwise block tasks travel as bytes and run the same after", "[array-elementwise]") {
  const wa::NDArray xv = sample({6, 4}, wa::DType::float64);
  const wa::Array x = wa::from_array(xv, 3);
  const wa::Array y = wa::maximum(x * 3, 1.0) - wa::from_array(sample({4}, wa::DType::int16), 3);
  const std::int64_t index[] = {1, 1};
  std::vector<std::byte> bytes;
  weft::detail::encode_task(*y.block_task(index), bytes);
  std::span<const std::byte> in(bytes);
  const weft::TaskPtr back = weft::detail::decode_task(in);
  const auto* layer = wa::kernels::elementwise_layer(y);
  std::vector<weft::Value> inputs;
  for (const auto& leaf_block : layer->leaf_blocks(index))
    inputs.push_back(weft::Value::of(leaf_block.compute()));
  std::vector<const weft::Value*> pointers;
  for (const weft::Value& v : inputs) pointers.push_back(&v);
  const wa::NDArray got = back->run(pointers).get<wa::NDArray>();
  const wa::NDArray whole = y.compute();
  CHECK(got.equals(whole.block(std::vector<std::int64_t>{3, 3}, std::vector<std::int64_t>{3, 1}).copy()));
}

TEST_CASE("elementwise errors are raised when the operation is built", "[array-elementwise]") {
  const wa::Array f = wa::from_array(sample({3, 4}, wa::DType::float64), 2);
  const wa::Array i = wa::from_array(sample({3, 4}, wa::DType::int32), 2);
  const wa::Array b = wa::from_array(sample({3, 4}, wa::DType::bool_), 2);
  const wa::Array v = wa::from_array(sample({5}, wa::DType::float64), 2);
  CHECK_THROWS_WITH(f + v, Contains("value.shape-mismatch") && Contains("(3, 4)") && Contains("(5,)"));
  CHECK_THROWS_WITH(wa::where(f > 0, f, v), Contains("value.shape-mismatch"));
  CHECK_THROWS_WITH(f & i, Contains("type.ufunc-dtype") && Contains("bitwise_and"));
  CHECK_THROWS_WITH(~f, Contains("type.ufunc-dtype"));
  CHECK_THROWS_WITH(-b, Contains("type.ufunc-dtype"));
  CHECK_THROWS_WITH(b - b, Contains("type.ufunc-dtype"));
  CHECK_THROWS_WITH(wa::ldexp(f, f), Contains("type.ufunc-dtype"));
  CHECK_THROWS_WITH(wa::floor_divide(f.astype(wa::DType::complex128), f), Contains("type.ufunc-dtype"));
  CHECK_THROWS_WITH(wa::power(i, -1), Contains("value.negative-int-power"));
  CHECK_THROWS_WITH(wa::clip(f, std::nullopt, std::nullopt), Contains("value.bad-argument"));
  // An exponent array with a negative element fails in its task, as NumPy's loop does.
  CHECK_THROWS_WITH(wa::power(i, i).compute(weft::scheduler::sync), Contains("negative integer powers"));
}
