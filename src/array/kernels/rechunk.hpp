// src/array/kernels/rechunk.hpp - block kernels of rechunk and the shape
// operations: views of one block (same, region, reshape, transpose, cast)
// and copying pieces of several blocks into one.
//
// Kernels are plain functions, so that tasks holding them can travel to
// other ranks; their specs are serialisable structs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::array::kernels {

/// Calls f(index) for every index of `grid` in C order (nothing when the
/// grid is empty; once, with an empty index, for a 0-d grid).
template <class F>
void for_each_index(std::span<const std::int64_t> grid, F&& f) {
  if (shape_size(grid) == 0) return;
  std::vector<std::int64_t> index(grid.size(), 0);
  for (;;) {
    f(std::span<const std::int64_t>(index));
    std::size_t axis = grid.size();
    for (;;) {
      if (axis == 0) return;
      --axis;
      if (++index[axis] < grid[axis]) break;
      index[axis] = 0;
    }
  }
}

/// The block itself (an output block that is an input block unchanged).
NDArray same_block(const NDArray& block);

/// A sub-block: offset and shape within the block.
struct BlockRegion {
  Shape offset;
  Shape shape;
  template <class A>
  void serialize(A& a) {
    a(offset, shape);
  }
};
/// A view of `region` of the block.
NDArray block_region(const BlockRegion& region, const NDArray& block);

/// Where the pieces of an output block lie in its input blocks: the input
/// blocks form a grid of counts[a] blocks along axis a, and piece i along
/// axis a starts at starts[first[a] + i] in its block and is
/// lengths[first[a] + i] long, where first[a] is the sum of counts before a.
struct PieceGrid {
  std::vector<std::int64_t> counts;
  std::vector<std::int64_t> starts;
  std::vector<std::int64_t> lengths;
  template <class A>
  void serialize(A& a) {
    a(counts, starts, lengths);
  }
};
/// One block copied together from the pieces of `blocks` (the grid's input
/// blocks in C order).
NDArray merge_pieces(const PieceGrid& grid, const std::vector<NDArray>& blocks);

/// The block's elements in another shape of the same size.
struct BlockShape {
  Shape shape;
  template <class A>
  void serialize(A& a) {
    a(shape);
  }
};
NDArray reshape_block(const BlockShape& shape, const NDArray& block);

/// The block with its axes permuted (a view).
struct AxisOrder {
  std::vector<int> axes;
  template <class A>
  void serialize(A& a) {
    a(axes);
  }
};
NDArray transpose_block(const AxisOrder& order, const NDArray& block);

/// The block converted to `dtype`.
NDArray cast_block(const DType& dtype, const NDArray& block);

}  // namespace weft::array::kernels
