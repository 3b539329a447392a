// weft/array/dtype.hpp - element types of arrays, with NumPy's promotion rules.
//
// DType names NumPy's 13 numeric types. result_type() follows NumPy's
// promotion table (np.result_type of two dtypes; tests check every pair
// against python3-numpy). Scalars written in C++ (`x + 1.5`) are "weak" as
// NumPy 2 treats Python scalars (NEP 50): they take the array's dtype when
// their kind fits (float32 + 1.5 -> float32, int8 + 1 -> int8) and the
// default type of their kind otherwise (int32 + 1.5 -> float64).
// dispatch(dtype, f) calls f with a tag of the C++ type, so that a kernel is
// written once as a template and instantiated per dtype.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft::array {

enum class DType : std::uint8_t {
  bool_,
  int8,
  int16,
  int32,
  int64,
  uint8,
  uint16,
  uint32,
  uint64,
  float32,
  float64,
  complex64,
  complex128,
};
inline constexpr int kDTypeCount = 13;

/// NumPy's kinds: 'b', 'i', 'u', 'f', 'c'.
enum class DTypeKind : std::uint8_t { boolean, signed_integer, unsigned_integer, floating, complex };

/// NumPy's name: "bool", "int8", ..., "complex128".
std::string_view dtype_name(DType t) noexcept;
/// The DType of a NumPy name ("float64", "f8", "<f8", "double", "int", "bool", ...);
/// TypeError "type.unknown-dtype" naming the text otherwise.
DType dtype_from_name(std::string_view name);
std::size_t itemsize(DType t) noexcept;
DTypeKind dtype_kind(DType t) noexcept;
inline bool is_integer(DType t) noexcept {
  return dtype_kind(t) == DTypeKind::signed_integer || dtype_kind(t) == DTypeKind::unsigned_integer;
}
inline bool is_inexact(DType t) noexcept {
  return dtype_kind(t) == DTypeKind::floating || dtype_kind(t) == DTypeKind::complex;
}
inline bool is_complex(DType t) noexcept { return dtype_kind(t) == DTypeKind::complex; }

/// np.result_type(a, b).
DType result_type(DType a, DType b) noexcept;
/// np.can_cast(from, to, casting): "no", "equiv", "safe", "same_kind", "unsafe".
enum class Casting : std::uint8_t { no, equiv, safe, same_kind, unsafe };
bool can_cast(DType from, DType to, Casting casting = Casting::safe) noexcept;
/// The float type a true division or a mean of `t` gives (np.true_divide):
/// float64 for integers and bool, `t` itself for inexact types.
DType float_result(DType t) noexcept;
/// The real type of a complex type (complex64 -> float32); `t` itself otherwise.
DType real_type(DType t) noexcept;

template <class T>
struct DTypeOf;
template <> struct DTypeOf<bool> { static constexpr DType value = DType::bool_; };
template <> struct DTypeOf<std::int8_t> { static constexpr DType value = DType::int8; };
template <> struct DTypeOf<std::int16_t> { static constexpr DType value = DType::int16; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::int32; };
template <> struct DTypeOf<std::int64_t> { static constexpr DType value = DType::int64; };
template <> struct DTypeOf<long long> { static constexpr DType value = DType::int64; };
template <> struct DTypeOf<std::uint8_t> { static constexpr DType value = DType::uint8; };
template <> struct DTypeOf<std::uint16_t> { static constexpr DType value = DType::uint16; };
template <> struct DTypeOf<std::uint32_t> { static constexpr DType value = DType::uint32; };
template <> struct DTypeOf<std::uint64_t> { static constexpr DType value = DType::uint64; };
template <> struct DTypeOf<unsigned long long> { static constexpr DType value = DType::uint64; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::float32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::float64; };
template <> struct DTypeOf<std::complex<float>> { static constexpr DType value = DType::complex64; };
template <> struct DTypeOf<std::complex<double>> { static constexpr DType value = DType::complex128; };

/// The DType of a C++ element type: dtype_of<double> == DType::float64.
template <class T>
inline constexpr DType dtype_of = DTypeOf<std::remove_cv_t<T>>::value;

template <class T>
concept Element = requires { DTypeOf<std::remove_cv_t<T>>::value; };

