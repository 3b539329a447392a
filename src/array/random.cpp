// src/array/random.cpp - the layers of weft::array::random (weft/array/random.hpp).
#include "weft/array/random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include <cstring>

#include "kernels/creation.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/random.hpp"
#include "weft/array/creation.hpp"
#include "weft/error.hpp"

namespace weft::array::random {

namespace {

using kernels::check_shape;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t entropy_seed() {
  std::random_device device;
  return static_cast<std::uint64_t>(device()) << 32 ^ device();
}

// Uniform doubles a + b * U as a fused elementwise program that generates
// each tile where it is read (kernels/elementwise.hpp's random leaves): the
// same values as random_block's, never materialised unless asked for.
Array generated_uniform(detail::ArrayMeta meta, const kernels::RandomSpec& spec) {
  using kernels::Instr;
  using kernels::Op;
  kernels::Program program{kernels::RandomLeaf::instruction(spec.key, static_cast<int>(meta.shape.size()))};
  auto emit = [&](Instr ins) {
    program.push_back(ins);
    return static_cast<std::int32_t>(program.size() - 1);
  };
  auto constant = [&](double v) {
    Instr ins;
    ins.op = Op::constant;
    std::memcpy(ins.value.data(), &v, sizeof v);
    return emit(ins);
  };
  auto binary = [&](Op op, std::int32_t a, std::int32_t b) {
    Instr ins;
    ins.op = op;
    ins.args = {a, b, -1};
    return emit(ins);
  };
  if (spec.a != 0.0 || spec.b != 1.0) {
    const std::int32_t scaled = binary(Op::multiply, constant(spec.b), 0);
    binary(Op::add, constant(spec.a), scaled);
  }
  return make_array(std::make_shared<kernels::ElementwiseLayer>(std::move(meta), std::move(program),
                                                                std::vector<Array>{}));
}

// Blocks of one distribution: the spec with each block's flat index.
Array distribution(std::string_view op, kernels::RandomSpec spec, Shape size, const ChunkSpec& chunk_spec) {
  check_shape(size, op);
  Chunks chunks = normalize_chunks(chunk_spec, size, spec.dtype);
  const Token token = detail::op_token(op, spec.key, static_cast<int>(spec.distribution), spec.a, spec.b, spec.low,
                                       spec.range, spec.dtype, size, chunks);
  if (spec.distribution == kernels::Distribution::uniform && size.size() <= kernels::RandomLeaf::kMaxAxes)
    return generated_uniform(detail::ArrayMeta{std::string(op), token, std::move(size), chunks, spec.dtype}, spec);
  const std::vector<std::int64_t> grid = numblocks(chunks);
  return make_array(detail::ArrayMeta{std::string(op), token, std::move(size), chunks, spec.dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      kernels::RandomSpec block = spec;
                      block.block = static_cast<std::uint64_t>(kernels::flat_block_index(grid, index));
                      return weft::detail::make_call_task(std::move(key), false, &kernels::random_block, block,
                                                          block_shape(chunks, index));
                    });
}

void check_scale(double scale, std::string_view op) {
  if (!(scale >= 0))
    throw ValueError("bad-scale", std::string(op) + ": scale must be non-negative, not " + std::to_string(scale));
}

// A population to draw from: range(n), or the elements of a 1-d array.
struct Population {
  std::int64_t size;
  DType dtype;
  std::vector<Delayed<NDArray>> blocks;  ///< empty for range(n)
};

// The normalised cumulative probabilities of p (empty without p), checked as NumPy checks them.
std::vector<double> checked_cdf(const std::optional<std::vector<double>>& p, std::int64_t population) {
  if (!p) return {};
  if (static_cast<std::int64_t>(p->size()) != population)
    throw ValueError("bad-probabilities", "choice: a and p must have the same size (" +
                                              std::to_string(population) + " and " + std::to_string(p->size()) + ")");
  double total = 0;
  for (double q : *p) {
    if (!(q >= 0) || !std::isfinite(q))
      throw ValueError("bad-probabilities", "choice: probabilities must be non-negative and finite, not " +
                                                std::to_string(q));
    total += q;
  }
  if (std::abs(total - 1.0) > std::sqrt(std::numeric_limits<double>::epsilon()))
    throw ValueError("bad-probabilities", "choice: probabilities sum to " + std::to_string(total) + ", not 1");
  std::vector<double> cdf(p->size());
  std::partial_sum(p->begin(), p->end(), cdf.begin());
  for (double& c : cdf) c /= cdf.back();
  return cdf;
}

Array choose(std::uint64_t call_key, const Population& from, const std::optional<Shape>& size_arg, bool replace,
             const std::optional<std::vector<double>>& p, const ChunkSpec& chunk_spec) {
  Shape size = size_arg.value_or(Shape{});
  check_shape(size, "choice");
  const std::int64_t samples = shape_size(size);
  if (from.size < 0 || (from.size == 0 && samples > 0))
    throw ValueError("empty-population", "choice: cannot take " + std::to_string(samples) +
                                             " samples from a population of " + std::to_string(from.size));
  std::vector<double> cdf = checked_cdf(p, from.size);
  Chunks chunks = normalize_chunks(chunk_spec, size, from.dtype);
  const Token token = detail::op_token("choice", call_key, from.size, from.blocks, size, replace, p, chunks);
  const std::vector<std::int64_t> grid = numblocks(chunks);
  const std::vector<Delayed<NDArray>> population = from.blocks;
  if (replace) {
    return make_array(detail::ArrayMeta{"choice", token, std::move(size), chunks, from.dtype},
                      [=, n = from.size](std::span<const std::int64_t> index, Key key) {
                        const kernels::ChoiceSpec spec{
                            call_key, static_cast<std::uint64_t>(kernels::flat_block_index(grid, index)), n};
                        return weft::detail::make_call_task(std::move(key), false, &kernels::choice_block, spec,
                                                            block_shape(chunks, index), cdf, population);
                      });
  }
  const std::int64_t candidates =
      p ? static_cast<std::int64_t>(std::count_if(p->begin(), p->end(), [](double q) { return q > 0; })) : from.size;
  if (samples > candidates)
    throw ValueError("sample-too-large", "choice: cannot take " + std::to_string(samples) +
                                             " samples without replacement from " + std::to_string(candidates) +
                                             (p ? " elements of non-zero probability" : " elements"));
  const Delayed<NDArray> sample(weft::detail::make_call_task(
      Key("choice-sample", token), false, &kernels::sample_without_replacement,
      kernels::SampleSpec{call_key, from.size}, size, p.value_or(std::vector<double>{})));
  const auto offsets = kernels::all_block_offsets(chunks);
  return make_array(detail::ArrayMeta{"choice", token, std::move(size), chunks, from.dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      return weft::detail::make_call_task(std::move(key), false, &kernels::take_sample_block,
                                                          kernels::block_start(offsets, index),
                                                          block_shape(chunks, index), sample, population);
                    });
}

Population population_of(const Array& a) {
  if (a.ndim() != 1)
    throw ValueError("bad-ndim", "choice: a must be 1-d, not " + std::to_string(a.ndim()) + "-d");
  return {a.shape()[0], a.dtype(), to_delayed(a)};
}

// One task shuffling range(n), whose result the blocks take from.
Delayed<NDArray> shuffled_indices(std::uint64_t call_key, std::int64_t n, const Token& token) {
  return Delayed<NDArray>(weft::detail::make_call_task(Key("permutation-indices", token), false,
                                                       &kernels::sample_without_replacement,
                                                       kernels::SampleSpec{call_key, n}, Shape{n},
                                                       std::vector<double>{}));
}

RandomState& global_state() {
  static RandomState state;
  return state;
}

}  // namespace

RandomState::RandomState() : RandomState(entropy_seed()) {}

RandomState::RandomState(std::uint64_t seed) : seed_(seed) {}

void RandomState::seed(std::uint64_t seed) {
  seed_ = seed;
  calls_ = 0;
}

std::uint64_t RandomState::next_key() { return splitmix64(seed_.load() ^ splitmix64(calls_++)); }

Array RandomState::random_sample(Shape size, const ChunkSpec& chunks) {
  return distribution("random_sample",
                      {kernels::Distribution::uniform, DType::float64, next_key(), 0, 0.0, 1.0, 0, 0},
                      std::move(size), chunks);
}

Array RandomState::random(Shape size, const ChunkSpec& chunks) { return random_sample(std::move(size), chunks); }

Array RandomState::uniform(double low, double high, Shape size, const ChunkSpec& chunks) {
  return distribution("uniform",
                      {kernels::Distribution::uniform, DType::float64, next_key(), 0, low, high - low, 0, 0},
                      std::move(size), chunks);
}

Array RandomState::normal(double loc, double scale, Shape size, const ChunkSpec& chunks) {
  check_scale(scale, "normal");
  return distribution("normal", {kernels::Distribution::normal, DType::float64, next_key(), 0, loc, scale, 0, 0},
                      std::move(size), chunks);
}

Array RandomState::standard_normal(Shape size, const ChunkSpec& chunks) {
  return normal(0.0, 1.0, std::move(size), chunks);
}

Array RandomState::exponential(double scale, Shape size, const ChunkSpec& chunks) {
  check_scale(scale, "exponential");
  return distribution("exponential",
                      {kernels::Distribution::exponential, DType::float64, next_key(), 0, 0.0, scale, 0, 0},
                      std::move(size), chunks);
}

Array RandomState::randint(std::int64_t low, std::optional<std::int64_t> high, Shape size, const ChunkSpec& chunks,
                           DType dtype) {
  if (!is_integer(dtype))
    throw TypeError("randint-dtype", "randint: the dtype must be an integer type, not " +
                                         std::string(dtype_name(dtype)));
  if (!high) {
    high = low;
    low = 0;
  }
  if (low >= *high)
    throw ValueError("bad-range", "randint: low >= high (" + std::to_string(low) + " >= " +
                                      std::to_string(*high) + ")");
  const auto [lowest, highest] = dispatch(dtype, [](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>)
      return std::pair<__int128, __int128>(std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
    else
      return std::pair<__int128, __int128>(0, 0);
  });
  if (low < lowest || *high - 1 > highest)
    throw ValueError("bad-range", "randint: [" + std::to_string(low) + ", " + std::to_string(*high) +
                                      ") is out of bounds for " + std::string(dtype_name(dtype)));
  const auto range = static_cast<std::uint64_t>(static_cast<__int128>(*high) - low);
  return distribution("randint", {kernels::Distribution::integers, dtype, next_key(), 0, 0.0, 0.0, low, range},
                      std::move(size), chunks);
}

Array RandomState::choice(std::int64_t a, std::optional<Shape> size, bool replace, std::optional<std::vector<double>> p,
                          const ChunkSpec& chunks) {
  return choose(next_key(), Population{a, DType::int64, {}}, size, replace, p, chunks);
}

Array RandomState::choice(const Array& a, std::optional<Shape> size, bool replace,
                          std::optional<std::vector<double>> p, const ChunkSpec& chunks) {
  return choose(next_key(), population_of(a), size, replace, p, chunks);
}

Array RandomState::choice(const NDArray& a, std::optional<Shape> size, bool replace,
                          std::optional<std::vector<double>> p, const ChunkSpec& chunks) {
  return choice(from_array(a, -1), std::move(size), replace, std::move(p), chunks);
}

Array RandomState::permutation(std::int64_t n, const ChunkSpec& chunk_spec) {
  Shape shape{n};
  check_shape(shape, "permutation");
  const std::uint64_t call_key = next_key();
  Chunks chunks = normalize_chunks(chunk_spec, shape, DType::int64);
  const Token token = detail::op_token("permutation", call_key, n, chunks);
  const Delayed<NDArray> order = shuffled_indices(call_key, n, token);
  const std::vector<std::int64_t> offsets = block_offsets(chunks[0]);
  return make_array(detail::ArrayMeta{"permutation", token, std::move(shape), chunks, DType::int64},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const auto i = static_cast<std::size_t>(index[0]);
                      return weft::detail::make_call_task(std::move(key), false, &kernels::take_sample_block,
                                                          Shape{offsets[i]}, Shape{chunks[0][i]}, order,
                                                          std::vector<Delayed<NDArray>>{});
                    });
}

