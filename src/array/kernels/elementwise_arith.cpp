// src/array/kernels/elementwise_arith.cpp - arithmetic, comparison, logical
// and bitwise ops, with NumPy's results: integers wrap, integer division
// and remainder by zero give 0, floor division and remainder follow the
// divisor's sign (Python's rules), complex numbers order lexicographically.
#include <cmath>
#include <complex>
#include <limits>

#include "elementwise_loops.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {
namespace {

template <class T>
T wrap_add(T a, T b) {
  return static_cast<T>(static_cast<WrapType<T>>(a) + static_cast<WrapType<T>>(b));
}
template <class T>
T wrap_sub(T a, T b) {
  return static_cast<T>(static_cast<WrapType<T>>(a) - static_cast<WrapType<T>>(b));
}
template <class T>
T wrap_mul(T a, T b) {
  return static_cast<T>(static_cast<WrapType<T>>(a) * static_cast<WrapType<T>>(b));
}

// NumPy's ordering of complex numbers: by real part, then imaginary part.
template <class T>
bool complex_less(T a, T b) {
  return a.real() < b.real() || (a.real() == b.real() && a.imag() < b.imag());
}
template <class T>
bool complex_less_equal(T a, T b) {
  return a.real() < b.real() || (a.real() == b.real() && a.imag() <= b.imag());
}
template <class T>
bool is_nan(T a) {
  if constexpr (is_complex_v<T>) return std::isnan(a.real()) || std::isnan(a.imag());
  else if constexpr (std::is_floating_point_v<T>) return std::isnan(a);
  else return false;
}
template <class T>
bool truth(T a) {
  return a != T(0);
}

struct Add {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (is_bool_v<T>) return a || b;
    else if constexpr (is_integer_v<T>) return wrap_add(a, b);
    else return a + b;
  }
};
struct Subtract {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (is_integer_v<T>) return wrap_sub(a, b);
    else return a - b;
  }
};
struct Multiply {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (is_bool_v<T>) return a && b;
    else if constexpr (is_integer_v<T>) return wrap_mul(a, b);
    else return a * b;
  }
};
struct TrueDivide {
  template <class T>
  static T apply(T a, T b) { return a / b; }
};

// npy_divmod: the floored quotient of floats, with the remainder in `mod`.
template <class T>
T float_divmod(T a, T b, T& mod) {
  mod = std::fmod(a, b);
  if (b == 0) return a / b;
  T div = (a - mod) / b;
  if (mod != 0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= T(1);
    }
  } else {
    mod = std::copysign(T(0), b);
  }
  if (div == 0) return std::copysign(T(0), a / b);
  T floor_div = std::floor(div);
  if (div - floor_div > T(0.5)) floor_div += T(1);
  return floor_div;
}

struct FloorDivide {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      T mod;
      return float_divmod(a, b, mod);
    } else if constexpr (std::is_signed_v<T>) {
      if (b == 0) return T(0);
      if (b == T(-1)) return wrap_sub(T(0), a);  // MIN // -1 wraps to MIN, as NumPy
      const T q = static_cast<T>(a / b);
      return (a % b != 0 && ((a < 0) != (b < 0))) ? static_cast<T>(q - 1) : q;
    } else {
      return b == 0 ? T(0) : static_cast<T>(a / b);
    }
  }
};
struct Remainder {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      if (b == 0) return std::fmod(a, b);
      T mod;
      float_divmod(a, b, mod);
      return mod;
    } else if constexpr (std::is_signed_v<T>) {
      if (b == 0 || b == T(-1)) return T(0);
      const T r = static_cast<T>(a % b);
      return (r != 0 && ((r < 0) != (b < 0))) ? static_cast<T>(r + b) : r;
    } else {
      return b == 0 ? T(0) : static_cast<T>(a % b);
    }
  }
};
struct Fmod {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) return std::fmod(a, b);
    else if constexpr (std::is_signed_v<T>) return (b == 0 || b == T(-1)) ? T(0) : static_cast<T>(a % b);
    else return b == 0 ? T(0) : static_cast<T>(a % b);
  }
};

