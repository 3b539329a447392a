// src/array/kernels/rechunk.cpp - block kernels of rechunk and the shape operations.
#include "rechunk.hpp"

#include <cstddef>

namespace weft::array::kernels {

NDArray same_block(const NDArray& block) { return block; }

NDArray block_region(const BlockRegion& region, const NDArray& block) {
  return block.block(region.offset, region.shape);
}

NDArray merge_pieces(const PieceGrid& grid, const std::vector<NDArray>& blocks) {
  const std::size_t ndim = grid.counts.size();
  // Pieces along an axis lie in order: each starts in the output where the
  // previous one ends.
  std::vector<std::size_t> first(ndim, 0);
  std::vector<std::int64_t> out_starts(grid.lengths.size());
  Shape shape(ndim, 0);
  for (std::size_t a = 0, p = 0; a < ndim; ++a) {
    first[a] = p;
    for (std::int64_t i = 0; i < grid.counts[a]; ++i, ++p) {
      out_starts[p] = shape[a];
      shape[a] += grid.lengths[p];
    }
  }
  NDArray out(blocks.front().dtype(), shape);
  Shape in_offset(ndim), out_offset(ndim), piece(ndim);
  std::size_t k = 0;
  for_each_index(grid.counts, [&](std::span<const std::int64_t> index) {
    for (std::size_t a = 0; a < ndim; ++a) {
      const std::size_t p = first[a] + static_cast<std::size_t>(index[a]);
      in_offset[a] = grid.starts[p];
      out_offset[a] = out_starts[p];
      piece[a] = grid.lengths[p];
    }
    out.block(out_offset, piece).assign(blocks[k++].block(in_offset, piece));
  });
  return out;
}

NDArray reshape_block(const BlockShape& shape, const NDArray& block) { return block.reshape(shape.shape); }

NDArray transpose_block(const AxisOrder& order, const NDArray& block) { return block.transpose(order.axes); }

NDArray cast_block(const DType& dtype, const NDArray& block) { return block.astype(dtype); }

}  // namespace weft::array::kernels
