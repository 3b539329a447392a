// weft/key.hpp - task keys.
//
// Users see keys as strings, as in Dask: "inc-<32 hex digits>" for a delayed
// call, "x" for a hand-written graph, "('random-<hex>', 0, 1)" for chunk (0, 1)
// of an array. Inside, a key is a pointer to an interned name, a 128-bit token
// and an optional chunk index, so that building, hashing and comparing keys
// never touches the heap for delayed calls. Key(string) parses the string forms
// back, so a key's str() always round-trips.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft {

/// A 128-bit hash: the output of tokenize().
struct Token {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;

  /// 32 lowercase hex digits, high word first.
  std::string hex() const;
  bool is_zero() const noexcept { return lo == 0 && hi == 0; }
  friend bool operator==(const Token&, const Token&) = default;
  friend auto operator<=>(const Token&, const Token&) = default;
};

namespace detail {
/// A name stored once for the life of the process (keys share it by pointer).
struct InternedName {
  std::string text;
  std::size_t hash;
};
/// Thread-safe. The same text always gives the same pointer.
const InternedName* intern(std::string_view text);
/// intern(""), without the lookup: every default-constructed key uses it.
const InternedName* empty_name() noexcept;
}  // namespace detail

class Key {
 public:
  /// The empty key "".
  Key() noexcept : name_(detail::empty_name()) {}
  /// Parses a key's string form: "x", "name-<32 hex>", "('name', 1, 2)".
  Key(std::string_view text);  // NOLINT(google-explicit-constructor): keys are strings to users
  Key(const char* text) : Key(std::string_view(text)) {}  // NOLINT
  Key(const std::string& text) : Key(std::string_view(text)) {}  // NOLINT
  /// name-token, e.g. Key("inc", tokenize(...)).
  Key(std::string_view name, const Token& token, std::vector<std::int64_t> index = {});
  /// A chunk key without a token: ('x', i, j).
  Key(std::string_view name, std::initializer_list<std::int64_t> index);
  /// From an already interned name (the fast path of delayed calls).
  Key(const detail::InternedName* name, const Token& token) noexcept
      : name_(name), token_(token), has_token_(true) {}

  /// The part before the token: "inc" for "inc-<hex>".
  std::string_view name() const noexcept { return name_->text; }
  bool has_token() const noexcept { return has_token_; }
  const Token& token() const noexcept { return token_; }
  /// Chunk index of array keys; empty for scalar keys.
  std::span<const std::int64_t> index() const noexcept { return index_; }
  /// Same name and token, another chunk index.
  Key with_index(std::vector<std::int64_t> index) const;

  /// The user-visible string, e.g. "inc-3fa9...".
  std::string str() const;
  /// The key's name with its token: what a Dask key tuple's first item is.
  std::string base_str() const;

  std::size_t hash() const noexcept;
  friend bool operator==(const Key& a, const Key& b) noexcept {
    return a.name_ == b.name_ && a.has_token_ == b.has_token_ && a.token_ == b.token_ &&
           a.index_ == b.index_;
  }
  /// Orders by string form's parts (name, token, index): deterministic across runs.
  friend std::strong_ordering operator<=>(const Key& a, const Key& b) noexcept;

 private:
  const detail::InternedName* name_;
  Token token_{};
  bool has_token_ = false;
  std::vector<std::int64_t> index_;
};

}  // namespace weft

template <>
struct std::hash<weft::Key> {
  std::size_t operator()(const weft::Key& k) const noexcept { return k.hash(); }
};
