// src/array/kernels/elementwise_loops.hpp - the loops every elementwise op
// kernel runs, shared by elementwise_arith.cpp and elementwise_math.cpp.
//
// An op is a functor with `static R apply(T a)` (or (a, b), or (c, a, b)),
// written once for all the C++ types of its loops. kernel_for<op, F>(dtype)
// instantiates the loop for every dtype of op_loops(op) and checks, at
// compile time, that the functor returns op_result_dtype's type.
#pragma once

#include <complex>
#include <cstdint>
#include <type_traits>

#include "avx2_clone.hpp"
#include "elementwise.hpp"

namespace weft::array::kernels {

template <class T>
inline constexpr bool is_complex_v = false;
template <class R>
inline constexpr bool is_complex_v<std::complex<R>> = true;
template <class T>
inline constexpr bool is_bool_v = std::is_same_v<T, bool>;
template <class T>
inline constexpr bool is_integer_v = std::is_integral_v<T> && !is_bool_v<T>;

/// The unsigned type integer arithmetic wraps in (at least unsigned int,
/// so that promotion never makes it signed): NumPy's integers wrap on
/// overflow, where C++'s signed arithmetic would be undefined.
template <class T>
using WrapType = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;

template <class F, class T>
void unary_loop(const void* const* args, void* out, std::int64_t n) {
  const T* a = static_cast<const T*>(args[0]);
  using R = decltype(F::apply(a[0]));
  R* o = static_cast<R*>(out);
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) o[i] = F::apply(a[i]);
}

/// Binary ops; U is the second operand's type (int64 for ldexp). A functor
/// with `check(a, b, n)` validates the operands first (it may throw, which
/// a simd loop may not).
template <class F, class T, class U>
WEFT_AVX2_CLONE void binary_loop(const void* const* args, void* out, std::int64_t n) {
  const T* a = static_cast<const T*>(args[0]);
  const U* b = static_cast<const U*>(args[1]);
  using R = decltype(F::apply(a[0], b[0]));
  R* o = static_cast<R*>(out);
  if constexpr (requires { F::check(a, b, n); }) F::check(a, b, n);
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) o[i] = F::apply(a[i], b[i]);
}

template <class F, class T>
void ternary_loop(const void* const* args, void* out, std::int64_t n) {
  const bool* c = static_cast<const bool*>(args[0]);
  const T* a = static_cast<const T*>(args[1]);
  const T* b = static_cast<const T*>(args[2]);
  T* o = static_cast<T*>(out);
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) o[i] = F::apply(c[i], a[i], b[i]);
}

/// The kernel of functor F for op `op` and loop dtype `arg`; null for a
/// dtype outside op_loops(op).
template <Op op, class F>
OpKernel kernel_for(DType arg) {
  return dispatch(arg, [](auto tag) -> OpKernel {
    using T = typename decltype(tag)::type;
    constexpr DType kArg = dtype_of<T>;
    if constexpr ((op_loops(op) & dtype_bit(kArg)) == 0) {
      return nullptr;
    } else if constexpr (op_arity(op) == 1) {
      static_assert(dtype_of<decltype(F::apply(T{}))> == op_result_dtype(op, kArg));
      return &unary_loop<F, T>;
    } else if constexpr (op_arity(op) == 2) {
      using U = std::conditional_t<op == Op::ldexp, std::int64_t, T>;
      static_assert(dtype_of<decltype(F::apply(T{}, U{}))> == op_result_dtype(op, kArg));
      return &binary_loop<F, T, U>;
    } else {
      return &ternary_loop<F, T>;
    }
  });
}

}  // namespace weft::array::kernels
