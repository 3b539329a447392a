// weft/array/rechunk.hpp - changing how an array is cut into blocks (dask.array.rechunk).
//
// rechunk(x, chunks) gives the same elements in other blocks. Each output
// block is one task over the input blocks it overlaps: a block that equals
// an input block is that block, one inside an input block is a view of it,
// and one spanning several is copied together from their pieces.
//
// A direct rechunk between very different chunkings (rows to columns) makes
// every output block read many input blocks. As dask does
// (dask.array.rechunk.plan_rechunk), such a rechunk goes through
// intermediate chunkings when the pieces of the direct one would number
// more than `threshold` times the input plus output blocks; intermediate
// blocks stay within `block_size_limit` bytes (config array.chunk-size),
// or the largest input or output block if that is bigger.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/chunks.hpp"

namespace weft::array {

struct RechunkOptions {
  /// How many pieces per input and output block a direct rechunk may make
  /// before intermediate chunkings are planned (dask's threshold; 4).
  std::optional<double> threshold = std::nullopt;
  /// The largest intermediate block, in bytes (default: config array.chunk-size).
  /// Also the size that "auto" chunks aim at.
  std::optional<std::size_t> block_size_limit = std::nullopt;
  /// Make the blocks of each axis as equal as possible (dask's balance=True):
  /// a small leftover block is spread over the others, so rechunk(n // N,
  /// {.balance = true}) almost always gives N blocks. An axis that cannot be
  /// balanced keeps its chunks, with a warning on stderr (dask warns too).
  bool balance = false;
};

/// dask's default rechunk threshold (array.rechunk.threshold).
inline constexpr double kDefaultRechunkThreshold = 4.0;

/// The same array in blocks of `chunks` (normalised by normalize_chunks,
/// with "auto" axes keeping x's chunks where they fit). Returns x itself when
/// the chunks do not change. ValueError "value.bad-chunks" for chunks that do
/// not fit x's shape, "value.unknown-chunks" when x has blocks of unknown size.
Array rechunk(const Array& x, const ChunkSpec& chunks = "auto", const RechunkOptions& options = {});

/// The chunkings a rechunk from `old_chunks` to `new_chunks` goes through,
/// the last being `new_chunks` (dask.array.rechunk.plan_rechunk, with
/// `block_size_limit` in bytes).
std::vector<Chunks> plan_rechunk(const Chunks& old_chunks, const Chunks& new_chunks, std::size_t itemsize,
                                 double threshold, std::size_t block_size_limit);

/// dask's estimate of a direct rechunk's graph size, a bound on the pieces
/// the input blocks are cut into: the product over axes of old + new blocks
/// - 1 (old blocks where the axis keeps its chunks).
std::int64_t estimate_graph_size(const Chunks& old_chunks, const Chunks& new_chunks);

}  // namespace weft::array
