// src/array/kernels/random.cpp - ARS streams and the random block kernels.
#include "random.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>
#include <string>
#include <type_traits>

#include "weft/error.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace weft::array::kernels {

namespace {

constexpr int kArsRounds = 7;
constexpr std::uint64_t kBlockBits = 48;

// The counter's high word: the block's low 48 bits and the stream above them.
std::uint64_t counter_high(std::uint64_t block, std::uint32_t stream) {
  return (block & ((std::uint64_t{1} << kBlockBits) - 1)) | static_cast<std::uint64_t>(stream) << kBlockBits;
}

// ARS's round keys {low, high}: the key, then Random123's Weyl steps (the
// golden ratio and sqrt(3) - 1) added to each 64-bit half per round.
struct RoundKeys {
  std::uint64_t k[kArsRounds + 1][2];
};
RoundKeys round_keys(std::uint64_t key) {
  RoundKeys keys{};
  keys.k[0][0] = key;
  for (int r = 1; r <= kArsRounds; ++r) {
    keys.k[r][0] = keys.k[r - 1][0] + 0x9E3779B97F4A7C15ULL;
    keys.k[r][1] = keys.k[r - 1][1] + 0xBB67AE8584CAA73BULL;
  }
  return keys;
}

// 53 random bits as a double in [0, 1), as NumPy's random() makes them.
inline double unit_double(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1p-53; }

// The bulk kernels, each over `batches` of kArsGroups groups of one block's
// stream (the counter's high word `high`): consecutive writes the doubles of
// groups first.. in element order; gathered those of groups[..] (pairs);
// strided_halves the even and odd doubles of groups first + l * step apart;
// words the raw 64-bit words of groups first.. in element order.
struct ArsKernels {
  void (*consecutive)(const RoundKeys&, std::uint64_t high, std::uint64_t first, std::int64_t batches, double* out);
  void (*gathered)(const RoundKeys&, std::uint64_t high, const std::uint64_t* groups, std::int64_t batches,
                   double* out);
  void (*strided_halves)(const RoundKeys&, std::uint64_t high, std::uint64_t first, std::uint64_t step,
                         std::int64_t batches, double* evens, double* odds);
  void (*words)(const RoundKeys&, std::uint64_t high, std::uint64_t first, std::int64_t batches, std::uint64_t* out);
};

// --- ARS in software: AES rounds as _mm_aesenc_si128 computes them -------------

namespace portable {

constexpr std::uint8_t xtime(std::uint8_t b) { return static_cast<std::uint8_t>((b << 1) ^ ((b >> 7) * 0x1b)); }

constexpr std::uint8_t gf_multiply(std::uint8_t a, std::uint8_t b) {
  std::uint8_t product = 0;
  for (; b != 0; b >>= 1, a = xtime(a))
    if (b & 1) product ^= a;
  return product;
}

constexpr std::uint8_t rotl8(std::uint8_t b, int n) { return static_cast<std::uint8_t>((b << n) | (b >> (8 - n))); }

// AES's S-box, computed as FIPS-197 defines it: the inverse in GF(2^8)
// (x^254), then the affine map.
constexpr std::array<std::uint8_t, 256> make_sbox() {
  std::array<std::uint8_t, 256> box{};
  for (int x = 0; x < 256; ++x) {
    std::uint8_t inverse = 1, square = static_cast<std::uint8_t>(x);
    for (int e = 254; e != 0; e >>= 1, square = gf_multiply(square, square))
      if (e & 1) inverse = gf_multiply(inverse, square);
    if (x == 0) inverse = 0;
    box[static_cast<std::size_t>(x)] = static_cast<std::uint8_t>(inverse ^ rotl8(inverse, 1) ^ rotl8(inverse, 2) ^
                                                                  rotl8(inverse, 3) ^ rotl8(inverse, 4) ^ 0x63);
  }
  return box;
}
constexpr std::array<std::uint8_t, 256> kSbox = make_sbox();

// One AES encryption round on the 16 bytes of a 128-bit value (byte i is
// bits 8i..8i+7, column i / 4, row i % 4): SubBytes, ShiftRows, MixColumns
// unless last, then the round key.
void aes_round(std::uint8_t (&state)[16], const std::uint8_t (&key)[16], bool last) {
  std::uint8_t t[16];
  for (int c = 0; c < 4; ++c)
    for (int r = 0; r < 4; ++r) t[4 * c + r] = kSbox[state[4 * ((c + r) % 4) + r]];
  if (!last) {
    for (int c = 0; c < 4; ++c) {
      const std::uint8_t a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
      const std::uint8_t all = a0 ^ a1 ^ a2 ^ a3;
      t[4 * c] = a0 ^ all ^ xtime(a0 ^ a1);
      t[4 * c + 1] = a1 ^ all ^ xtime(a1 ^ a2);
      t[4 * c + 2] = a2 ^ all ^ xtime(a2 ^ a3);
      t[4 * c + 3] = a3 ^ all ^ xtime(a3 ^ a0);
    }
  }
  for (int i = 0; i < 16; ++i) state[i] = t[i] ^ key[i];
}

void to_bytes(std::uint64_t low, std::uint64_t high, std::uint8_t (&bytes)[16]) {
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<std::uint8_t>(low >> (8 * i));
    bytes[8 + i] = static_cast<std::uint8_t>(high >> (8 * i));
  }
}

std::uint64_t word_of(const std::uint8_t* bytes) {
  std::uint64_t w = 0;
  for (int i = 7; i >= 0; --i) w = w << 8 | bytes[i];
  return w;
}

// Random123's ars1xm128i_R(7) of the counter {group, high}: {low, high} words.
std::array<std::uint64_t, 2> encrypt(const RoundKeys& keys, std::uint64_t group, std::uint64_t high) {
  std::uint8_t state[16], key[16];
  to_bytes(group ^ keys.k[0][0], high ^ keys.k[0][1], state);
  for (int r = 1; r <= kArsRounds; ++r) {
    to_bytes(keys.k[r][0], keys.k[r][1], key);
    aes_round(state, key, r == kArsRounds);
  }
  return {word_of(state), word_of(state + 8)};
}

void consecutive(const RoundKeys& keys, std::uint64_t high, std::uint64_t first, std::int64_t batches, double* out) {
  for (std::int64_t g = 0; g < batches * kArsGroups; ++g) {
    const auto w = encrypt(keys, first + static_cast<std::uint64_t>(g), high);
    out[2 * g] = unit_double(w[0]);
    out[2 * g + 1] = unit_double(w[1]);
  }
}

void gathered(const RoundKeys& keys, std::uint64_t high, const std::uint64_t* groups, std::int64_t batches,
              double* out) {
  for (std::int64_t g = 0; g < batches * kArsGroups; ++g) {
    const auto w = encrypt(keys, groups[g], high);
    out[2 * g] = unit_double(w[0]);
    out[2 * g + 1] = unit_double(w[1]);
  }
}

void strided_halves(const RoundKeys& keys, std::uint64_t high, std::uint64_t first, std::uint64_t step,
                    std::int64_t batches, double* evens, double* odds) {
  for (std::int64_t g = 0; g < batches * kArsGroups; ++g) {
    const auto w = encrypt(keys, first + static_cast<std::uint64_t>(g) * step, high);
    evens[g] = unit_double(w[0]);
    odds[g] = unit_double(w[1]);
  }
}

void words(const RoundKeys& keys, std::uint64_t high, std::uint64_t first, std::int64_t batches,
           std::uint64_t* out) {
  for (std::int64_t g = 0; g < batches * kArsGroups; ++g) {
    const auto w = encrypt(keys, first + static_cast<std::uint64_t>(g), high);
    out[2 * g] = w[0];
    out[2 * g + 1] = w[1];
  }
}

constexpr ArsKernels kKernels{&consecutive, &gathered, &strided_halves, &words};

}  // namespace portable

