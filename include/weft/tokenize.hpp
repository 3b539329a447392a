// weft/tokenize.hpp - deterministic hashes of values, for key names.
//
// tokenize(args...) mirrors dask.base.tokenize: the same inputs give the same
// 128-bit token in every run and on every rank of the same binary. Numbers,
// strings, containers, tuples, optionals, keys and Delayed values are
// supported out of the box; a user type opts in by specialising
// weft::Tokenizer<T> or by a member `void tokenize(weft::Hasher&) const`.
// A type weft cannot hash gets a random token, as in Dask (the key is then
// unique but not reproducible); config tokenize.ensure-deterministic turns
// that into a TypeError.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "weft/key.hpp"

namespace weft {

/// Accumulates bytes and produces a Token. Small inputs stay in an inline
/// buffer and are hashed in one call, so hashing a few numbers is cheap.
class Hasher {
 public:
  Hasher() = default;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  ~Hasher();

  void bytes(const void* data, std::size_t n) {
    if (len_ + n <= kInline) {
      std::memcpy(buf_ + len_, data, n);
      len_ += n;
    } else {
      spill(data, n);
    }
  }
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof v);
  }
  /// A one-byte type tag, so that e.g. a string and a number never collide.
  void tag(std::uint8_t t) { bytes(&t, 1); }

  /// Called when a value could not be hashed: the digest becomes random.
  void mark_nondeterministic(const std::type_info& type);
  bool deterministic() const noexcept { return nondeterministic_type_ == nullptr; }
  /// The type that made the hash nondeterministic, or nullptr.
  const std::type_info* nondeterministic_type() const noexcept { return nondeterministic_type_; }

  Token digest() const;

 private:
  static constexpr std::size_t kInline = 200;
  void spill(const void* data, std::size_t n);

  unsigned char buf_[kInline];
  std::size_t len_ = 0;
  void* state_ = nullptr;  // XXH3 streaming state, made once the inline buffer overflows
  const std::type_info* nondeterministic_type_ = nullptr;
};

/// Specialise with `static void apply(Hasher&, const T&)` to make T tokenizable.
template <class T>
struct Tokenizer {};

template <class T>
void tokenize_into(Hasher& h, const T& value);

namespace detail {
template <class T>
concept HasTokenizer = requires(Hasher& h, const T& v) { Tokenizer<T>::apply(h, v); };
template <class T>
concept HasTokenizeMember = requires(Hasher& h, const T& v) { v.tokenize(h); };
template <class T>
concept TupleLike = requires { std::tuple_size<T>::value; };
template <class T>
concept StringLike = std::is_convertible_v<const T&, std::string_view>;
template <class T>
concept ContiguousArithmetic =
    std::ranges::contiguous_range<const T> && std::ranges::sized_range<const T> &&
    std::is_arithmetic_v<std::ranges::range_value_t<const T>>;
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

enum : std::uint8_t {
  kTagNumber = 1, kTagString, kTagBytes, kTagSequence, kTagTuple, kTagNone, kTagSome,
  kTagKey, kTagRaw
};

/// Size and kind of a number type, so that 1, 1u, 1L and 1.0f all differ.
template <class T>
constexpr std::uint8_t number_code() {
  std::uint8_t kind = std::is_same_v<T, bool> ? 3 : std::is_floating_point_v<T> ? 2 : std::is_signed_v<T> ? 1 : 0;
  return static_cast<std::uint8_t>(kind << 5 | sizeof(T));
}

template <class Tuple, std::size_t... I>
void tokenize_tuple(Hasher& h, const Tuple& t, std::index_sequence<I...>) {
  (tokenize_into(h, std::get<I>(t)), ...);
}

/// A token never given before in this process: for impure calls and
/// values that cannot be hashed (Dask's uuid fallback).
Token fresh_token();
/// Whether config tokenize.ensure-deterministic asks for an error instead of a random token.
bool ensure_deterministic();
[[noreturn]] void throw_not_tokenizable(const std::type_info& type);
}  // namespace detail

template <>
struct Tokenizer<Token> {
  static void apply(Hasher& h, const Token& t) { h.pod(t.lo); h.pod(t.hi); }
};

template <>
struct Tokenizer<Key> {
  static void apply(Hasher& h, const Key& k) {
    h.tag(detail::kTagKey);
    std::string_view n = k.name();
    std::uint64_t size = n.size();
    h.pod(size);
    h.bytes(n.data(), n.size());
    h.pod(k.token().lo);
    h.pod(k.token().hi);
    for (std::int64_t i : k.index()) h.pod(i);
  }
};

template <class T>
void tokenize_into(Hasher& h, const T& value) {
  using namespace detail;
  if constexpr (HasTokenizer<T>) {
    Tokenizer<T>::apply(h, value);
  } else if constexpr (HasTokenizeMember<T>) {
    value.tokenize(h);
  } else if constexpr (std::is_enum_v<T>) {
    tokenize_into(h, static_cast<std::underlying_type_t<T>>(value));
  } else if constexpr (std::is_arithmetic_v<T>) {
    h.tag(kTagNumber);
    h.tag(number_code<T>());
    h.pod(value);
  } else if constexpr (StringLike<T>) {
    std::string_view s(value);
    h.tag(kTagString);
    std::uint64_t size = s.size();
    h.pod(size);
    h.bytes(s.data(), s.size());
  } else if constexpr (IsOptional<T>::value) {
    if (value) {
      h.tag(kTagSome);
      tokenize_into(h, *value);
    } else {
      h.tag(kTagNone);
    }
  } else if constexpr (ContiguousArithmetic<T>) {
    h.tag(kTagBytes);
    h.tag(number_code<std::ranges::range_value_t<const T>>());
    std::uint64_t size = std::ranges::size(value);
    h.pod(size);
    h.bytes(std::ranges::data(value), size * sizeof(std::ranges::range_value_t<const T>));
  } else if constexpr (std::ranges::input_range<const T>) {
    h.tag(kTagSequence);
    std::uint64_t n = 0;
    for (const auto& item : value) {
      tokenize_into(h, item);
      ++n;
    }
    h.pod(n);
  } else if constexpr (TupleLike<T>) {
    h.tag(kTagTuple);
    h.tag(static_cast<std::uint8_t>(std::tuple_size_v<T>));
    tokenize_tuple(h, value, std::make_index_sequence<std::tuple_size_v<T>>{});
  } else if constexpr (std::is_trivially_copyable_v<T> &&
                       std::has_unique_object_representations_v<T>) {
    h.tag(kTagRaw);
    h.pod(value);
  } else {
    if (ensure_deterministic()) throw_not_tokenizable(typeid(T));
    h.mark_nondeterministic(typeid(T));
  }
}

/// The token of one or more values (dask.base.tokenize).
template <class... T>
Token tokenize(const T&... values) {
  Hasher h;
  (tokenize_into(h, values), ...);
  return h.digest();
}

}  // namespace weft