Array RandomState::permutation(const Array& x) {
  if (x.ndim() == 0) throw ValueError("bad-ndim", "permutation: x must have at least one dimension");
  const std::uint64_t call_key = next_key();
  const std::int64_t n = x.shape()[0];
  const Token token = detail::op_token("permutation", call_key, x);
  const Delayed<NDArray> order = shuffled_indices(call_key, n, token);
  const std::vector<std::int64_t> offsets = block_offsets(x.chunks()[0]);
  const std::int64_t row_blocks = x.numblocks()[0];
  return make_array(detail::ArrayMeta{"permutation", token, x.shape(), x.chunks(), x.dtype()},
                    [=](std::span<const std::int64_t> index, Key key) {
                      // Rows come from any block of this block's column of x.
                      std::vector<Delayed<NDArray>> column;
                      std::vector<std::int64_t> source(index.begin(), index.end());
                      for (source[0] = 0; source[0] < row_blocks; ++source[0]) column.push_back(x.block(source));
                      const auto i = static_cast<std::size_t>(index[0]);
                      return weft::detail::make_call_task(std::move(key), false, &kernels::take_sample_block,
                                                          Shape{offsets[i]}, Shape{x.chunks()[0][i]}, order,
                                                          std::move(column));
                    });
}

Array RandomState::permutation(const NDArray& x) { return permutation(from_array(x)); }