// --- ARS with AES instructions (x86-64) ------------------------------------------

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,aes")
namespace aesni {
constexpr bool kVaes = false;
#include "ars_avx2.inc"
}  // namespace aesni
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,aes,vaes")
namespace vaes {
constexpr bool kVaes = true;
#include "ars_avx2.inc"
}  // namespace vaes
#pragma GCC pop_options
#endif

const ArsKernels& kernels_of(ArsIsa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case ArsIsa::vaes:
      return vaes::kKernels;
    case ArsIsa::aesni:
      return aesni::kKernels;
#endif
    default:
      return portable::kKernels;
  }
}

std::atomic<ArsIsa>& chosen_isa() {
  static std::atomic<ArsIsa> isa{best_ars_isa()};
  return isa;
}

const ArsKernels& active() { return kernels_of(chosen_isa().load(std::memory_order_relaxed)); }

// What the bulk kernels take for one stream of a block, with the kernels of
// the path in use.
struct BlockStream {
  BlockStream(std::uint64_t key, std::uint64_t block, std::uint32_t stream)
      : keys(round_keys(key)), run(active()), high(counter_high(block, stream)) {}
  RoundKeys keys;
  const ArsKernels& run;
  std::uint64_t high;
};

// Calls fill(words, first_element, count) for a block's n elements, batch by
// batch: words[j] is element first_element + j's; count <= 2 * kArsGroups.
template <class Fill>
void for_each_batch(std::uint64_t key, std::uint64_t block, std::int64_t n, Fill&& fill) {
  const BlockStream s(key, block, 0);
  alignas(64) std::uint64_t words[2 * kArsGroups];
  for (std::int64_t first = 0; first < n; first += 2 * kArsGroups) {
    s.run.words(s.keys, s.high, static_cast<std::uint64_t>(first / 2), 1, words);
    fill(words, first, std::min<std::int64_t>(2 * kArsGroups, n - first));
  }
}