// NumPy's complex product: the plain formula (no C99 Annex G recovery of
// infinities), so that inf and nan come out as NumPy's do.
template <class C>
C complex_multiply(C a, C b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

// npy_cpow: repeated multiplication for small integral exponents.
template <class C>
C complex_power(C a, C b) {
  using R = typename C::value_type;
  if (b == C(0)) return C(1);
  if (a == C(0)) {
    if (b.real() > 0 && b.imag() == 0) return C(0);
    return C(std::numeric_limits<R>::quiet_NaN(), std::numeric_limits<R>::quiet_NaN());
  }
  if (b.imag() == 0 && b.real() > -100 && b.real() < 100 && b.real() == std::trunc(b.real())) {
    const int n = static_cast<int>(b.real());
    if (n == 1) return a;
    if (n == 2) return complex_multiply(a, a);
    if (n == 3) return complex_multiply(complex_multiply(a, a), a);
    C result(1), base = a;
    for (unsigned e = static_cast<unsigned>(n < 0 ? -n : n);;) {
      if (e & 1u) result = complex_multiply(result, base);
      e >>= 1;
      if (e == 0) break;
      base = complex_multiply(base, base);
    }
    return n < 0 ? C(1) / result : result;
  }
  return std::pow(a, b);
}

struct Power {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (is_complex_v<T>) {
      return complex_power(a, b);
    } else if constexpr (std::is_floating_point_v<T>) {
      return std::pow(a, b);
    } else {
      WrapType<T> result = 1, base = static_cast<WrapType<T>>(a);
      for (auto e = static_cast<std::make_unsigned_t<T>>(b); e != 0; e >>= 1) {
        if (e & 1u) result = static_cast<WrapType<T>>(result * base);
        base = static_cast<WrapType<T>>(base * base);
      }
      return static_cast<T>(result);
    }
  }
  template <class T>
  static void check(const T*, const T* b, std::int64_t n) {
    if constexpr (is_integer_v<T> && std::is_signed_v<T>) {
      for (std::int64_t i = 0; i < n; ++i)
        if (b[i] < 0)
          throw ValueError("negative-int-power", "power: integers to negative integer powers are not allowed");
    }
  }
};

// NumPy's maximum/minimum propagate NaN; fmax/fmin ignore it.
template <bool kMax, bool kPropagateNan>
struct Extremum {
  template <class T>
  static T apply(T a, T b) {
    if constexpr (is_bool_v<T>) {
      return kMax ? (a || b) : (a && b);
    } else {
      bool keep_a;
      if constexpr (is_complex_v<T>) keep_a = kMax ? complex_less_equal(b, a) : complex_less_equal(a, b);
      else keep_a = kMax ? a >= b : a <= b;
      if constexpr (kPropagateNan) return (keep_a || is_nan(a)) ? a : b;
      else return (keep_a || is_nan(b)) ? a : b;
    }
  }
};

struct BitwiseAnd {
  template <class T>
  static T apply(T a, T b) { return static_cast<T>(a & b); }
};
struct BitwiseOr {
  template <class T>
  static T apply(T a, T b) { return static_cast<T>(a | b); }
};
struct BitwiseXor {
  template <class T>
  static T apply(T a, T b) { return static_cast<T>(a ^ b); }
};
// Shifts by the bit width or more (or by a negative amount) give 0, or -1
// for a negative value shifted right, as NumPy's npy_lshift/npy_rshift.
struct LeftShift {
  template <class T>
  static T apply(T a, T b) {
    using U = std::make_unsigned_t<T>;
    if (static_cast<U>(b) >= sizeof(T) * 8) return T(0);
    return static_cast<T>(static_cast<WrapType<T>>(a) << static_cast<unsigned>(b));
  }
};
struct RightShift {
  template <class T>
  static T apply(T a, T b) {
    using U = std::make_unsigned_t<T>;
    if (static_cast<U>(b) >= sizeof(T) * 8) return (std::is_signed_v<T> && a < 0) ? T(-1) : T(0);
    return static_cast<T>(a >> static_cast<unsigned>(b));
  }
};

