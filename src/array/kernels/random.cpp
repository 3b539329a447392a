// src/array/kernels/random.cpp - Philox streams and the random block kernels.
#include "random.hpp"

#include <Random123/philox.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <numeric>
#include <type_traits>

namespace weft::array::kernels {

namespace {

constexpr std::uint32_t kStreamShift = 16;

std::array<std::uint32_t, 4> counter_of(std::uint64_t group, std::uint64_t block, std::uint32_t stream) {
  return {static_cast<std::uint32_t>(group), static_cast<std::uint32_t>(group >> 32),
          static_cast<std::uint32_t>(block),
          static_cast<std::uint32_t>((block >> 32) & 0xffffu) | (stream << kStreamShift)};
}

// 53 random bits as a double in [0, 1): hi * 2^-32 + (lo >> 11) * 2^-53.
// Written with signed 32-bit conversions, which vectorise.
inline double unit_double(std::uint32_t hi, std::uint32_t lo) {
  return (static_cast<double>(static_cast<std::int32_t>(hi ^ 0x80000000u)) + 0x1p31) * 0x1p-32 +
         static_cast<double>(static_cast<std::int32_t>(lo >> 11)) * 0x1p-53;
}

inline std::uint64_t word64(std::uint32_t hi, std::uint32_t lo) {
  return static_cast<std::uint64_t>(hi) << 32 | lo;
}

// Calls fill(batch, first_element, count) for the element pairs of a block
// of n elements, batch by batch; count is at most 2 * kPhiloxLanes.
template <class Fill>
void for_each_batch(std::uint64_t key, std::uint64_t block, std::int64_t n, Fill&& fill) {
  PhiloxBatch batch;
  for (std::int64_t first = 0; first < n; first += 2 * kPhiloxLanes) {
    philox_batch(key, block, 0, static_cast<std::uint64_t>(first / 2), batch);
    fill(batch, first, std::min<std::int64_t>(2 * kPhiloxLanes, n - first));
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
// the 64 bits of half of group i / 2 and, on a rejection, redraws from
// group i of streams 1, 2, ...
void bounded_integers(std::uint64_t key, std::uint64_t block, std::uint64_t range, std::uint64_t* out,
                      std::int64_t n) {
  for_each_batch(key, block, n, [&](const PhiloxBatch& b, std::int64_t first, std::int64_t count) {
    for (std::int64_t j = 0; j < count; ++j) {
      const int lane = static_cast<int>(j / 2);
      const int word = static_cast<int>(j % 2) * 2;
      std::uint64_t bits = word64(b.w[word][lane], b.w[word + 1][lane]);
      const auto element = static_cast<std::uint64_t>(first + j);
      for (std::uint32_t stream = 1; !bounded(bits, range, out[first + j]); ++stream) {
        const auto redraw = philox(counter_of(element, block, stream), key);
        bits = word64(redraw[0], redraw[1]);
      }
    }
  });
}

// A sequential stream of one task (shuffles, samples without replacement).
class SequentialStream {
 public:
  explicit SequentialStream(std::uint64_t key) : key_(key) {}
  std::uint64_t next64() {
    if (used_ == 4) {
      words_ = philox(counter_of(group_++, 0, 0), key_);
      used_ = 0;
    }
    const std::uint64_t bits = word64(words_[used_], words_[used_ + 1]);
    used_ += 2;
    return bits;
  }
  double unit() {
    const std::uint64_t bits = next64();
    return unit_double(static_cast<std::uint32_t>(bits >> 32), static_cast<std::uint32_t>(bits));
  }
  std::uint64_t below(std::uint64_t range) {
    std::uint64_t out;
    while (!bounded(next64(), range, out)) {
    }
    return out;
  }

 private:
  std::uint64_t key_;
  std::uint64_t group_ = 0;
  std::array<std::uint32_t, 4> words_{};
  int used_ = 4;
};

// --- uniform doubles, 8 groups (16 doubles) at a time ---------------------------

constexpr int kUnitGroups = 8;

// Philox4x32-10 of 8 groups of a block's stream 0 as 16 doubles: out[2l]
// and out[2l + 1] from groups[l]. Lane by lane with the rounds inside, which
// compilers vectorise for any target.
void unit_pairs_portable(std::uint64_t key, std::uint64_t block, const std::uint64_t* groups, double* out) {
  const std::array<std::uint32_t, 4> base = counter_of(0, block, 0);
  const auto key0 = static_cast<std::uint32_t>(key), key1 = static_cast<std::uint32_t>(key >> 32);
#pragma omp simd
  for (int l = 0; l < kUnitGroups; ++l) {
    std::uint32_t x0 = static_cast<std::uint32_t>(groups[l]), x1 = static_cast<std::uint32_t>(groups[l] >> 32);
    std::uint32_t x2 = base[2], x3 = base[3], k0 = key0, k1 = key1;
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
      const std::uint64_t p0 = std::uint64_t{PHILOX_M4x32_0} * x0;
      const std::uint64_t p1 = std::uint64_t{PHILOX_M4x32_1} * x2;
      x0 = static_cast<std::uint32_t>(p1 >> 32) ^ x1 ^ k0;
      x2 = static_cast<std::uint32_t>(p0 >> 32) ^ x3 ^ k1;
      x1 = static_cast<std::uint32_t>(p1);
      x3 = static_cast<std::uint32_t>(p0);
      k0 += PHILOX_W32_0;
      k1 += PHILOX_W32_1;
    }
    out[2 * l] = unit_double(x0, x1);
    out[2 * l + 1] = unit_double(x2, x3);
  }
}

// unit_double of the low 32 bits of each 64-bit lane: exact integers made
// through the 2^52 exponent trick, then the same exact sum.
[[gnu::target("avx2"), gnu::always_inline]] inline __m256d unit_doubles_avx2(__m256i hi, __m256i lo) {
  const __m256i low32 = _mm256_set1_epi64x(0xffffffffLL);
  const __m256i exponent = _mm256_set1_epi64x(0x4330000000000000LL);
  const __m256d two52 = _mm256_set1_pd(0x1p52);
  const __m256d h = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_and_si256(hi, low32), exponent)), two52);
  const __m256d l = _mm256_sub_pd(
      _mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(_mm256_and_si256(lo, low32), 11), exponent)), two52);
  return _mm256_mul_pd(_mm256_add_pd(_mm256_mul_pd(h, _mm256_set1_pd(0x1p21)), l), _mm256_set1_pd(0x1p-53));
}

