// weft/array/random.hpp - random arrays (dask.array.random).
//
// Values come from ARS-7 (Random123's AES-round generator), a counter-based
// generator: the value of an element depends only on the call's 64-bit key,
// its block's flat index and its position in the block (the counter), never
// on the order in which blocks run. So the same seed and the same chunks give
// the same values on the sync, threads and distributed schedulers, on any
// number of ranks; other chunks give other values (streams are per block).
//
// RandomState(seed) is dask's da.random.RandomState: each call draws a new
// key from the state (seed, number of calls so far), so successive calls
// differ and a RandomState built with the same seed repeats the sequence.
// The free functions use a process-wide state seeded from std::random_device
// (a fresh key per call, as dask's default); seed() reseeds it.
//
// Distribution parameters are scalars; `size` is the shape (0-d by default,
// as NumPy's size=None) and `chunks` cuts it as everywhere else. NumPy's
// values are not reproduced bit for bit (another generator), only its
// distributions, dtypes and argument checks.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "weft/array/array.hpp"

namespace weft::array::random {

class RandomState {
 public:
  /// Seeded from std::random_device.
  RandomState();
  explicit RandomState(std::uint64_t seed);
  RandomState(const RandomState&) = delete;
  RandomState& operator=(const RandomState&) = delete;

  /// Restarts the sequence of calls from `seed`.
  void seed(std::uint64_t seed);

  /// Floats uniform in [0, 1), 53 random bits each.
  Array random_sample(Shape size = {}, const ChunkSpec& chunks = {});
  Array random(Shape size = {}, const ChunkSpec& chunks = {});
  /// Floats uniform in [low, high): low + (high - low) * random_sample().
  Array uniform(double low = 0.0, double high = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
  /// Normal(loc, scale) (Box-Muller). ValueError "value.bad-scale" for scale < 0.
  Array normal(double loc = 0.0, double scale = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
  Array standard_normal(Shape size = {}, const ChunkSpec& chunks = {});
  /// Exponential with mean `scale`. ValueError "value.bad-scale" for scale < 0.
  Array exponential(double scale = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
  /// Integers uniform in [low, high) of an integer dtype, exactly uniform
  /// (Lemire's multiply with rejection); [0, low) when high is not given.
  /// ValueError "value.bad-range" for low >= high or bounds the dtype cannot
  /// hold; TypeError "type.randint-dtype" for a dtype that is not an integer.
  Array randint(std::int64_t low, std::optional<std::int64_t> high = std::nullopt, Shape size = {},
                const ChunkSpec& chunks = {}, DType dtype = DType::int64);
  /// Samples of range(a) (int64) or of a 1-d array's elements, with or
  /// without replacement, uniformly or with probabilities p (p must have a's
  /// length, be non-negative and sum to 1: ValueError
  /// "value.bad-probabilities"). Without replacement, one task draws the
  /// whole sample (successive sampling; weighted by p through exponential
  /// keys) and the blocks are taken from it. ValueError "value.sample-too-large"
  /// for more samples than a has (or than it has non-zero p) without
  /// replacement, "value.empty-population" for samples from nothing,
  /// "value.bad-ndim" for an array a that is not 1-d.
  Array choice(std::int64_t a, std::optional<Shape> size = std::nullopt, bool replace = true,
               std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
  Array choice(const Array& a, std::optional<Shape> size = std::nullopt, bool replace = true,
               std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
  Array choice(const NDArray& a, std::optional<Shape> size = std::nullopt, bool replace = true,
               std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
  /// A random permutation of range(n) (int64), or of x along its first axis
  /// (x's chunks; every output block reads the blocks of its column of x).
  /// One task shuffles the n indices (Fisher-Yates). ValueError
  /// "value.bad-ndim" for a 0-d x.
  Array permutation(std::int64_t n, const ChunkSpec& chunks = {});
  Array permutation(const Array& x);
  Array permutation(const NDArray& x);

 private:
  /// The generator key of the next call.
  std::uint64_t next_key();

  std::atomic<std::uint64_t> seed_;
  std::atomic<std::uint64_t> calls_{0};
};

/// Reseeds the process-wide state that the functions below use.
void seed(std::uint64_t seed);

Array random_sample(Shape size = {}, const ChunkSpec& chunks = {});
Array random(Shape size = {}, const ChunkSpec& chunks = {});
Array uniform(double low = 0.0, double high = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
Array normal(double loc = 0.0, double scale = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
Array standard_normal(Shape size = {}, const ChunkSpec& chunks = {});
Array exponential(double scale = 1.0, Shape size = {}, const ChunkSpec& chunks = {});
Array randint(std::int64_t low, std::optional<std::int64_t> high = std::nullopt, Shape size = {},
              const ChunkSpec& chunks = {}, DType dtype = DType::int64);
Array choice(std::int64_t a, std::optional<Shape> size = std::nullopt, bool replace = true,
             std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
Array choice(const Array& a, std::optional<Shape> size = std::nullopt, bool replace = true,
             std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
Array choice(const NDArray& a, std::optional<Shape> size = std::nullopt, bool replace = true,
             std::optional<std::vector<double>> p = std::nullopt, const ChunkSpec& chunks = {});
Array permutation(std::int64_t n, const ChunkSpec& chunks = {});
Array permutation(const Array& x);
Array permutation(const NDArray& x);

}  // namespace weft::array::random