// An integer uniform in [0, range) from 64 random bits, by Lemire's
// multiply; false when the draw falls in the biased part and must be redone.
inline bool bounded(std::uint64_t bits, std::uint64_t range, std::uint64_t& out) {
  const unsigned __int128 m = static_cast<unsigned __int128>(bits) * range;
  const auto low = static_cast<std::uint64_t>(m);
  if (low < range && low < (0 - range) % range) return false;
  out = static_cast<std::uint64_t>(m >> 64);
  return true;
}

// Uniform integers in [0, range) for a block's elements: element i takes
// its own word and, on a rejection, redraws from the low word of group i of
// streams 1, 2, ...
void bounded_integers(std::uint64_t key, std::uint64_t block, std::uint64_t range, std::uint64_t* out,
                      std::int64_t n) {
  for_each_batch(key, block, n, [&](const std::uint64_t* words, std::int64_t first, std::int64_t count) {
    for (std::int64_t j = 0; j < count; ++j) {
      std::uint64_t bits = words[j];
      const auto element = static_cast<std::uint64_t>(first + j);
      for (std::uint32_t stream = 1; !bounded(bits, range, out[first + j]); ++stream)
        bits = ars_group(key, block, stream, element)[0];
    }
  });
}

// A sequential stream of one task (shuffles, samples without replacement):
// the words of block 0's stream 0 in order.
class SequentialStream {
 public:
  explicit SequentialStream(std::uint64_t key) : stream_(key, 0, 0) {}
  std::uint64_t next64() {
    if (used_ == 2 * kArsGroups) {
      stream_.run.words(stream_.keys, stream_.high, group_, 1, words_);
      group_ += kArsGroups;
      used_ = 0;
    }
    return words_[used_++];
  }
  double unit() { return unit_double(next64()); }
  std::uint64_t below(std::uint64_t range) {
    std::uint64_t out;
    while (!bounded(next64(), range, out)) {
    }
    return out;
  }