// The doubles of 8 groups (groups_a's 4, then groups_b's): even[l] of group
// l's even element, odd[l] of its odd one.
struct UnitHalves {
  __m256d even_a, odd_a, even_b, odd_b;
};

// Philox4x32-10 with AVX2: each 64-bit lane holds one counter word in its
// low 32 bits (the high bits are never read: products take the low halves),
// so a 32x32 -> 64-bit multiply is one vpmuludq.
[[gnu::target("avx2"), gnu::always_inline]] inline UnitHalves unit_halves_avx2(std::uint64_t key, std::uint64_t block,
                                                                               __m256i groups_a, __m256i groups_b) {
  const std::array<std::uint32_t, 4> base = counter_of(0, block, 0);
  const __m256i m0 = _mm256_set1_epi64x(PHILOX_M4x32_0), m1 = _mm256_set1_epi64x(PHILOX_M4x32_1);
  __m256i a0 = groups_a, a1 = _mm256_srli_epi64(groups_a, 32), b0 = groups_b, b1 = _mm256_srli_epi64(groups_b, 32);
  __m256i a2 = _mm256_set1_epi64x(base[2]), a3 = _mm256_set1_epi64x(base[3]), b2 = a2, b3 = a3;
  auto k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    const __m256i key0 = _mm256_set1_epi64x(k0), key1 = _mm256_set1_epi64x(k1);
    const __m256i pa0 = _mm256_mul_epu32(a0, m0), pa1 = _mm256_mul_epu32(a2, m1);
    const __m256i pb0 = _mm256_mul_epu32(b0, m0), pb1 = _mm256_mul_epu32(b2, m1);
    a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa1, 32), a1), key0);
    a2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pa0, 32), a3), key1);
    b0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb1, 32), b1), key0);
    b2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(pb0, 32), b3), key1);
    a1 = pa1;
    a3 = pa0;
    b1 = pb1;
    b3 = pb0;
    k0 += PHILOX_W32_0;
    k1 += PHILOX_W32_1;
  }
  return {unit_doubles_avx2(a0, a1), unit_doubles_avx2(a2, a3), unit_doubles_avx2(b0, b1), unit_doubles_avx2(b2, b3)};
}

// 16 doubles in element order. Groups come in lane order {0, 2, 1, 3} so
// that unpacking the halves restores element order.
[[gnu::target("avx2"), gnu::always_inline]] inline void unit_pairs_avx2(std::uint64_t key, std::uint64_t block,
                                                                        __m256i groups_a, __m256i groups_b,
                                                                        double* out) {
  const UnitHalves h = unit_halves_avx2(key, block, groups_a, groups_b);
  _mm256_storeu_pd(out, _mm256_unpacklo_pd(h.even_a, h.odd_a));
  _mm256_storeu_pd(out + 4, _mm256_unpackhi_pd(h.even_a, h.odd_a));
  _mm256_storeu_pd(out + 8, _mm256_unpacklo_pd(h.even_b, h.odd_b));
  _mm256_storeu_pd(out + 12, _mm256_unpackhi_pd(h.even_b, h.odd_b));
}