/// The C++ type of a DType.
template <DType D>
struct ElementOf;
template <> struct ElementOf<DType::bool_> { using type = bool; };
template <> struct ElementOf<DType::int8> { using type = std::int8_t; };
template <> struct ElementOf<DType::int16> { using type = std::int16_t; };
template <> struct ElementOf<DType::int32> { using type = std::int32_t; };
template <> struct ElementOf<DType::int64> { using type = std::int64_t; };
template <> struct ElementOf<DType::uint8> { using type = std::uint8_t; };
template <> struct ElementOf<DType::uint16> { using type = std::uint16_t; };
template <> struct ElementOf<DType::uint32> { using type = std::uint32_t; };
template <> struct ElementOf<DType::uint64> { using type = std::uint64_t; };
template <> struct ElementOf<DType::float32> { using type = float; };
template <> struct ElementOf<DType::float64> { using type = double; };
template <> struct ElementOf<DType::complex64> { using type = std::complex<float>; };
template <> struct ElementOf<DType::complex128> { using type = std::complex<double>; };
template <DType D>
using element_t = typename ElementOf<D>::type;

/// The argument dispatch() passes: `[](auto tag) { using T = typename decltype(tag)::type; }`.
template <class T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) for the C++ type T of `t`; returns what f returns
/// (the same type for every T).
template <class F>
decltype(auto) dispatch(DType t, F&& f) {
  switch (t) {
    case DType::bool_: return f(TypeTag<bool>{});
    case DType::int8: return f(TypeTag<std::int8_t>{});
    case DType::int16: return f(TypeTag<std::int16_t>{});
    case DType::int32: return f(TypeTag<std::int32_t>{});
    case DType::int64: return f(TypeTag<std::int64_t>{});
    case DType::uint8: return f(TypeTag<std::uint8_t>{});
    case DType::uint16: return f(TypeTag<std::uint16_t>{});
    case DType::uint32: return f(TypeTag<std::uint32_t>{});
    case DType::uint64: return f(TypeTag<std::uint64_t>{});
    case DType::float32: return f(TypeTag<float>{});
    case DType::float64: return f(TypeTag<double>{});
    case DType::complex64: return f(TypeTag<std::complex<float>>{});
    case DType::complex128: break;
  }
  return f(TypeTag<std::complex<double>>{});
}

/// A single number with a dtype: fill values, scalar operands, 0-d results.
/// Built from any C++ number; `weak` marks a scalar written in C++ code (see
/// the top of this file), false for one taken from an array (item()).
class Scalar {
 public:
  using Storage = std::variant<bool, std::int64_t, std::uint64_t, double, std::complex<double>>;

  Scalar() : dtype_(DType::float64), value_(0.0) {}
  template <Element T>
  Scalar(T v, bool weak = true)  // NOLINT(google-explicit-constructor): x + 1.5
      : dtype_(dtype_of<T>), value_(store(v)), weak_(weak) {}

  DType dtype() const noexcept { return dtype_; }
  bool weak() const noexcept { return weak_; }
  const Storage& storage() const noexcept { return value_; }
  /// The value converted to T (as static_cast would; complex -> real drops
  /// the imaginary part, as NumPy's astype does).
  template <Element T>
  T as() const {
    return std::visit([](const auto& v) -> T { return convert<T>(v); }, value_);
  }
  /// The same value as another dtype (converted with as<T>()).
  Scalar astype(DType t) const;
  friend bool operator==(const Scalar& a, const Scalar& b) noexcept {
    return a.dtype_ == b.dtype_ && a.value_ == b.value_;
  }

 private:
  template <class T>
  static Storage store(T v) {
    if constexpr (std::is_same_v<T, bool>) return v;
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return static_cast<std::int64_t>(v);
    else if constexpr (std::is_integral_v<T>) return static_cast<std::uint64_t>(v);
    else if constexpr (std::is_floating_point_v<T>) return static_cast<double>(v);
    else return std::complex<double>(v.real(), v.imag());
  }
  template <class T, class V>
  static T convert(const V& v) {
    if constexpr (std::is_same_v<V, std::complex<double>>) {
      if constexpr (requires { typename T::value_type; })
        return T(static_cast<typename T::value_type>(v.real()),
                 static_cast<typename T::value_type>(v.imag()));
      else if constexpr (std::is_same_v<T, bool>) return v != std::complex<double>(0.0, 0.0);
      else return static_cast<T>(v.real());
    } else if constexpr (requires { typename T::value_type; }) {
      return T(static_cast<typename T::value_type>(v), 0);
    } else {
      return static_cast<T>(v);
    }
  }

  DType dtype_;
  Storage value_;
  bool weak_ = true;
};

/// The dtype of `array op scalar` (NEP 50's weak scalars, above).
DType result_type(DType array, const Scalar& scalar) noexcept;

/// Human-readable value, as NumPy prints it ("1.5", "True", "(1+2j)").
std::string to_string(const Scalar& s);

}  // namespace weft::array
