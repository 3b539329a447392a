// Key: interned names, string forms and parsing.
#include "weft/key.hpp"

#include <xxhash.h>

#include <charconv>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "weft/error.hpp"

namespace weft {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void append_hex64(std::string& out, std::uint64_t v) {
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHexDigits[(v >> shift) & 0xF]);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "name-<32 lowercase hex>" -> name, token. Any other text is a plain name.
bool split_token(std::string_view text, std::string_view& name, Token& token) {
  constexpr std::size_t kHex = 32;
  if (text.size() < kHex + 1 || text[text.size() - kHex - 1] != '-') return false;
  std::string_view hex = text.substr(text.size() - kHex);
  std::uint64_t words[2] = {0, 0};
  for (std::size_t i = 0; i < kHex; ++i) {
    int v = hex_value(hex[i]);
    if (v < 0) return false;
    words[i / 16] = (words[i / 16] << 4) | static_cast<std::uint64_t>(v);
  }
  name = text.substr(0, text.size() - kHex - 1);
  token = Token{words[1], words[0]};
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Intern table: names live as long as the process, so keys can hold raw pointers.
struct NameTable {
  std::shared_mutex mutex;
  std::unordered_map<std::string_view, std::unique_ptr<detail::InternedName>> names;
};

NameTable& name_table() {
  static NameTable* table = new NameTable;  // never destroyed: keys may outlive static destructors
  return *table;
}

}  // namespace

std::string Token::hex() const {
  std::string out;
  out.reserve(32);
  append_hex64(out, hi);
  append_hex64(out, lo);
  return out;
}

namespace detail {
const InternedName* intern(std::string_view text) {
  NameTable& table = name_table();
  {
    std::shared_lock lock(table.mutex);
    auto it = table.names.find(text);
    if (it != table.names.end()) return it->second.get();
  }
  std::unique_lock lock(table.mutex);
  auto it = table.names.find(text);
  if (it != table.names.end()) return it->second.get();
  auto name = std::make_unique<InternedName>(
      InternedName{std::string(text), XXH3_64bits(text.data(), text.size())});
  const InternedName* raw = name.get();
  table.names.emplace(std::string_view(raw->text), std::move(name));
  return raw;
}
const InternedName* empty_name() noexcept {
  static const InternedName* const empty = intern("");
  return empty;
}
}  // namespace detail

Key::Key(std::string_view text) {
  // Tuple form "('name', 1, 2)" as str() writes it for chunk keys.
  if (text.size() >= 4 && text.front() == '(' && text.back() == ')' && text[1] == '\'') {
    // Indices hold no quotes, so the last quote closes the name, whatever it holds.
    std::size_t close = text.rfind('\'');
    if (close < 2)
      throw ValueError("bad-key", "cannot parse key '" + std::string(text) + "': unterminated name");
    std::string_view base = text.substr(2, close - 2);
    std::string_view rest = text.substr(close + 1, text.size() - close - 2);
    while (!rest.empty()) {
      if (rest.front() != ',')
        throw ValueError("bad-key", "cannot parse key '" + std::string(text) + "': expected ','");
      rest.remove_prefix(1);
      std::size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      std::int64_t value = 0;
      auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
      if (ec != std::errc() || end != item.data() + item.size() || item.empty())
        throw ValueError("bad-key", "cannot parse key '" + std::string(text) +
                                        "': index '" + std::string(item) + "' is not an integer");
      index_.push_back(value);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma);
    }
    text = base;
  }
  std::string_view name;
  if (split_token(text, name, token_)) {
    has_token_ = true;
    name_ = detail::intern(name);
  } else {
    name_ = detail::intern(text);
  }
}

Key::Key(std::string_view name, const Token& token, std::vector<std::int64_t> index)
    : name_(detail::intern(name)), token_(token), has_token_(true), index_(std::move(index)) {}

Key::Key(std::string_view name, std::initializer_list<std::int64_t> index)
    : name_(detail::intern(name)), index_(index) {}

Key Key::with_index(std::vector<std::int64_t> index) const {
  Key k = *this;
  k.index_ = std::move(index);
  return k;
}

std::string Key::base_str() const {
  std::string out = name_->text;
  if (has_token_) {
    out.reserve(out.size() + 33);
    out.push_back('-');
    append_hex64(out, token_.hi);
    append_hex64(out, token_.lo);
  }
  return out;
}

std::string Key::str() const {
  if (index_.empty()) return base_str();
  std::string out = "('" + base_str() + "'";
  for (std::int64_t i : index_) {
    out += ", ";
    out += std::to_string(i);
  }
  out += ")";
  return out;
}

std::size_t Key::hash() const noexcept {
  std::size_t h = name_->hash ^ (token_.lo * 0x9E3779B97F4A7C15ULL) ^ token_.hi;
  for (std::int64_t i : index_) h = (h ^ static_cast<std::size_t>(i)) * 0x100000001B3ULL;
  return h;
}

std::strong_ordering operator<=>(const Key& a, const Key& b) noexcept {
  if (a.name_ != b.name_) {
    if (auto c = a.name_->text <=> b.name_->text; c != 0) return c;
  }
  if (auto c = a.has_token_ <=> b.has_token_; c != 0) return c;
  if (auto c = a.token_ <=> b.token_; c != 0) return c;
  return std::lexicographical_compare_three_way(a.index_.begin(), a.index_.end(),
                                                b.index_.begin(), b.index_.end());
}

}  // namespace weft