// 16 doubles of groups first .. first + 7.
[[gnu::target("avx2")]] void consecutive_pairs_avx2(std::uint64_t key, std::uint64_t block, std::uint64_t first,
                                                    std::int64_t batches, double* out) {
  const __m256i order = _mm256_setr_epi64x(0, 2, 1, 3);
  for (std::int64_t b = 0; b < batches; ++b) {
    const std::uint64_t g = first + static_cast<std::uint64_t>(b) * kUnitGroups;
    unit_pairs_avx2(key, block, _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(g)), order),
                    _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(g + 4)), order),
                    out + 2 * kUnitGroups * b);
  }
}

// 16 doubles of groups[0 .. 7], batch after batch.
[[gnu::target("avx2")]] void gathered_pairs_avx2(std::uint64_t key, std::uint64_t block,
                                                 const std::uint64_t* groups, std::int64_t batches, double* out) {
  for (std::int64_t b = 0; b < batches; ++b) {
    const auto* g = reinterpret_cast<const __m256i*>(groups + kUnitGroups * b);
    unit_pairs_avx2(key, block, _mm256_permute4x64_epi64(_mm256_loadu_si256(g), 0xd8),
                    _mm256_permute4x64_epi64(_mm256_loadu_si256(g + 1), 0xd8), out + 2 * kUnitGroups * b);
  }
}

// Groups first + l * step for l < 8 * batches: evens[l] and odds[l] are
// their even and odd elements.
[[gnu::target("avx2")]] void strided_halves_avx2(std::uint64_t key, std::uint64_t block, std::uint64_t first,
                                                 std::uint64_t step, std::int64_t batches, double* evens,
                                                 double* odds) {
  const auto s = static_cast<long long>(step);
  const __m256i lanes = _mm256_setr_epi64x(0, s, 2 * s, 3 * s);
  for (std::int64_t b = 0; b < batches; ++b) {
    const auto g = static_cast<long long>(first + static_cast<std::uint64_t>(b * kUnitGroups) * step);
    const UnitHalves h = unit_halves_avx2(key, block, _mm256_add_epi64(_mm256_set1_epi64x(g), lanes),
                                          _mm256_add_epi64(_mm256_set1_epi64x(g + 4 * s), lanes));
    _mm256_storeu_pd(evens + kUnitGroups * b, h.even_a);
    _mm256_storeu_pd(evens + kUnitGroups * b + 4, h.even_b);
    _mm256_storeu_pd(odds + kUnitGroups * b, h.odd_a);
    _mm256_storeu_pd(odds + kUnitGroups * b + 4, h.odd_b);
  }
}

void strided_halves_portable(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::uint64_t step,
                             std::int64_t batches, double* evens, double* odds) {
  std::uint64_t groups[kUnitGroups];
  double pairs[2 * kUnitGroups];
  for (std::int64_t b = 0; b < batches; ++b) {
    for (int l = 0; l < kUnitGroups; ++l) groups[l] = first + static_cast<std::uint64_t>(b * kUnitGroups + l) * step;
    unit_pairs_portable(key, block, groups, pairs);
    for (int l = 0; l < kUnitGroups; ++l) {
      evens[kUnitGroups * b + l] = pairs[2 * l];
      odds[kUnitGroups * b + l] = pairs[2 * l + 1];
    }
  }
}

void consecutive_pairs_portable(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::int64_t batches,
                                double* out) {
  std::uint64_t groups[kUnitGroups];
  for (std::int64_t b = 0; b < batches; ++b) {
    for (int l = 0; l < kUnitGroups; ++l)
      groups[l] = first + static_cast<std::uint64_t>(b * kUnitGroups + l);
    unit_pairs_portable(key, block, groups, out + 2 * kUnitGroups * b);
  }
}

