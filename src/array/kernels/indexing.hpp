// src/array/kernels/indexing.hpp - per-block kernels of indexing (private).
//
// Each kernel takes a spec that travels with its task (cereal-serialisable
// plain data) and the input blocks, and returns the output block. Basic
// indexing returns views of its input block; gathers (take, masks) copy.
#pragma once

#include <cstdint>
#include <vector>

#include "weft/array/chunks.hpp"
#include "weft/array/ndarray.hpp"
// same_block: the block itself, under another key.
#include "rechunk.hpp"

namespace weft::array::kernels {

/// What one item of a basic index does to a block.
struct AxisStep {
  enum class Kind : std::int64_t { slice, integer, newaxis };
  Kind kind = Kind::slice;
  std::int64_t start = 0;   ///< first element (slice) or the element (integer), in the block
  std::int64_t count = -1;  ///< elements a slice keeps; -1: the block's whole extent
  std::int64_t step = 1;
  template <class A>
  void serialize(A& a) { a(kind, start, count, step); }
};

/// Basic indexing of one block: one step per index item, in order (integers
/// drop their axis, newaxis inserts one).
struct BasicSpec {
  std::vector<AxisStep> steps;
  template <class A>
  void serialize(A& a) { a(steps); }
};
/// A view of `block` (no copy).
NDArray basic_block(const BasicSpec& spec, const NDArray& block);

/// Gathers along `axis` from several blocks: output position k along the
/// axis is element offset[k] of blocks[source[k]]. The gathered axis then
/// moves to `dest` (NumPy puts it first when integers and the array index
/// are apart).
struct TakeSpec {
  std::int32_t axis = 0;
  std::int32_t dest = 0;
  std::vector<std::int32_t> source;
  std::vector<std::int64_t> offset;
  template <class A>
  void serialize(A& a) { a(axis, dest, source, offset); }
};
NDArray take_blocks(const TakeSpec& spec, const std::vector<NDArray>& blocks);

/// Gathers along `axis` from all the blocks along it (their starts are
/// `offsets`, the axis length last) with the indices in `index` (a lazy
/// integer index's block): ValueError "value.index-out-of-range" for an
/// index outside the axis.
struct TakeByArraySpec {
  std::int32_t axis = 0;
  std::int32_t dest = 0;
  std::vector<std::int64_t> offsets;
  template <class A>
  void serialize(A& a) { a(axis, dest, offsets); }
};
NDArray take_by_index_block(const TakeByArraySpec& spec, const std::vector<NDArray>& blocks,
                            const NDArray& index);

/// Keeps the elements of `block` along `axis` where the mask is true; the
/// mask is [begin, end) of the concatenated 1-d `mask_pieces`.
struct CompressSpec {
  std::int32_t axis = 0;
  std::int32_t dest = 0;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  template <class A>
  void serialize(A& a) { a(axis, dest, begin, end); }
};
NDArray compress_block(const CompressSpec& spec, const NDArray& block,
                       const std::vector<NDArray>& mask_pieces);

/// x[mask] for a mask of x's shape, over one block-row of x: the elements of
/// the band (its blocks in C order of the grid `x_band`) where the mask's
/// band (rows [begin, end) of the blocks of grid `mask_band`) is true, in C
/// order, as a 1-d array.
struct MaskBandSpec {
  Chunks x_band;
  Chunks mask_band;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  template <class A>
  void serialize(A& a) { a(x_band, mask_band, begin, end); }
};
NDArray select_band(const MaskBandSpec& spec, const std::vector<NDArray>& x_blocks,
                    const std::vector<NDArray>& mask_blocks);

/// The shape of a block (compute_chunk_sizes runs this per block).
std::vector<std::int64_t> shape_of_block(const NDArray& block);

}  // namespace weft::array::kernels
