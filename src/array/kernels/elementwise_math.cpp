// src/array/kernels/elementwise_math.cpp - exponents, logarithms,
// trigonometry, rounding and floating-point classification, as NumPy's
// loops compute them (npy_math's formulas where NumPy has its own).
#include <climits>
#include <cmath>
#include <complex>
#include <limits>
#include <numbers>

#include "elementwise_loops.hpp"

namespace weft::array::kernels {
namespace {

// A functor per <cmath> function that also has a std::complex overload.
#define WEFT_MATH_FUNCTOR(Name, fn)                   \
  struct Name {                                       \
    template <class T>                                \
    static T apply(T a) { return std::fn(a); }        \
  };
WEFT_MATH_FUNCTOR(Sqrt, sqrt)
WEFT_MATH_FUNCTOR(Sin, sin)
WEFT_MATH_FUNCTOR(Cos, cos)
WEFT_MATH_FUNCTOR(Tan, tan)
WEFT_MATH_FUNCTOR(Arcsin, asin)
WEFT_MATH_FUNCTOR(Arccos, acos)
WEFT_MATH_FUNCTOR(Arctan, atan)
WEFT_MATH_FUNCTOR(Sinh, sinh)
WEFT_MATH_FUNCTOR(Cosh, cosh)
WEFT_MATH_FUNCTOR(Tanh, tanh)
WEFT_MATH_FUNCTOR(Arcsinh, asinh)
WEFT_MATH_FUNCTOR(Arccosh, acosh)
WEFT_MATH_FUNCTOR(Arctanh, atanh)
WEFT_MATH_FUNCTOR(Exp, exp)
WEFT_MATH_FUNCTOR(Log, log)
WEFT_MATH_FUNCTOR(Log10, log10)
WEFT_MATH_FUNCTOR(Cbrt, cbrt)
WEFT_MATH_FUNCTOR(Fabs, fabs)
WEFT_MATH_FUNCTOR(Floor, floor)
WEFT_MATH_FUNCTOR(Ceil, ceil)
WEFT_MATH_FUNCTOR(Trunc, trunc)
#undef WEFT_MATH_FUNCTOR

template <class T>
constexpr T kLn2 = std::numbers::ln2_v<T>;

struct Exp2 {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) return std::exp(a * kLn2<typename T::value_type>);
    else return std::exp2(a);
  }
};
struct Log2 {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) return std::log(a) * std::numbers::log2e_v<typename T::value_type>;
    else return std::log2(a);
  }
};
// nc_expm1: accurate for small |z|.
struct Expm1 {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) {
      using R = typename T::value_type;
      const R half_sin = std::sin(a.imag() / 2);
      return {std::expm1(a.real()) * std::cos(a.imag()) - 2 * half_sin * half_sin,
              std::exp(a.real()) * std::sin(a.imag())};
    } else {
      return std::expm1(a);
    }
  }
};
struct Log1p {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) return std::log(a + T(1));
    else return std::log1p(a);
  }
};
struct Rint {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) return {std::nearbyint(a.real()), std::nearbyint(a.imag())};
    else return std::nearbyint(a);
  }
};
struct Deg2Rad {
  template <class T>
  static T apply(T a) { return a * (std::numbers::pi_v<T> / T(180)); }
};
struct Rad2Deg {
  template <class T>
  static T apply(T a) { return a * (T(180) / std::numbers::pi_v<T>); }
};
// npy_spacing: the distance to the next float away from zero; NaN for inf.
struct Spacing {
  template <class T>
  static T apply(T a) {
    if (std::isinf(a)) return std::numeric_limits<T>::quiet_NaN();
    return std::nextafter(a, std::copysign(std::numeric_limits<T>::infinity(), a)) - a;
  }
};

struct IsNan {
  template <class T>
  static bool apply(T a) {
    if constexpr (is_complex_v<T>) return std::isnan(a.real()) || std::isnan(a.imag());
    else if constexpr (std::is_floating_point_v<T>) return std::isnan(a);
    else return false;
  }
};
struct IsInf {
  template <class T>
  static bool apply(T a) {
    if constexpr (is_complex_v<T>) return std::isinf(a.real()) || std::isinf(a.imag());
    else if constexpr (std::is_floating_point_v<T>) return std::isinf(a);
    else return false;
  }
};
struct IsFinite {
  template <class T>
  static bool apply(T a) {
    if constexpr (is_complex_v<T>) return std::isfinite(a.real()) && std::isfinite(a.imag());
    else if constexpr (std::is_floating_point_v<T>) return std::isfinite(a);
    else return true;
  }
};
struct Signbit {
  template <class T>
  static bool apply(T a) { return std::signbit(a); }
};

struct FrexpMantissa {
  template <class T>
  static T apply(T a) {
    int exponent;
    return std::frexp(a, &exponent);
  }
};
struct FrexpExponent {
  template <class T>
  static std::int32_t apply(T a) {
    int exponent = 0;
    std::frexp(a, &exponent);
    return std::isfinite(a) ? exponent : 0;
  }
};
struct ModfFraction {
  template <class T>
  static T apply(T a) {
    T integral;
    return std::modf(a, &integral);
  }
};