void gathered_pairs_portable(std::uint64_t key, std::uint64_t block, const std::uint64_t* groups,
                             std::int64_t batches, double* out) {
  for (std::int64_t b = 0; b < batches; ++b)
    unit_pairs_portable(key, block, groups + kUnitGroups * b, out + 2 * kUnitGroups * b);
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

// 2 * count doubles of groups first .. first + count - 1.
void consecutive_pairs(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::int64_t count,
                       double* out) {
  const std::int64_t whole = count / kUnitGroups;
  const auto run = has_avx2() ? &consecutive_pairs_avx2 : &consecutive_pairs_portable;
  run(key, block, first, whole, out);
  if (const std::int64_t rest = count - whole * kUnitGroups; rest > 0) {
    double tail[2 * kUnitGroups];
    run(key, block, first + static_cast<std::uint64_t>(whole * kUnitGroups), 1, tail);
    std::memcpy(out + 2 * whole * kUnitGroups, tail, static_cast<std::size_t>(2 * rest) * sizeof(double));
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

std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> counter, std::uint64_t key) {
  const philox4x32_ctr_t c = {{counter[0], counter[1], counter[2], counter[3]}};
  const philox4x32_key_t k = {{static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(key >> 32)}};
  const philox4x32_ctr_t r = philox4x32_R(10, c, k);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

void philox_batch(std::uint64_t key, std::uint64_t block, std::uint32_t stream, std::uint64_t first,
                  PhiloxBatch& out) {
  std::uint32_t(&c)[4][kPhiloxLanes] = out.w;
  const std::array<std::uint32_t, 4> base = counter_of(0, block, stream);
  for (int l = 0; l < kPhiloxLanes; ++l) {
    const std::uint64_t group = first + static_cast<std::uint64_t>(l);
    c[0][l] = static_cast<std::uint32_t>(group);
    c[1][l] = static_cast<std::uint32_t>(group >> 32);
    c[2][l] = base[2];
    c[3][l] = base[3];
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(key);
  std::uint32_t k1 = static_cast<std::uint32_t>(key >> 32);
  // Random123's philox4x32 round, lane by lane: the 32x32 -> 64-bit products
  // vectorise (pmuludq), which its one-counter form cannot.
  for (int round = 0; round < 10; ++round) {
#pragma omp simd
    for (int l = 0; l < kPhiloxLanes; ++l) {
      const std::uint64_t p0 = std::uint64_t{PHILOX_M4x32_0} * c[0][l];
      const std::uint64_t p1 = std::uint64_t{PHILOX_M4x32_1} * c[2][l];
      const std::uint32_t next0 = static_cast<std::uint32_t>(p1 >> 32) ^ c[1][l] ^ k0;
      const std::uint32_t next2 = static_cast<std::uint32_t>(p0 >> 32) ^ c[3][l] ^ k1;
      c[1][l] = static_cast<std::uint32_t>(p1);
      c[3][l] = static_cast<std::uint32_t>(p0);
      c[0][l] = next0;
      c[2][l] = next2;
    }
    k0 += PHILOX_W32_0;
    k1 += PHILOX_W32_1;
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
  const std::int64_t whole = n / kUnitGroups;
  const auto run = has_avx2() ? &gathered_pairs_avx2 : &gathered_pairs_portable;
  run(key, block, groups, whole, pairs);
  if (const std::int64_t rest = n - whole * kUnitGroups; rest > 0) {
    std::uint64_t tail_groups[kUnitGroups] = {};
    double tail[2 * kUnitGroups];
    std::copy_n(groups + whole * kUnitGroups, rest, tail_groups);
    run(key, block, tail_groups, 1, tail);
    std::memcpy(pairs + 2 * whole * kUnitGroups, tail, static_cast<std::size_t>(2 * rest) * sizeof(double));
  }
}

void uniform_halves_strided(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::uint64_t step,
                            double* evens, double* odds, std::int64_t n) {
  const std::int64_t whole = n / kUnitGroups;
  const auto run = has_avx2() ? &strided_halves_avx2 : &strided_halves_portable;
  run(key, block, first, step, whole, evens, odds);
  if (const std::int64_t rest = n - whole * kUnitGroups; rest > 0) {
    double tail_evens[kUnitGroups], tail_odds[kUnitGroups];
    run(key, block, first + static_cast<std::uint64_t>(whole * kUnitGroups) * step, step, 1, tail_evens, tail_odds);
    std::copy_n(tail_evens, rest, evens + whole * kUnitGroups);
    std::copy_n(tail_odds, rest, odds + whole * kUnitGroups);
  }
}

void uniform_doubles_at(std::uint64_t key, std::uint64_t block, const std::uint64_t* elements, double* out,
                        std::int64_t n) {
  // A chunk's groups, then each element's half of its group.
  constexpr std::int64_t kChunk = 32 * kUnitGroups;
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
      for_each_batch(spec.key, spec.block, n, [&](const PhiloxBatch& b, std::int64_t first, std::int64_t count) {
        alignas(64) double values[2 * kPhiloxLanes];
        for (int l = 0; l < kPhiloxLanes; ++l) {
          const double radius = std::sqrt(-2.0 * std::log1p(-unit_double(b.w[0][l], b.w[1][l])));
          const double angle = 2.0 * std::numbers::pi * unit_double(b.w[2][l], b.w[3][l]);
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
