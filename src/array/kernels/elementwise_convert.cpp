// src/array/kernels/elementwise_convert.cpp - dtype conversion while
// copying (loads of leaf blocks and casts), as NumPy's unsafe astype.
//
// Float to integer conversions of NaN, infinities and values out of range
// are undefined in C++; here they go through int64 (INT64_MIN for what
// int64 cannot hold, as x86's conversion gives) and wrap to the target.
#include <complex>
#include <cstdint>
#include <type_traits>

#include "elementwise_loops.hpp"

namespace weft::array::kernels {
namespace {

template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (is_bool_v<To>) {
    return v != From(0);
  } else if constexpr (is_complex_v<From> && !is_complex_v<To>) {
    return convert<To>(v.real());
  } else if constexpr (is_complex_v<To>) {
    if constexpr (is_complex_v<From>) return To(static_cast<typename To::value_type>(v.real()),
                                                static_cast<typename To::value_type>(v.imag()));
    else return To(static_cast<typename To::value_type>(v), 0);
  } else if constexpr (std::is_floating_point_v<From> && is_integer_v<To>) {
    constexpr From kTwo63 = static_cast<From>(9223372036854775808.0);
    if constexpr (std::is_same_v<To, std::uint64_t>) {
      if (v >= kTwo63 && v < 2 * kTwo63) return static_cast<To>(v);
    }
    if (!(v >= -kTwo63 && v < kTwo63)) return static_cast<To>(INT64_MIN);
    return static_cast<To>(static_cast<std::int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

template <class From, class To>
void convert_strided(const void* src, std::int64_t stride, void* dst, std::int64_t n) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  if (stride == 1) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) d[i] = convert<To>(s[i]);
  } else if (stride == 0) {
    const To v = convert<To>(s[0]);
    for (std::int64_t i = 0; i < n; ++i) d[i] = v;
  } else {
    for (std::int64_t i = 0; i < n; ++i) d[i] = convert<To>(s[i * stride]);
  }
}

}  // namespace

ConvertKernel convert_kernel(DType from, DType to) {
  return dispatch(from, [to](auto from_tag) {
    return dispatch(to, [](auto to_tag) -> ConvertKernel {
      return &convert_strided<typename decltype(from_tag)::type, typename decltype(to_tag)::type>;
    });
  });
}

}  // namespace weft::array::kernels