 private:
  BlockStream stream_;
  std::uint64_t group_ = 0;
  alignas(64) std::uint64_t words_[2 * kArsGroups]{};
  int used_ = 2 * kArsGroups;
};

// 2 * count doubles of groups first .. first + count - 1.
void consecutive_pairs(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::int64_t count,
                       double* out) {
  const BlockStream s(key, block, 0);
  const std::int64_t whole = count / kArsGroups;
  s.run.consecutive(s.keys, s.high, first, whole, out);
  if (const std::int64_t rest = count - whole * kArsGroups; rest > 0) {
    double tail[2 * kArsGroups];
    s.run.consecutive(s.keys, s.high, first + static_cast<std::uint64_t>(whole * kArsGroups), 1, tail);
    std::memcpy(out + 2 * whole * kArsGroups, tail, static_cast<std::size_t>(2 * rest) * sizeof(double));
  }
}

// The population's rows (its blocks stacked along axis 0) at `indices`.
NDArray gather_rows(const NDArray& indices, const std::vector<NDArray>& population) {
  if (population.empty()) return indices;
  Shape shape = indices.shape();
  const Shape& first = population.front().shape();
  shape.insert(shape.end(), first.begin() + 1, first.end());
  NDArray out(population.front().dtype(), shape);
  std::vector<NDArray> blocks;
  std::vector<std::int64_t> starts{0};
  for (const NDArray& block : population) {
    blocks.push_back(block.contiguous());
    starts.push_back(starts.back() + block.shape()[0]);
  }
  const std::size_t row_bytes = static_cast<std::size_t>(shape_size(std::span(first).subspan(1))) * out.itemsize();
  const NDArray flat = indices.contiguous();
  const std::int64_t* index = flat.data<std::int64_t>();
  auto* dst = static_cast<std::byte*>(out.raw_data());
  for (std::int64_t i = 0; i < flat.size(); ++i) {
    const auto b = static_cast<std::size_t>(std::upper_bound(starts.begin(), starts.end() - 1, index[i]) -
                                            starts.begin() - 1);
    const auto* src = static_cast<const std::byte*>(blocks[b].raw_data());
    std::memcpy(dst + static_cast<std::size_t>(i) * row_bytes,
                src + static_cast<std::size_t>(index[i] - starts[b]) * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

std::array<std::uint64_t, 2> ars_group(std::uint64_t key, std::uint64_t block, std::uint32_t stream,
                                       std::uint64_t group) {
  return portable::encrypt(round_keys(key), group, counter_high(block, stream));
}

ArsIsa best_ars_isa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("aes"))
    return __builtin_cpu_supports("vaes") ? ArsIsa::vaes : ArsIsa::aesni;
#endif
  return ArsIsa::portable;
}

ArsIsa ars_isa() { return chosen_isa().load(std::memory_order_relaxed); }

void set_ars_isa(ArsIsa isa) {
  if (isa > best_ars_isa())
    throw ValueError("bad-argument", "random: this CPU lacks the instructions of generator path " +
                                         std::to_string(static_cast<int>(isa)));
  chosen_isa().store(isa, std::memory_order_relaxed);
}

void ars_words(std::uint64_t key, std::uint64_t block, std::uint32_t stream, std::uint64_t first,
               std::uint64_t* words, std::int64_t n) {
  const BlockStream s(key, block, stream);
  const std::int64_t whole = n / kArsGroups;
  s.run.words(s.keys, s.high, first, whole, words);
  if (const std::int64_t rest = n - whole * kArsGroups; rest > 0) {
    std::uint64_t tail[2 * kArsGroups];
    s.run.words(s.keys, s.high, first + static_cast<std::uint64_t>(whole * kArsGroups), 1, tail);
    std::copy_n(tail, 2 * rest, words + 2 * whole * kArsGroups);
  }
}

void uniform_doubles(std::uint64_t key, std::uint64_t block, std::uint64_t first, double* out, std::int64_t n) {
  if (n <= 0) return;
  double pair[2];
  if (first % 2 == 1) {  // the odd half of a group first
    consecutive_pairs(key, block, first / 2, 1, pair);
    *out++ = pair[1];
    ++first;
    --n;
  }
  const std::int64_t groups = n / 2;
  consecutive_pairs(key, block, first / 2, groups, out);
  if (n % 2 == 1) {
    consecutive_pairs(key, block, first / 2 + static_cast<std::uint64_t>(groups), 1, pair);
    out[n - 1] = pair[0];
  }
}

void uniform_pairs_at(std::uint64_t key, std::uint64_t block, const std::uint64_t* groups, double* pairs,
                      std::int64_t n) {
  const BlockStream s(key, block, 0);
  const std::int64_t whole = n / kArsGroups;
  s.run.gathered(s.keys, s.high, groups, whole, pairs);
  if (const std::int64_t rest = n - whole * kArsGroups; rest > 0) {
    std::uint64_t tail_groups[kArsGroups] = {};
    double tail[2 * kArsGroups];
    std::copy_n(groups + whole * kArsGroups, rest, tail_groups);
    s.run.gathered(s.keys, s.high, tail_groups, 1, tail);
    std::memcpy(pairs + 2 * whole * kArsGroups, tail, static_cast<std::size_t>(2 * rest) * sizeof(double));
  }
}

void uniform_halves_strided(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::uint64_t step,
                            double* evens, double* odds, std::int64_t n) {
  const BlockStream s(key, block, 0);
  const std::int64_t whole = n / kArsGroups;
  s.run.strided_halves(s.keys, s.high, first, step, whole, evens, odds);
  if (const std::int64_t rest = n - whole * kArsGroups; rest > 0) {
    double tail_evens[kArsGroups], tail_odds[kArsGroups];
    s.run.strided_halves(s.keys, s.high, first + static_cast<std::uint64_t>(whole * kArsGroups) * step, step, 1,
                       tail_evens, tail_odds);
    std::copy_n(tail_evens, rest, evens + whole * kArsGroups);
    std::copy_n(tail_odds, rest, odds + whole * kArsGroups);
  }
}

void uniform_doubles_at(std::uint64_t key, std::uint64_t block, const std::uint64_t* elements, double* out,
                        std::int64_t n) {
  // A chunk's groups, then each element's half of its group.
  constexpr std::int64_t kChunk = 16 * kArsGroups;
  std::uint64_t groups[kChunk];
  double pairs[2 * kChunk];
  for (std::int64_t start = 0; start < n; start += kChunk) {
    const std::int64_t count = std::min(kChunk, n - start);
    for (std::int64_t i = 0; i < count; ++i) groups[i] = elements[start + i] >> 1;
    uniform_pairs_at(key, block, groups, pairs, count);
    for (std::int64_t i = 0; i < count; ++i)
      out[start + i] = pairs[2 * i + static_cast<std::int64_t>(elements[start + i] & 1)];
  }
}

NDArray random_block(const RandomSpec& spec, const Shape& shape) {
  NDArray out(spec.dtype, shape);
  const std::int64_t n = out.size();
  switch (spec.distribution) {
    case Distribution::uniform: {
      double* p = out.data<double>();
      uniform_doubles(spec.key, spec.block, 0, p, n);
      if (spec.a != 0.0 || spec.b != 1.0) {
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) p[i] = spec.a + spec.b * p[i];
      }
      break;
    }
    case Distribution::normal: {
      // Box-Muller: each pair of uniforms gives a pair of normals.
      double* p = out.data<double>();
      for_each_batch(spec.key, spec.block, n, [&](const std::uint64_t* words, std::int64_t first, std::int64_t count) {
        alignas(64) double values[2 * kArsGroups];
        for (int l = 0; l < kArsGroups; ++l) {
          const double radius = std::sqrt(-2.0 * std::log1p(-unit_double(words[2 * l])));
          const double angle = 2.0 * std::numbers::pi * unit_double(words[2 * l + 1]);
          values[2 * l] = spec.a + spec.b * radius * std::cos(angle);
          values[2 * l + 1] = spec.a + spec.b * radius * std::sin(angle);
        }
        std::memcpy(p + first, values, static_cast<std::size_t>(count) * sizeof(double));
      });
      break;
    }
    case Distribution::exponential: {
      double* p = out.data<double>();
      uniform_doubles(spec.key, spec.block, 0, p, n);
      for (std::int64_t i = 0; i < n; ++i) p[i] = -spec.b * std::log1p(-p[i]);
      break;
    }
    case Distribution::integers: {
      std::vector<std::uint64_t> draws(static_cast<std::size_t>(n));
      bounded_integers(spec.key, spec.block, spec.range, draws.data(), n);
      dispatch(spec.dtype, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          T* p = out.data<T>();
          const auto low = static_cast<std::uint64_t>(spec.low);
#pragma omp simd
          for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(low + draws[static_cast<std::size_t>(i)]);
        }
      });
      break;
    }
  }
  return out;
}

