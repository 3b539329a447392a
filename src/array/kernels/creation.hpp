// src/array/kernels/creation.hpp - block kernels of the creation functions.
//
// Kernels are plain functions and their specs travel between ranks
// (trivially copyable, or with a cereal serialize()).
#pragma once

#include <array>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "weft/array/chunks.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::array::kernels {

// --- Shared by the creation and random layers --------------------------------

/// ValueError "value.bad-shape" naming `op` for a negative extent.
void check_shape(const Shape& shape, std::string_view op);
/// block_offsets() of every axis.
std::vector<std::vector<std::int64_t>> all_block_offsets(const Chunks& chunks);
/// Start of block `index` along every axis.
Shape block_start(const std::vector<std::vector<std::int64_t>>& offsets, std::span<const std::int64_t> index);
/// The position of block `index` in the C-order of the block grid.
std::int64_t flat_block_index(std::span<const std::int64_t> grid, std::span<const std::int64_t> index);

// --- Block kernels -----------------------------------------------------------

/// One element of any dtype, as its bytes (so that specs stay trivially copyable).
struct ElementBytes {
  alignas(16) std::array<std::byte, 16> bytes{};
  /// `value` converted to `dtype`.
  static ElementBytes of(const Scalar& value, DType dtype);
  template <class T>
  T get() const {
    T v;
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
  }
};

/// A block of `shape` filled with `value`, or left uninitialised (empty).
struct FillSpec {
  DType dtype;
  bool initialise;
  ElementBytes value;
};
NDArray fill_block(const FillSpec& spec, const Shape& shape);

/// Elements offset .. offset + length - 1 of np.arange: first, second, then
/// first + i * (second - first) in T's arithmetic.
struct ArangeSpec {
  DType dtype;
  std::int64_t offset;
  std::int64_t length;
  ElementBytes first;
  ElementBytes second;
};
NDArray arange_block(const ArangeSpec& spec);

/// Elements offset .. offset + length - 1 of np.linspace, in W = double or
/// std::complex<double> (`complex_math`) before the conversion to dtype.
struct LinspaceSpec {
  DType dtype;
  bool complex_math;
  bool step_is_zero;     ///< NumPy divides by div then multiplies by delta
  bool has_step;         ///< div > 0
  bool last_is_stop;     ///< endpoint and num > 1: element num - 1 is stop
  std::int64_t num;
  std::int64_t offset;
  std::int64_t length;
  std::complex<double> start;
  std::complex<double> stop;
  std::complex<double> delta;
  std::complex<double> step;
  double div;
};
NDArray linspace_block(const LinspaceSpec& spec);

/// A block of np.eye: ones where global column - global row == k.
struct EyeSpec {
  DType dtype;
  std::int64_t row0;
  std::int64_t col0;
  std::int64_t k;
};
NDArray eye_block(const EyeSpec& spec, const Shape& shape);

/// np.diag of a 1-d block: the square block with it on the main diagonal.
NDArray diag_embed_block(const NDArray& v);
/// `length` elements of a 2-d block's diagonal, from (row, col) on.
struct DiagExtractSpec {
  std::int64_t row;
  std::int64_t col;
  std::int64_t length;
};
NDArray diag_extract_block(const DiagExtractSpec& spec, const NDArray& block);

/// A block of np.indices: shape (1, ...) holding offset + the position along `axis` + 1.
struct IndicesSpec {
  DType dtype;
  int axis;
  std::int64_t offset;
};
NDArray indices_block(const IndicesSpec& spec, const Shape& shape);

/// A 1-d block laid along `axis` and broadcast to `shape` (a view).
NDArray broadcast_along_block(int axis, const Shape& shape, const NDArray& v);

/// fromfunction's block: f of the block's coordinate arrays.
NDArray fromfunction_block(IndexFunction f, const Shape& offset, const Shape& shape, DType coord_dtype,
                           DType dtype);
/// The index arrays fromfunction passes for a block at `offset` of `shape`.
std::vector<NDArray> coordinate_arrays(std::span<const std::int64_t> offset, const Shape& shape, DType dtype);

/// from_block_function's block: f(index, shape), checked and converted.
NDArray block_function_block(BlockFunction f, const std::vector<std::int64_t>& index, const Shape& shape,
                             DType dtype);

}  // namespace weft::array::kernels
