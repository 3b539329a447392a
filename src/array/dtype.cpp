// dtype.cpp - NumPy's dtype names, promotion and casting rules.
//
// The promotion table was generated from np.result_type (numpy 1.24) and is
// checked pair by pair against python3-numpy by tests/test_array_dtype.cpp.
#include "weft/array/dtype.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <system_error>

#include "weft/error.hpp"

namespace weft::array {

namespace {

constexpr std::array<std::string_view, kDTypeCount> kNames = {
    "bool",   "int8",   "int16",   "int32",   "int64",     "uint8",     "uint16",
    "uint32", "uint64", "float32", "float64", "complex64", "complex128"};

constexpr std::array<std::size_t, kDTypeCount> kItemsizes = {1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8, 8, 16};

constexpr int index_of(DType t) noexcept { return static_cast<int>(t); }

// np.result_type(row, column).
constexpr std::array<std::array<DType, kDTypeCount>, kDTypeCount> kPromotion = [] {
  using enum DType;
  constexpr DType b = bool_, i1 = int8, i2 = int16, i4 = int32, i8 = int64, u1 = uint8,
                  u2 = uint16, u4 = uint32, u8 = uint64, f4 = float32, f8 = float64,
                  c8 = complex64, c16 = complex128;
  std::array<std::array<DType, kDTypeCount>, kDTypeCount> t = {{
      {b, i1, i2, i4, i8, u1, u2, u4, u8, f4, f8, c8, c16},
      {i1, i1, i2, i4, i8, i2, i4, i8, f8, f4, f8, c8, c16},
      {i2, i2, i2, i4, i8, i2, i4, i8, f8, f4, f8, c8, c16},
      {i4, i4, i4, i4, i8, i4, i4, i8, f8, f8, f8, c16, c16},
      {i8, i8, i8, i8, i8, i8, i8, i8, f8, f8, f8, c16, c16},
      {u1, i2, i2, i4, i8, u1, u2, u4, u8, f4, f8, c8, c16},
      {u2, i4, i4, i4, i8, u2, u2, u4, u8, f4, f8, c8, c16},
      {u4, i8, i8, i8, i8, u4, u4, u4, u8, f8, f8, c16, c16},
      {u8, f8, f8, f8, f8, u8, u8, u8, u8, f8, f8, c16, c16},
      {f4, f4, f4, f8, f8, f4, f4, f8, f8, f4, f8, c8, c16},
      {f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, c16, c16},
      {c8, c8, c8, c16, c16, c8, c8, c16, c16, c8, c16, c8, c16},
      {c16, c16, c16, c16, c16, c16, c16, c16, c16, c16, c16, c16, c16},
  }};
  return t;
}();

// Rank of a kind in NumPy's same_kind order: a cast may go up, never down
// (unsigned -> signed is same_kind, signed -> unsigned is not).
constexpr int same_kind_rank(DTypeKind k) noexcept {
  switch (k) {
    case DTypeKind::boolean: return 0;
    case DTypeKind::unsigned_integer: return 1;
    case DTypeKind::signed_integer: return 2;
    case DTypeKind::floating: return 3;
    case DTypeKind::complex: break;
  }
  return 4;
}

struct Alias {
  std::string_view name;
  DType dtype;
};

// Names np.dtype() accepts besides the canonical ones, with the byte-order
// prefix stripped ("<f8", "=f8" and "|b1" read as "f8", "f8", "b1").
constexpr Alias kAliases[] = {
    {"bool_", DType::bool_},        {"?", DType::bool_},
    {"b1", DType::bool_},           {"i1", DType::int8},
    {"b", DType::int8},             {"byte", DType::int8},
    {"i2", DType::int16},           {"h", DType::int16},
    {"short", DType::int16},        {"i4", DType::int32},
    {"i", DType::int32},            {"intc", DType::int32},
    {"i8", DType::int64},           {"l", DType::int64},
    {"q", DType::int64},            {"int", DType::int64},
    {"int_", DType::int64},         {"long", DType::int64},
    {"longlong", DType::int64},     {"intp", DType::int64},
    {"p", DType::int64},            {"u1", DType::uint8},
    {"B", DType::uint8},            {"ubyte", DType::uint8},
    {"u2", DType::uint16},          {"H", DType::uint16},
    {"ushort", DType::uint16},      {"u4", DType::uint32},
    {"I", DType::uint32},           {"uintc", DType::uint32},
    {"u8", DType::uint64},          {"L", DType::uint64},
    {"Q", DType::uint64},           {"uint", DType::uint64},
    {"ulong", DType::uint64},       {"ulonglong", DType::uint64},
    {"uintp", DType::uint64},       {"P", DType::uint64},
    {"f4", DType::float32},         {"f", DType::float32},
    {"single", DType::float32},     {"f8", DType::float64},
    {"d", DType::float64},          {"double", DType::float64},
    {"float", DType::float64},      {"float_", DType::float64},
    {"c8", DType::complex64},       {"F", DType::complex64},
    {"csingle", DType::complex64},  {"singlecomplex", DType::complex64},
    {"c16", DType::complex128},     {"D", DType::complex128},
    {"cdouble", DType::complex128}, {"complex", DType::complex128},
    {"complex_", DType::complex128}, {"cfloat", DType::complex128},
};

// Python's repr of a float (NumPy prints its scalars the same way): the
// shortest digits that read back as the same value, positional when the
// decimal exponent is in [-4, 16), scientific otherwise; "nan", "inf".
// `add_dot_0` appends ".0" to integral positional values ("1.0"), which
// complex parts do not ("(1+2j)").
template <class F>
std::string python_float_repr(F v, bool add_dot_0) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci is "[-]d[.ddd]e[+-]xx": split it into sign, digits and exponent.
  const std::size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa.front() == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    std::string magnitude = std::to_string(std::abs(exponent));
    if (magnitude.size() < 2) magnitude.insert(0, "0");
    return out + (exponent < 0 ? "e-" : "e+") + magnitude;
  }
  const int point = exponent + 1;  // digits before the decimal point
  if (point <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
  } else if (static_cast<std::size_t>(point) >= digits.size()) {
    out += digits + std::string(static_cast<std::size_t>(point) - digits.size(), '0');
    if (add_dot_0) out += ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(point)) + "." +
           digits.substr(static_cast<std::size_t>(point));
  }
  return out;
}

