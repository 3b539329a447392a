// Hasher: XXH3-128 over an inline buffer, streaming only for large inputs.
#include "weft/tokenize.hpp"

#include <xxhash.h>

#include <atomic>
#include <random>

#include "weft/config.hpp"
#include "weft/error.hpp"
#include "weft/detail/demangle.hpp"

namespace weft {

namespace {
XXH3_state_t* as_state(void* p) { return static_cast<XXH3_state_t*>(p); }
}  // namespace

Hasher::~Hasher() {
  if (state_) XXH3_freeState(as_state(state_));
}

void Hasher::spill(const void* data, std::size_t n) {
  if (!state_) {
    state_ = XXH3_createState();
    XXH3_128bits_reset(as_state(state_));
  }
  XXH3_128bits_update(as_state(state_), buf_, len_);
  len_ = 0;
  if (n <= kInline) {
    std::memcpy(buf_, data, n);
    len_ = n;
  } else {
    XXH3_128bits_update(as_state(state_), data, n);
  }
}

void Hasher::mark_nondeterministic(const std::type_info& type) {
  if (!nondeterministic_type_) nondeterministic_type_ = &type;
}

Token Hasher::digest() const {
  if (nondeterministic_type_) return detail::fresh_token();
  XXH128_hash_t r;
  if (!state_) {
    r = XXH3_128bits(buf_, len_);
  } else {
    XXH3_state_t* copy = XXH3_createState();
    XXH3_copyState(copy, as_state(state_));
    XXH3_128bits_update(copy, buf_, len_);
    r = XXH3_128bits_digest(copy);
    XXH3_freeState(copy);
  }
  return Token{r.low64, r.high64};
}

namespace detail {
Token fresh_token() {
  static const std::uint64_t seed =
      (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t words[2] = {seed, counter.fetch_add(1, std::memory_order_relaxed)};
  XXH128_hash_t r = XXH3_128bits(words, sizeof words);
  return Token{r.low64, r.high64};
}

bool ensure_deterministic() { return config::get<bool>("tokenize.ensure-deterministic"); }

void throw_not_tokenizable(const std::type_info& type) {
  throw TypeError("not-tokenizable",
                  "cannot tokenize a value of type '" + demangle(type) +
                      "' deterministically (tokenize.ensure-deterministic is true); specialise "
                      "weft::Tokenizer<T> or give it a member tokenize(weft::Hasher&)");
}
}  // namespace detail

}  // namespace weft