struct LogicalAnd {
  template <class T>
  static bool apply(T a, T b) { return truth(a) && truth(b); }
};
struct LogicalOr {
  template <class T>
  static bool apply(T a, T b) { return truth(a) || truth(b); }
};
struct LogicalXor {
  template <class T>
  static bool apply(T a, T b) { return truth(a) != truth(b); }
};
struct LogicalNot {
  template <class T>
  static bool apply(T a) { return !truth(a); }
};

struct Equal {
  template <class T>
  static bool apply(T a, T b) { return a == b; }
};
struct NotEqual {
  template <class T>
  static bool apply(T a, T b) { return a != b; }
};
struct Less {
  template <class T>
  static bool apply(T a, T b) {
    if constexpr (is_complex_v<T>) return complex_less(a, b);
    else return a < b;
  }
};
struct LessEqual {
  template <class T>
  static bool apply(T a, T b) {
    if constexpr (is_complex_v<T>) return complex_less_equal(a, b);
    else return a <= b;
  }
};
struct Greater {
  template <class T>
  static bool apply(T a, T b) { return Less::apply(b, a); }
};
struct GreaterEqual {
  template <class T>
  static bool apply(T a, T b) { return LessEqual::apply(b, a); }
};

struct MakeComplex {
  template <class T>
  static std::complex<T> apply(T re, T im) { return {re, im}; }
};
struct Where {
  template <class T>
  static T apply(bool c, T a, T b) { return c ? a : b; }
};

struct Negative {
  template <class T>
  static T apply(T a) {
    if constexpr (is_integer_v<T>) return wrap_sub(T(0), a);
    else return -a;
  }
};
struct Positive {
  template <class T>
  static T apply(T a) { return a; }
};
struct Absolute {
  template <class T>
  static auto apply(T a) {
    if constexpr (is_complex_v<T>) return std::hypot(a.real(), a.imag());
    else if constexpr (is_integer_v<T> && std::is_signed_v<T>) return a < 0 ? wrap_sub(T(0), a) : a;
    else if constexpr (std::is_floating_point_v<T>) return std::fabs(a);
    else return a;
  }
};
// NumPy 1.x's sign: of the real part, else of the imaginary part, for complex.
struct Sign {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) {
      using R = typename T::value_type;
      if (complex_less(T(0), a)) return T(1);
      if (complex_less(a, T(0))) return T(-1);
      if (a == T(0)) return T(0);
      return T(std::numeric_limits<R>::quiet_NaN());
    } else if constexpr (std::is_floating_point_v<T>) {
      return a > 0 ? T(1) : a < 0 ? T(-1) : a == 0 ? T(0) : a;
    } else {
      return static_cast<T>((T(0) < a) - (a < T(0)));
    }
  }
};
// Integer reciprocals truncate (1/2 -> 0) and give 0 for 0.
struct Reciprocal {
  template <class T>
  static T apply(T a) {
    if constexpr (is_integer_v<T>) return a == 0 ? T(0) : static_cast<T>(T(1) / a);
    else return T(1) / a;
  }
};
struct Square {
  template <class T>
  static T apply(T a) { return Multiply::apply(a, a); }
};
struct Conjugate {
  template <class T>
  static T apply(T a) {
    if constexpr (is_complex_v<T>) return std::conj(a);
    else return a;
  }
};
struct Invert {
  template <class T>
  static T apply(T a) {
    if constexpr (is_bool_v<T>) return !a;
    else return static_cast<T>(~a);
  }
};
struct Real {
  template <class T>
  static auto apply(T a) {
    if constexpr (is_complex_v<T>) return a.real();
    else return a;
  }
};
struct Imag {
  template <class T>
  static auto apply(T a) {
    if constexpr (is_complex_v<T>) return a.imag();
    else return T(0);
  }
};

}  // namespace