// Python's repr of a complex: "2j" when the real part is +0, else
// "(re+imj)", each part as a float repr without a trailing ".0".
template <class F>
std::string python_complex_repr(std::complex<F> v) {
  const std::string imag = python_float_repr(v.imag(), false) + "j";
  if (v.real() == 0 && !std::signbit(v.real())) return imag;
  const bool sign_needed = !(imag.front() == '-');
  return "(" + python_float_repr(v.real(), false) + (sign_needed ? "+" : "") + imag + ")";
}

}  // namespace

std::string_view dtype_name(DType t) noexcept { return kNames[static_cast<std::size_t>(index_of(t))]; }

DType dtype_from_name(std::string_view name) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (kNames[static_cast<std::size_t>(i)] == name) return static_cast<DType>(i);
  std::string_view bare = name;
  if (!bare.empty() && (bare.front() == '<' || bare.front() == '=' || bare.front() == '|'))
    bare.remove_prefix(1);
  for (const Alias& a : kAliases)
    if (a.name == bare) return a.dtype;
  throw TypeError("unknown-dtype", "data type '" + std::string(name) + "' not understood");
}

std::size_t itemsize(DType t) noexcept { return kItemsizes[static_cast<std::size_t>(index_of(t))]; }

DTypeKind dtype_kind(DType t) noexcept {
  switch (t) {
    case DType::bool_: return DTypeKind::boolean;
    case DType::int8:
    case DType::int16:
    case DType::int32:
    case DType::int64: return DTypeKind::signed_integer;
    case DType::uint8:
    case DType::uint16:
    case DType::uint32:
    case DType::uint64: return DTypeKind::unsigned_integer;
    case DType::float32:
    case DType::float64: return DTypeKind::floating;
    case DType::complex64:
    case DType::complex128: break;
  }
  return DTypeKind::complex;
}

DType result_type(DType a, DType b) noexcept { return kPromotion[static_cast<std::size_t>(index_of(a))][static_cast<std::size_t>(index_of(b))]; }

bool can_cast(DType from, DType to, Casting casting) noexcept {
  switch (casting) {
    case Casting::no:
    case Casting::equiv: return from == to;
    case Casting::safe: return result_type(from, to) == to;
    case Casting::same_kind:
      return result_type(from, to) == to ||
             same_kind_rank(dtype_kind(from)) <= same_kind_rank(dtype_kind(to));
    case Casting::unsafe: break;
  }
  return true;
}

DType float_result(DType t) noexcept { return is_inexact(t) ? t : DType::float64; }

DType real_type(DType t) noexcept {
  if (t == DType::complex64) return DType::float32;
  if (t == DType::complex128) return DType::float64;
  return t;
}

DType result_type(DType array, const Scalar& scalar) noexcept {
  if (!scalar.weak()) return result_type(array, scalar.dtype());
  // A weak scalar only counts by its kind: the array's dtype wins when the
  // scalar's kind fits in it; otherwise the scalar takes its kind's default
  // type, except that a complex scalar keeps a float array's precision.
  switch (dtype_kind(scalar.dtype())) {
    case DTypeKind::boolean: return array;
    case DTypeKind::signed_integer:
    case DTypeKind::unsigned_integer: return array == DType::bool_ ? DType::int64 : array;
    case DTypeKind::floating: return is_inexact(array) ? array : DType::float64;
    case DTypeKind::complex: break;
  }
  if (is_complex(array)) return array;
  return array == DType::float32 ? DType::complex64 : DType::complex128;
}

Scalar Scalar::astype(DType t) const {
  return dispatch(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return Scalar(as<T>(), weak_);
  });
}

std::string to_string(const Scalar& s) {
  return dispatch(s.dtype(), [&](auto tag) -> std::string {
    using T = typename decltype(tag)::type;
    const T v = s.as<T>();
    if constexpr (std::is_same_v<T, bool>) return v ? "True" : "False";
    else if constexpr (std::is_integral_v<T>) return std::to_string(v);
    else if constexpr (std::is_floating_point_v<T>) return python_float_repr(v, true);
    else return python_complex_repr(v);
  });
}

}  // namespace weft::array