NDArray choice_block(const ChoiceSpec& spec, const Shape& shape, const std::vector<double>& cdf,
                     const std::vector<NDArray>& population) {
  NDArray indices(DType::int64, shape);
  std::int64_t* p = indices.data<std::int64_t>();
  const std::int64_t n = indices.size();
  if (cdf.empty()) {
    std::vector<std::uint64_t> draws(static_cast<std::size_t>(n));
    bounded_integers(spec.key, spec.block, static_cast<std::uint64_t>(spec.population), draws.data(), n);
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<std::int64_t>(draws[static_cast<std::size_t>(i)]);
  } else {
    // NumPy's cdf.searchsorted(uniform, side="right").
    std::vector<double> u(static_cast<std::size_t>(n));
    uniform_doubles(spec.key, spec.block, 0, u.data(), n);
    for (std::int64_t i = 0; i < n; ++i) {
      const auto at = std::upper_bound(cdf.begin(), cdf.end(), u[static_cast<std::size_t>(i)]) - cdf.begin();
      p[i] = std::min<std::int64_t>(at, spec.population - 1);
    }
  }
  return gather_rows(indices, population);
}

NDArray sample_without_replacement(const SampleSpec& spec, const Shape& size, const std::vector<double>& p) {
  NDArray out(DType::int64, size);
  const std::int64_t k = out.size();
  std::int64_t* dst = out.data<std::int64_t>();
  SequentialStream stream(spec.key);
  std::vector<std::int64_t> order(static_cast<std::size_t>(spec.population));
  std::iota(order.begin(), order.end(), 0);
  if (p.empty()) {
    for (std::int64_t i = 0; i < k; ++i) {
      const auto j = i + static_cast<std::int64_t>(stream.below(static_cast<std::uint64_t>(spec.population - i)));
      std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    }
  } else {
    // Exponential clocks E_i / p_i ring in the order successive sampling picks.
    std::vector<double> clock(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      const double e = -std::log1p(-stream.unit());
      clock[i] = p[i] > 0 ? e / p[i] : HUGE_VAL;
    }
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](std::int64_t a, std::int64_t b) {
      return clock[static_cast<std::size_t>(a)] < clock[static_cast<std::size_t>(b)];
    });
  }
  std::copy_n(order.begin(), k, dst);
  return out;
}

NDArray take_sample_block(const Shape& offset, const Shape& shape, const NDArray& sample,
                          const std::vector<NDArray>& population) {
  return gather_rows(sample.block(offset, shape).contiguous(), population);
}

}  // namespace weft::array::kernels