OpKernel arithmetic_kernel(Op op, DType arg) {
  switch (op) {
    case Op::add: return kernel_for<Op::add, Add>(arg);
    case Op::subtract: return kernel_for<Op::subtract, Subtract>(arg);
    case Op::multiply: return kernel_for<Op::multiply, Multiply>(arg);
    case Op::true_divide: return kernel_for<Op::true_divide, TrueDivide>(arg);
    case Op::floor_divide: return kernel_for<Op::floor_divide, FloorDivide>(arg);
    case Op::remainder: return kernel_for<Op::remainder, Remainder>(arg);
    case Op::fmod: return kernel_for<Op::fmod, Fmod>(arg);
    case Op::power: return kernel_for<Op::power, Power>(arg);
    case Op::maximum: return kernel_for<Op::maximum, Extremum<true, true>>(arg);
    case Op::minimum: return kernel_for<Op::minimum, Extremum<false, true>>(arg);
    case Op::fmax: return kernel_for<Op::fmax, Extremum<true, false>>(arg);
    case Op::fmin: return kernel_for<Op::fmin, Extremum<false, false>>(arg);
    case Op::bitwise_and: return kernel_for<Op::bitwise_and, BitwiseAnd>(arg);
    case Op::bitwise_or: return kernel_for<Op::bitwise_or, BitwiseOr>(arg);
    case Op::bitwise_xor: return kernel_for<Op::bitwise_xor, BitwiseXor>(arg);
    case Op::left_shift: return kernel_for<Op::left_shift, LeftShift>(arg);
    case Op::right_shift: return kernel_for<Op::right_shift, RightShift>(arg);
    case Op::logical_and: return kernel_for<Op::logical_and, LogicalAnd>(arg);
    case Op::logical_or: return kernel_for<Op::logical_or, LogicalOr>(arg);
    case Op::logical_xor: return kernel_for<Op::logical_xor, LogicalXor>(arg);
    case Op::logical_not: return kernel_for<Op::logical_not, LogicalNot>(arg);
    case Op::equal: return kernel_for<Op::equal, Equal>(arg);
    case Op::not_equal: return kernel_for<Op::not_equal, NotEqual>(arg);
    case Op::less: return kernel_for<Op::less, Less>(arg);
    case Op::less_equal: return kernel_for<Op::less_equal, LessEqual>(arg);
    case Op::greater: return kernel_for<Op::greater, Greater>(arg);
    case Op::greater_equal: return kernel_for<Op::greater_equal, GreaterEqual>(arg);
    case Op::make_complex: return kernel_for<Op::make_complex, MakeComplex>(arg);
    case Op::where: return kernel_for<Op::where, Where>(arg);
    case Op::negative: return kernel_for<Op::negative, Negative>(arg);
    case Op::positive: return kernel_for<Op::positive, Positive>(arg);
    case Op::absolute: return kernel_for<Op::absolute, Absolute>(arg);
    case Op::sign: return kernel_for<Op::sign, Sign>(arg);
    case Op::reciprocal: return kernel_for<Op::reciprocal, Reciprocal>(arg);
    case Op::square: return kernel_for<Op::square, Square>(arg);
    case Op::conjugate: return kernel_for<Op::conjugate, Conjugate>(arg);
    case Op::invert: return kernel_for<Op::invert, Invert>(arg);
    case Op::real: return kernel_for<Op::real, Real>(arg);
    case Op::imag: return kernel_for<Op::imag, Imag>(arg);
    default: return nullptr;
  }
}

}  // namespace weft::array::kernels