struct Arctan2 {
  template <class T>
  static T apply(T a, T b) { return std::atan2(a, b); }
};
struct Hypot {
  template <class T>
  static T apply(T a, T b) { return std::hypot(a, b); }
};
struct Copysign {
  template <class T>
  static T apply(T a, T b) { return std::copysign(a, b); }
};
struct Nextafter {
  template <class T>
  static T apply(T a, T b) { return std::nextafter(a, b); }
};
// npy_logaddexp: log(exp(a) + exp(b)) without overflow.
struct Logaddexp {
  template <class T>
  static T apply(T a, T b) {
    if (a == b) return a + kLn2<T>;  // also infinities of one sign
    const T d = a - b;
    if (d > 0) return a + std::log1p(std::exp(-d));
    if (d <= 0) return b + std::log1p(std::exp(d));
    return d;  // NaN
  }
};
struct Logaddexp2 {
  template <class T>
  static T apply(T a, T b) {
    if (a == b) return a + T(1);
    const T d = a - b;
    if (d > 0) return a + std::numbers::log2e_v<T> * std::log1p(std::exp2(-d));
    if (d <= 0) return b + std::numbers::log2e_v<T> * std::log1p(std::exp2(d));
    return d;
  }
};
// The exponent is int64 (NumPy's 'fl' loop); beyond int it saturates.
struct Ldexp {
  template <class T>
  static T apply(T a, std::int64_t e) {
    const int clamped = e > INT_MAX ? INT_MAX : e < INT_MIN ? INT_MIN : static_cast<int>(e);
    return std::ldexp(a, clamped);
  }
};

}  // namespace

OpKernel math_kernel(Op op, DType arg) {
  switch (op) {
    case Op::sqrt: return kernel_for<Op::sqrt, Sqrt>(arg);
    case Op::cbrt: return kernel_for<Op::cbrt, Cbrt>(arg);
    case Op::fabs: return kernel_for<Op::fabs, Fabs>(arg);
    case Op::sin: return kernel_for<Op::sin, Sin>(arg);
    case Op::cos: return kernel_for<Op::cos, Cos>(arg);
    case Op::tan: return kernel_for<Op::tan, Tan>(arg);
    case Op::arcsin: return kernel_for<Op::arcsin, Arcsin>(arg);
    case Op::arccos: return kernel_for<Op::arccos, Arccos>(arg);
    case Op::arctan: return kernel_for<Op::arctan, Arctan>(arg);
    case Op::sinh: return kernel_for<Op::sinh, Sinh>(arg);
    case Op::cosh: return kernel_for<Op::cosh, Cosh>(arg);
    case Op::tanh: return kernel_for<Op::tanh, Tanh>(arg);
    case Op::arcsinh: return kernel_for<Op::arcsinh, Arcsinh>(arg);
    case Op::arccosh: return kernel_for<Op::arccosh, Arccosh>(arg);
    case Op::arctanh: return kernel_for<Op::arctanh, Arctanh>(arg);
    case Op::deg2rad: return kernel_for<Op::deg2rad, Deg2Rad>(arg);
    case Op::rad2deg: return kernel_for<Op::rad2deg, Rad2Deg>(arg);
    case Op::exp: return kernel_for<Op::exp, Exp>(arg);
    case Op::exp2: return kernel_for<Op::exp2, Exp2>(arg);
    case Op::expm1: return kernel_for<Op::expm1, Expm1>(arg);
    case Op::log: return kernel_for<Op::log, Log>(arg);
    case Op::log2: return kernel_for<Op::log2, Log2>(arg);
    case Op::log10: return kernel_for<Op::log10, Log10>(arg);
    case Op::log1p: return kernel_for<Op::log1p, Log1p>(arg);
    case Op::floor: return kernel_for<Op::floor, Floor>(arg);
    case Op::ceil: return kernel_for<Op::ceil, Ceil>(arg);
    case Op::trunc: return kernel_for<Op::trunc, Trunc>(arg);
    case Op::rint: return kernel_for<Op::rint, Rint>(arg);
    case Op::spacing: return kernel_for<Op::spacing, Spacing>(arg);
    case Op::isnan: return kernel_for<Op::isnan, IsNan>(arg);
    case Op::isinf: return kernel_for<Op::isinf, IsInf>(arg);
    case Op::isfinite: return kernel_for<Op::isfinite, IsFinite>(arg);
    case Op::signbit: return kernel_for<Op::signbit, Signbit>(arg);
    case Op::frexp_mantissa: return kernel_for<Op::frexp_mantissa, FrexpMantissa>(arg);
    case Op::frexp_exponent: return kernel_for<Op::frexp_exponent, FrexpExponent>(arg);
    case Op::modf_fraction: return kernel_for<Op::modf_fraction, ModfFraction>(arg);
    case Op::arctan2: return kernel_for<Op::arctan2, Arctan2>(arg);
    case Op::hypot: return kernel_for<Op::hypot, Hypot>(arg);
    case Op::copysign: return kernel_for<Op::copysign, Copysign>(arg);
    case Op::nextafter: return kernel_for<Op::nextafter, Nextafter>(arg);
    case Op::logaddexp: return kernel_for<Op::logaddexp, Logaddexp>(arg);
    case Op::logaddexp2: return kernel_for<Op::logaddexp2, Logaddexp2>(arg);
    case Op::ldexp: return kernel_for<Op::ldexp, Ldexp>(arg);
    default: return nullptr;
  }
}

}  // namespace weft::array::kernels