void seed(std::uint64_t seed) { global_state().seed(seed); }

Array random_sample(Shape size, const ChunkSpec& chunks) { return global_state().random_sample(std::move(size), chunks); }
Array random(Shape size, const ChunkSpec& chunks) { return global_state().random(std::move(size), chunks); }
Array uniform(double low, double high, Shape size, const ChunkSpec& chunks) {
  return global_state().uniform(low, high, std::move(size), chunks);
}
Array normal(double loc, double scale, Shape size, const ChunkSpec& chunks) {
  return global_state().normal(loc, scale, std::move(size), chunks);
}
Array standard_normal(Shape size, const ChunkSpec& chunks) {
  return global_state().standard_normal(std::move(size), chunks);
}
Array exponential(double scale, Shape size, const ChunkSpec& chunks) {
  return global_state().exponential(scale, std::move(size), chunks);
}
Array randint(std::int64_t low, std::optional<std::int64_t> high, Shape size, const ChunkSpec& chunks, DType dtype) {
  return global_state().randint(low, high, std::move(size), chunks, dtype);
}
Array choice(std::int64_t a, std::optional<Shape> size, bool replace, std::optional<std::vector<double>> p,
             const ChunkSpec& chunks) {
  return global_state().choice(a, std::move(size), replace, std::move(p), chunks);
}
Array choice(const Array& a, std::optional<Shape> size, bool replace, std::optional<std::vector<double>> p,
             const ChunkSpec& chunks) {
  return global_state().choice(a, std::move(size), replace, std::move(p), chunks);
}
Array choice(const NDArray& a, std::optional<Shape> size, bool replace, std::optional<std::vector<double>> p,
             const ChunkSpec& chunks) {
  return global_state().choice(a, std::move(size), replace, std::move(p), chunks);
}
Array permutation(std::int64_t n, const ChunkSpec& chunks) { return global_state().permutation(n, chunks); }
Array permutation(const Array& x) { return global_state().permutation(x); }
Array permutation(const NDArray& x) { return global_state().permutation(x); }

}  // namespace weft::array::random
