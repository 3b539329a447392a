// src/array/kernels/random.hpp - block kernels of weft::array::random.
//
// ARS-7 (Random123's ars1xm128i with its default 7 rounds: AES rounds under
// Weyl-sequence round keys; passes BigCrush, not cryptographic) with the
// 128-bit key {the call's 64-bit key, 0} and the 128-bit counter
//   {group, block bits 0..47 | stream << 48}
// where `group` numbers the 128-bit outputs of a block's stream (two elements
// each: the low 64 bits for the even one, the high 64 for the odd one) and
// `stream` is 0 for the elements themselves and 1, 2, ... for the rare
// redraws of integer rejection sampling. A block's values are thus a function
// of (key, block, position) alone. AES instructions make it about 3.7 times
// faster than Philox4x32-10 with AVX2 (docs/benchmarks.md); where a CPU has
// none, software AES rounds give the same bits, slowly.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::array::kernels {

/// The 128-bit output {low word, high word} of `group` of a block's stream.
std::array<std::uint64_t, 2> ars_group(std::uint64_t key, std::uint64_t block, std::uint32_t stream,
                                       std::uint64_t group);

/// The instructions the bulk kernels run on; every path gives the same bits.
enum class ArsIsa : std::uint8_t {
  portable,  ///< AES rounds in software
  aesni,     ///< AVX2 and AES-NI (128-bit AES rounds)
  vaes,      ///< AVX2 and VAES (256-bit AES rounds: two counters per instruction)
};
/// The fastest path this CPU has, used unless set_ars_isa chose another.
ArsIsa best_ars_isa();
ArsIsa ars_isa();
/// Uses `isa` from now on in this process (tests compare the paths);
/// ValueError "bad-argument" if the CPU lacks its instructions.
void set_ars_isa(ArsIsa isa);

/// Groups the bulk kernels make at once.
inline constexpr int kArsGroups = 16;
/// The 2 * n words of groups first .. first + n - 1 of a block's stream, in
/// element order: words[2i] and words[2i + 1] are group first + i's low and
/// high words.
void ars_words(std::uint64_t key, std::uint64_t block, std::uint32_t stream, std::uint64_t first,
               std::uint64_t* words, std::int64_t n);

/// Uniform doubles in [0, 1) of elements [first, first + n) of a block's
/// stream (its C order): element i is the top 53 bits of group i / 2's low
/// word when i is even, of its high word when odd. Any run of elements can be
/// generated alone, so a fused expression makes its tiles without the block.
void uniform_doubles(std::uint64_t key, std::uint64_t block, std::uint64_t first, double* out, std::int64_t n);
/// The same for n elements at any positions of the block (a transposed or
/// strided view of it): out[i] is element elements[i].
void uniform_doubles_at(std::uint64_t key, std::uint64_t block, const std::uint64_t* elements, double* out,
                        std::int64_t n);
/// Both doubles of n groups at any positions: pairs[2i] and pairs[2i + 1]
/// are elements 2 * groups[i] and 2 * groups[i] + 1.
void uniform_pairs_at(std::uint64_t key, std::uint64_t block, const std::uint64_t* groups, double* pairs,
                      std::int64_t n);

/// Both doubles of the n groups first, first + step, ..., split: evens[i]
/// is element 2 * (first + i * step), odds[i] its successor. Two adjacent
/// rows of a transposed random block are such groups (its columns 2r, 2r + 1).
void uniform_halves_strided(std::uint64_t key, std::uint64_t block, std::uint64_t first, std::uint64_t step,
                            double* evens, double* odds, std::int64_t n);

enum class Distribution : std::uint8_t { uniform, normal, exponential, integers };

/// One block of a distribution: uniform a + b * U, normal a + b * Z,
/// exponential b * E, integers low + [0, range) as dtype.
struct RandomSpec {
  Distribution distribution;
  DType dtype;
  std::uint64_t key;
  std::uint64_t block;
  double a;
  double b;
  std::int64_t low;
  std::uint64_t range;
};
NDArray random_block(const RandomSpec& spec, const Shape& shape);

/// A block of choice with replacement: int64 indices into a population of
/// `population` elements, uniform (cdf empty) or drawn through the
/// normalised cumulative probabilities `cdf`; then the population's elements
/// at those indices when its blocks are given.
struct ChoiceSpec {
  std::uint64_t key;
  std::uint64_t block;
  std::int64_t population;
};
NDArray choice_block(const ChoiceSpec& spec, const Shape& shape, const std::vector<double>& cdf,
                     const std::vector<NDArray>& population);

/// A whole sample without replacement, as int64 indices of shape `size`:
/// a partial Fisher-Yates shuffle of range(population), or, with
/// probabilities p, the indices in increasing order of exponential keys
/// E_i / p_i (the order successive sampling draws them in).
struct SampleSpec {
  std::uint64_t key;
  std::int64_t population;
};
NDArray sample_without_replacement(const SampleSpec& spec, const Shape& size, const std::vector<double>& p);

/// The part of `sample` at offset with `shape`, then the population's
/// elements (rows, for an n-d population split along axis 0 into `population`)
/// at those indices; the indices themselves when population is empty.
NDArray take_sample_block(const Shape& offset, const Shape& shape, const NDArray& sample,
                          const std::vector<NDArray>& population);

}  // namespace weft::array::kernels
