// src/io/blocks.hpp - where the blocks of an array lie among the parts of a
// partitioned collective write step, and in the file (the HDF5 and NetCDF
// writers share this geometry).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/array/chunks.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"

namespace weft::io::detail {

/// The blocks of one array written by a step: positions first .. first +
/// count() - 1 of the step's parts, in row-major block order (to_delayed's).
class ArrayBlocks {
 public:
  ArrayBlocks(const array::Chunks& chunks, std::size_t first) : chunks_(chunks), first_(first), grid_(array::numblocks(chunks)) {
    for (const auto& axis : chunks) offsets_.push_back(array::block_offsets(axis));
  }
  std::size_t count() const { return static_cast<std::size_t>(array::shape_size(grid_)); }
  bool holds(std::size_t part) const { return part >= first_ && part < first_ + count(); }
  /// The block index of part `part` (one of holds()).
  std::vector<std::int64_t> index(std::size_t part) const {
    std::vector<std::int64_t> out(grid_.size());
    for (std::size_t axis = grid_.size(), rest = part - first_; axis-- > 0;) {
      out[axis] = static_cast<std::int64_t>(rest % static_cast<std::size_t>(grid_[axis]));
      rest /= static_cast<std::size_t>(grid_[axis]);
    }
    return out;
  }
  /// The element offset of a block along each axis.
  array::Shape start(const std::vector<std::int64_t>& index) const {
    array::Shape out(index.size());
    for (std::size_t axis = 0; axis < index.size(); ++axis)
      out[axis] = offsets_[axis][static_cast<std::size_t>(index[axis])];
    return out;
  }
  array::Shape extent(const std::vector<std::int64_t>& index) const { return array::block_shape(chunks_, index); }
  /// The extent of block `index`, checked to be `given`'s shape (a writer's
  /// input block; ValueError "block-mismatch" "<context>: block (i, j) has
  /// shape ..., expected ..." otherwise).
  array::Shape checked_extent(const std::vector<std::int64_t>& index, const array::NDArray& given,
                              const std::string& context) const {
    array::Shape want = extent(index);
    if (given.shape() != want)
      throw ValueError("block-mismatch", context + ": block " + array::shape_str(index) + " has shape " +
                                             array::shape_str(given.shape()) + ", expected " + array::shape_str(want));
    return want;
  }
  /// The elements of the blocks that some rank writes (owner >= 0).
  std::uint64_t elements_written(const std::vector<int>& owner) const {
    std::uint64_t n = 0;
    for (std::size_t p = first_; p < first_ + count(); ++p)
      if (owner[p] >= 0) n += static_cast<std::uint64_t>(array::shape_size(extent(index(p))));
    return n;
  }
  /// The most non-empty blocks any one rank owns: the number of write calls
  /// every rank makes in a collective transfer (the others with empty
  /// selections). Every rank computes it alike from `owner`, without a message.
  /// Blocks with a negative owner are written by other ranks (another part
  /// file of a partitioned write) and not counted.
  std::size_t most_per_rank(const std::vector<int>& owner, int ranks) const {
    std::vector<std::size_t> per_rank(static_cast<std::size_t>(ranks), 0);
    for (std::size_t p = first_; p < first_ + count(); ++p)
      if (owner[p] >= 0 && array::shape_size(extent(index(p))) > 0) ++per_rank[static_cast<std::size_t>(owner[p])];
    return *std::max_element(per_rank.begin(), per_rank.end());
  }

 private:
  array::Chunks chunks_;
  std::size_t first_;
  std::vector<std::int64_t> grid_;
  std::vector<std::vector<std::int64_t>> offsets_;
};

}  // namespace weft::io::detail
