// src/array/kernels/random.hpp - block kernels of weft::array::random.
//
// Philox4x32-10 (Random123's constants, checked against <Random123/philox.h>
// bit for bit) with the call's 64-bit key as its key and the counter
//   {group low 32 bits, group high 32 bits, block low 32 bits,
//    block bits 32..47 | stream << 16}
// where `group` numbers the 128-bit outputs of a block's stream (two doubles
// each) and `stream` is 0 for the elements themselves and 1, 2, ... for the
// rare redraws of integer rejection sampling. A block's values are thus a
// function of (key, block, position) alone.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::array::kernels {

/// Philox4x32-10 of `counter` under `key` (the single-counter form).
std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> counter, std::uint64_t key);

/// Groups the bulk generator computes at once (structure of arrays, so that
/// the rounds vectorise).
inline constexpr int kPhiloxLanes = 16;
/// Words w[0..3][l] of groups first .. first + kPhiloxLanes - 1 of a block's stream.
struct PhiloxBatch {
  alignas(64) std::uint32_t w[4][kPhiloxLanes];
};
void philox_batch(std::uint64_t key, std::uint64_t block, std::uint32_t stream, std::uint64_t first,
                  PhiloxBatch& out);

/// Uniform doubles in [0, 1) of elements [first, first + n) of a block's
/// stream (its C order): element i is from group i / 2, 53 bits of its words
/// 0-1 when i is even, of words 2-3 when odd. Any run of elements can be
/// generated alone, so a fused expression makes its tiles without the block.
/// Vectorised with AVX2 where the CPU has it (chosen at run time; the values
/// are the same bits either way).
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
