// weft/array/indexing.hpp - NumPy indexing of chunked arrays (dask.array's
// __getitem__, take, compute_chunk_sizes).
//
//   using namespace weft::array;
//   Array y = x[{slice(2, 10), 3, newaxis}];             // x[2:10, 3, None]
//   Array r = x[{ellipsis, slice(std::nullopt, std::nullopt, -1)}];  // x[..., ::-1]
//   Array t = x[{_, std::vector<std::int64_t>{4, 0, 4, -1}}];      // x[:, [4, 0, 4, -1]]
//   Array m = x[{mask}];                                  // x[mask], mask a bool array
//
// Basic indexing (integers, slices, newaxis, ellipsis) follows dask's
// slice_array: the output chunks come from the input chunks and every output
// block is a view of one input block, so it copies nothing. One integer-array
// index (a list, a 1-d integer NDArray or Array) gathers along its axis like
// dask's take: the output chunks follow the index order in pieces of the
// axis's average chunk size, and each output block gathers from the input
// blocks it needs (duplicates, negative and unsorted indices allowed). A
// boolean mask either covers one axis (1-d: a known NDArray mask becomes an
// index list, so chunks stay known; a lazy Array mask gives unknown chunks)
// or the whole array (same shape as x: the result is 1-d, one block per
// block-row of x, with unknown chunks for an Array mask). As in NumPy, when
// integers and the array index are not next to each other in the index, the
// gathered axis comes first.
//
// Everything is checked before any task exists: ValueError
// "value.index-out-of-range" (naming the axis and its size),
// "value.too-many-indices", "value.bad-slice" (step 0),
// "value.mask-shape-mismatch", "value.unsupported-index" (more than one
// array index, n-d integer arrays, n-d masks that are not the whole index,
// two ellipses), "value.unknown-chunks" (an index that needs chunk sizes
// that are unknown: call compute_chunk_sizes first); TypeError
// "type.bad-index" for an index array that is neither integer nor boolean.
// Only a lazy integer index is checked when its block runs.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/compute.hpp"

namespace weft::array {

/// Python's slice(start, stop, step); a missing part is None. Made by
/// slice() (not brace-initialised, so that `{1, 2, 3}` stays an index list).
struct Slice {
  constexpr Slice() noexcept = default;  // ":"
  std::optional<std::int64_t> start;
  std::optional<std::int64_t> stop;
  std::optional<std::int64_t> step;
};

/// slice(start, stop[, step]), as Python's.
constexpr Slice slice(std::optional<std::int64_t> start, std::optional<std::int64_t> stop,
                      std::optional<std::int64_t> step = std::nullopt) noexcept {
  Slice s;
  s.start = start;
  s.stop = stop;
  s.step = step;
  return s;
}
/// slice(stop), as Python's: `:stop`.
constexpr Slice slice(std::optional<std::int64_t> stop) noexcept {
  return slice(std::nullopt, stop);
}

/// `:`, the whole axis.
inline constexpr Slice _{};

/// NumPy's newaxis (None): inserts an axis of length 1.
struct NewAxis {};
inline constexpr NewAxis newaxis{};

/// Python's `...`: as many `:` as the axes the other items leave.
struct Ellipsis {};
inline constexpr Ellipsis ellipsis{};

/// One item of an index: an integer, a Slice, newaxis, ellipsis, an integer
/// list (std::vector<std::int64_t> or a 1-d integer NDArray), a boolean mask
/// (a bool NDArray), or a lazy Array (1-d integer, or a bool mask).
struct IndexItem {
  using Variant = std::variant<std::int64_t, Slice, NewAxis, Ellipsis, NDArray, Array>;

  template <std::integral I>
    requires(!std::same_as<I, bool>)
  IndexItem(I i) : value(static_cast<std::int64_t>(i)) {}  // NOLINT(google-explicit-constructor)
  IndexItem(Slice s) : value(s) {}                         // NOLINT
  IndexItem(NewAxis n) : value(n) {}                       // NOLINT
  IndexItem(Ellipsis e) : value(e) {}                      // NOLINT
  IndexItem(const std::vector<std::int64_t>& list)        // NOLINT
      : value(NDArray::from(list, Shape{static_cast<std::int64_t>(list.size())})) {}
  IndexItem(NDArray a) : value(std::move(a)) {}            // NOLINT
  IndexItem(Array a) : value(std::move(a)) {}              // NOLINT

  Variant value;
};

/// x[index] (Array::operator[] calls this).
Array getitem(const Array& x, std::span<const IndexItem> index);

/// np.take(x, indices, axis): `indices` is an integer list (a vector, a 1-d
/// integer NDArray or Array). TypeError "type.bad-index" for anything else.
Array take(const Array& x, const IndexItem& indices, int axis = 0);

/// dask's x.compute_chunk_sizes(): runs the blocks whose sizes are unknown
/// (one per block along each such axis) and returns the same array with
/// known chunks. `x` itself when its chunks are all known.
Array compute_chunk_sizes(const Array& x, const ComputeOptions& options = {});

}  // namespace weft::array
