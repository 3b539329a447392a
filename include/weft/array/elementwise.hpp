// weft/array/elementwise.hpp - NumPy's ufuncs and operators on arrays
// (dask.array's elementwise functions).
//
//   namespace wa = weft::array;
//   wa::Array y = wa::sqrt(x * x + 1.5) > 2;      // bool array
//   wa::Array z = wa::where(y, x, 0);
//
// Operands broadcast with NumPy's rules; operands cut differently along an
// axis are rechunked to the common refinement of their chunks (dask's
// unify_chunks). Result dtypes follow NumPy's loops: sqrt(int32) -> float64,
// int / int -> float64, comparisons -> bool, bitwise ops only on integers
// and bool (TypeError "type.ufunc-dtype" otherwise); numbers written in C++
// are weak scalars (dtype.hpp). Integers wrap on overflow; integer floor
// division and remainder follow the divisor's sign and give 0 for a zero
// divisor, as NumPy does. float16 does not exist here: where NumPy's loop
// would give float16 (sqrt of int8, uint8 or bool) the result is float32.
// Complex sign is NumPy 1.x's (the sign of the real part, else of the
// imaginary part).
//
// Chains of elementwise operations fuse: an operation on the result of
// another one with the same shape and chunks extends its expression, so a
// chain is one task per block, and each task evaluates the whole chain
// tile by tile (a few thousand elements at a time) in one pass over memory.
//
// Every function validates shapes and dtypes when called, before any task
// exists: ValueError "value.shape-mismatch" for operands that do not
// broadcast, TypeError "type.ufunc-dtype" for a dtype the ufunc has no loop
// for.
#pragma once

#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/chunks.hpp"
#include "weft/array/dtype.hpp"

namespace weft::array {

/// An operand of an elementwise function: an Array or a number (a C++
/// number or a Scalar).
class Operand {
 public:
  Operand(const Array& x) : value_(x) {}  // NOLINT(google-explicit-constructor)
  Operand(const Scalar& s) : value_(s) {}  // NOLINT
  template <Element T>
  Operand(T v) : value_(Scalar(v)) {}  // NOLINT: add(x, 1.5)

  bool is_array() const noexcept { return std::holds_alternative<Array>(value_); }
  const Array& array() const { return std::get<Array>(value_); }
  const Scalar& scalar() const { return std::get<Scalar>(value_); }

