// weft/array/chunks.hpp - how an array is cut into blocks (dask's chunks).
//
// Chunks hold, per axis, the sizes of its blocks: shape (10, 7) in blocks of
// (4, 7) is {{4, 4, 2}, {7}}. ChunkSpec is what users write, normalised by
// normalize_chunks exactly as dask.array.core.normalize_chunks does: one size
// for every axis, a size per axis, -1 (or None) for a whole axis, explicit
// sizes, or "auto" (blocks of about config `array.chunk-size` bytes, 128 MiB
// by default, as square as the shape allows). Sizes are unknown (kUnknown)
// after boolean indexing, until computed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::array {

/// Block sizes per axis.
using Chunks = std::vector<std::vector<std::int64_t>>;
/// A block size not known until computed (NaN in dask).
inline constexpr std::int64_t kUnknown = -1;

/// One axis of a ChunkSpec.
struct AxisChunks {
  enum class Kind : std::uint8_t { size, whole, sizes, automatic };
  Kind kind = Kind::automatic;
  std::int64_t size = 0;             ///< Kind::size
  std::vector<std::int64_t> sizes;   ///< Kind::sizes

  AxisChunks() = default;
  /// A block size; -1 means the whole axis (dask's -1 / None).
  AxisChunks(std::int64_t block)  // NOLINT(google-explicit-constructor)
      : kind(block == -1 ? Kind::whole : Kind::size), size(block) {}
  AxisChunks(int block) : AxisChunks(static_cast<std::int64_t>(block)) {}  // NOLINT
  /// Explicit block sizes, summing to the axis length.
  AxisChunks(std::vector<std::int64_t> block_sizes)  // NOLINT
      : kind(Kind::sizes), sizes(std::move(block_sizes)) {}
  /// "auto" only.
  AxisChunks(const char* text);  // NOLINT
  static AxisChunks automatic() { return {}; }
};

/// What a user passes as `chunks=`: "auto", one size for all axes, one
/// AxisChunks per axis, or full explicit Chunks.
class ChunkSpec {
 public:
  /// "auto".
  ChunkSpec() = default;
  ChunkSpec(const char* text);                 // NOLINT: "auto"
  ChunkSpec(std::int64_t every_axis);          // NOLINT: chunks=1000
  ChunkSpec(int every_axis) : ChunkSpec(static_cast<std::int64_t>(every_axis)) {}  // NOLINT
  ChunkSpec(std::initializer_list<AxisChunks> per_axis);  // NOLINT: {1000, -1, "auto"}
  ChunkSpec(std::vector<AxisChunks> per_axis);            // NOLINT
  ChunkSpec(const Chunks& explicit_chunks);                // NOLINT: {{4, 4, 2}, {7}}

  bool every_axis() const noexcept { return every_axis_; }
  const std::vector<AxisChunks>& axes() const noexcept { return axes_; }

 private:
  bool every_axis_ = true;   ///< axes_ holds one entry that applies to every axis
  std::vector<AxisChunks> axes_{AxisChunks::automatic()};
};

/// dask's normalize_chunks: explicit block sizes for `shape`. ValueError
/// "value.bad-chunks" naming the problem (sizes that do not sum to the axis,
/// a per-axis spec of the wrong length, a zero or negative block size).
/// `limit_bytes` overrides config array.chunk-size for "auto"; `previous`
/// (if given) is kept for axes whose spec is "auto" where it fits (rechunk).
Chunks normalize_chunks(const ChunkSpec& spec, const Shape& shape, DType dtype,
                        std::optional<std::size_t> limit_bytes = std::nullopt,
                        const Chunks* previous = nullptr);

/// Sizes of blocks along each axis (numblocks).
std::vector<std::int64_t> numblocks(const Chunks& chunks);
/// Start offset of every block along one axis, plus the axis length at the end.
std::vector<std::int64_t> block_offsets(std::span<const std::int64_t> axis_chunks);
/// The shape of block `index`.
Shape block_shape(const Chunks& chunks, std::span<const std::int64_t> index);
/// Whether any block size is unknown.
bool has_unknown(const Chunks& chunks) noexcept;
/// "((4, 4, 2), (7,))", as dask prints chunks.
std::string chunks_str(const Chunks& chunks);
/// Bytes of config array.chunk-size (default 128 MiB).
std::size_t configured_chunk_bytes();

}  // namespace weft::array
