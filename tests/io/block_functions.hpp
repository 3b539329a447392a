// tests/io/block_functions.hpp - block functions (wa::from_block_function)
// the array I/O tests write: values that tell where they are, and blocks
// that fail on purpose in the middle of a write.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <thread>

#include "weft/array/ndarray.hpp"

namespace weft::test {

/// Element i of block (b0, b1[, b2]) is b0 * 1000 + b1 * 100 + b2 * 10 + i % 97,
/// so a misplaced block shows.
inline array::NDArray positional_block(std::span<const std::int64_t> index, const array::Shape& shape) {
  double base = 0;
  for (std::size_t axis = 0, weight = 1000; axis < index.size() && weight > 0; ++axis, weight /= 10)
    base += static_cast<double>(index[axis]) * static_cast<double>(weight);
  array::NDArray out(array::DType::float64, shape);
  double* p = out.data<double>();
  for (std::int64_t i = 0; i < out.size(); ++i) p[i] = base + static_cast<double>(i % 97);
  return out;
}

/// positional_block after 20 ms, so the scheduler spreads the root tasks
/// over the workers.
inline array::NDArray slow_positional_block(std::span<const std::int64_t> index, const array::Shape& shape) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return positional_block(index, shape);
}

/// Ones, except the blocks at rows `Rows` along axis 0, which throw "block
/// failed on purpose".
template <std::int64_t... Rows>
array::NDArray failing_rows(std::span<const std::int64_t> index, const array::Shape& shape) {
  if (((index[0] == Rows) || ...)) throw std::runtime_error("block failed on purpose");
  return array::NDArray(array::DType::float64, shape, 1.0);
}

/// Ones, except the blocks whose first two indices sum to `Sum` (an error in
/// the middle of a 2-d write), which throw "block failed on purpose".
template <std::int64_t Sum>
array::NDArray failing_antidiagonal(std::span<const std::int64_t> index, const array::Shape& shape) {
  if (index[0] + index[1] == Sum) throw std::runtime_error("block failed on purpose");
  return array::NDArray(array::DType::float64, shape, 1.0);
}

}  // namespace weft::test