 private:
  std::variant<Array, Scalar> value_;
};

// --- arithmetic ---------------------------------------------------------------
Array add(const Operand& a, const Operand& b);
Array subtract(const Operand& a, const Operand& b);
Array multiply(const Operand& a, const Operand& b);
/// True division: integers give float64.
Array divide(const Operand& a, const Operand& b);
Array true_divide(const Operand& a, const Operand& b);
Array floor_divide(const Operand& a, const Operand& b);
Array remainder(const Operand& a, const Operand& b);
Array mod(const Operand& a, const Operand& b);
/// C's fmod: the remainder has the dividend's sign.
Array fmod(const Operand& a, const Operand& b);
/// Integers to negative integer powers fail when computed (ValueError
/// "value.negative-int-power"; at once for a scalar exponent).
Array power(const Operand& a, const Operand& b);
/// Power in float64 or complex128 at least.
Array float_power(const Operand& a, const Operand& b);
Array negative(const Array& x);
Array positive(const Array& x);
/// Complex -> its real dtype.
Array absolute(const Array& x);
Array abs(const Array& x);
Array fabs(const Array& x);
Array sign(const Array& x);
Array reciprocal(const Array& x);
Array square(const Array& x);
Array sqrt(const Array& x);
Array cbrt(const Array& x);
/// (floor_divide(a, b), remainder(a, b)).
std::pair<Array, Array> divmod(const Operand& a, const Operand& b);

// --- comparison and logic -------------------------------------------------------
Array greater(const Operand& a, const Operand& b);
Array greater_equal(const Operand& a, const Operand& b);
Array less(const Operand& a, const Operand& b);
Array less_equal(const Operand& a, const Operand& b);
Array equal(const Operand& a, const Operand& b);
Array not_equal(const Operand& a, const Operand& b);
Array logical_and(const Operand& a, const Operand& b);
Array logical_or(const Operand& a, const Operand& b);
Array logical_xor(const Operand& a, const Operand& b);
Array logical_not(const Array& x);
Array maximum(const Operand& a, const Operand& b);
Array minimum(const Operand& a, const Operand& b);
/// maximum/minimum ignoring NaN.
Array fmax(const Operand& a, const Operand& b);
Array fmin(const Operand& a, const Operand& b);

// --- bitwise (integers and bool) ---------------------------------------------------
Array bitwise_and(const Operand& a, const Operand& b);
Array bitwise_or(const Operand& a, const Operand& b);
Array bitwise_xor(const Operand& a, const Operand& b);
Array bitwise_not(const Array& x);
Array invert(const Array& x);
Array left_shift(const Operand& a, const Operand& b);
Array right_shift(const Operand& a, const Operand& b);

// --- trigonometric and hyperbolic ------------------------------------------------
Array sin(const Array& x);
Array cos(const Array& x);
Array tan(const Array& x);
Array arcsin(const Array& x);
Array arccos(const Array& x);
Array arctan(const Array& x);
Array sinh(const Array& x);
Array cosh(const Array& x);
Array tanh(const Array& x);
Array arcsinh(const Array& x);
Array arccosh(const Array& x);
Array arctanh(const Array& x);
Array arctan2(const Operand& y, const Operand& x);
Array hypot(const Operand& a, const Operand& b);
Array deg2rad(const Array& x);
Array rad2deg(const Array& x);
Array degrees(const Array& x);
Array radians(const Array& x);

// --- exponents and logarithms ------------------------------------------------------
Array exp(const Array& x);
Array exp2(const Array& x);
Array expm1(const Array& x);
Array log(const Array& x);
Array log2(const Array& x);
Array log10(const Array& x);
Array log1p(const Array& x);
Array logaddexp(const Operand& a, const Operand& b);
Array logaddexp2(const Operand& a, const Operand& b);

// --- rounding -------------------------------------------------------------------
Array floor(const Array& x);
Array ceil(const Array& x);
Array trunc(const Array& x);
Array rint(const Array& x);
/// Rounds towards zero (np.fix).
Array fix(const Array& x);
/// np.round: half to even, at `decimals` places (negative: tens, hundreds,
/// ...); integers keep their dtype.
Array round(const Array& x, int decimals = 0);
Array around(const Array& x, int decimals = 0);

// --- floating-point functions ------------------------------------------------------
Array isnan(const Array& x);
Array isinf(const Array& x);
Array isfinite(const Array& x);
Array signbit(const Array& x);
Array copysign(const Operand& a, const Operand& b);
Array nextafter(const Operand& a, const Operand& b);
Array spacing(const Array& x);
/// x * 2**e; e must be integer.
Array ldexp(const Operand& x, const Operand& e);
/// (mantissa, int32 exponent) with x == mantissa * 2**exponent.
std::pair<Array, Array> frexp(const Array& x);
/// (fractional part, integral part).
std::pair<Array, Array> modf(const Array& x);
/// Replaces NaN by `nan` and infinities by `posinf`/`neginf` (default: the
/// dtype's largest and lowest finite values); integers are returned as they are.
Array nan_to_num(const Array& x, double nan = 0.0, std::optional<double> posinf = std::nullopt,
                 std::optional<double> neginf = std::nullopt);

// --- complex numbers --------------------------------------------------------------
Array real(const Array& x);
Array imag(const Array& x);
Array conj(const Array& x);
Array conjugate(const Array& x);
/// The argument of complex numbers, in radians or degrees.
Array angle(const Array& x, bool deg = false);
/// Elements with a nonzero imaginary part (false for real dtypes).
Array iscomplex(const Array& x);
Array isreal(const Array& x);

// --- selection and conversion ------------------------------------------------------
/// Elements of `a` where `cond` is true (nonzero), else of `b`.
Array where(const Operand& cond, const Operand& a, const Operand& b);
/// minimum(maximum(x, lo), hi), either bound optional.
Array clip(const Operand& x, const std::optional<Operand>& lo, const std::optional<Operand>& hi);
/// NumPy's astype (unsafe casting); x itself for its own dtype.
Array astype(const Array& x, DType dtype);

// --- broadcasting -------------------------------------------------------------
/// The shape NumPy broadcasts `shapes` to; ValueError "value.shape-mismatch".
Shape broadcast_shapes(const std::vector<Shape>& shapes);
/// x as `shape` (dask.array.broadcast_to): new leading axes and stretched
/// length-1 axes are one block each unless `chunks` says otherwise; `chunks`
/// must keep x's chunks on the axes x already has at full length
/// (ValueError "value.bad-chunks").
Array broadcast_to(const Array& x, const Shape& shape, const std::optional<ChunkSpec>& chunks = std::nullopt);
/// Every array broadcast to their common shape, with unified chunks.
std::vector<Array> broadcast_arrays(const std::vector<Array>& arrays);

// --- operators ------------------------------------------------------------------
namespace detail {
template <class T>
concept OperandLike = std::same_as<std::remove_cvref_t<T>, Array> || std::same_as<std::remove_cvref_t<T>, Scalar> ||
                      Element<std::remove_cvref_t<T>>;
/// Two operands of which at least one is an Array: `x + 1.5`, `2 * x`, `x == y`.
template <class A, class B>
concept ArrayOperands = OperandLike<A> && OperandLike<B> &&
                        (std::same_as<std::remove_cvref_t<A>, Array> || std::same_as<std::remove_cvref_t<B>, Array>);
}  // namespace detail

#define WEFT_ARRAY_BINARY_OPERATOR(op, function)              \
  template <class A, class B>                                 \
    requires detail::ArrayOperands<A, B>                      \
  Array operator op(const A& a, const B& b) {                 \
    return function(Operand(a), Operand(b));                  \
  }
WEFT_ARRAY_BINARY_OPERATOR(+, add)
WEFT_ARRAY_BINARY_OPERATOR(-, subtract)
WEFT_ARRAY_BINARY_OPERATOR(*, multiply)
WEFT_ARRAY_BINARY_OPERATOR(/, true_divide)
WEFT_ARRAY_BINARY_OPERATOR(%, remainder)
WEFT_ARRAY_BINARY_OPERATOR(==, equal)
WEFT_ARRAY_BINARY_OPERATOR(!=, not_equal)
WEFT_ARRAY_BINARY_OPERATOR(<, less)
WEFT_ARRAY_BINARY_OPERATOR(<=, less_equal)
WEFT_ARRAY_BINARY_OPERATOR(>, greater)
WEFT_ARRAY_BINARY_OPERATOR(>=, greater_equal)
WEFT_ARRAY_BINARY_OPERATOR(&, bitwise_and)
WEFT_ARRAY_BINARY_OPERATOR(|, bitwise_or)
WEFT_ARRAY_BINARY_OPERATOR(^, bitwise_xor)
WEFT_ARRAY_BINARY_OPERATOR(<<, left_shift)
WEFT_ARRAY_BINARY_OPERATOR(>>, right_shift)
#undef WEFT_ARRAY_BINARY_OPERATOR

inline Array operator-(const Array& x) { return negative(x); }
inline Array operator+(const Array& x) { return positive(x); }
inline Array operator~(const Array& x) { return invert(x); }
inline Array operator!(const Array& x) { return logical_not(x); }

}  // namespace weft::array
