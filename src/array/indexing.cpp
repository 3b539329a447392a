// Indexing of chunked arrays: the chunk arithmetic of dask's slice_array and
// take, boolean masks, compute_chunk_sizes. The index is checked and turned
// into Items first (before any layer exists), then basic indexing makes one
// layer of views and an array index one gathering layer on top of it.
#include "weft/array/indexing.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>

#include "kernels/indexing.hpp"
#include "weft/error.hpp"

namespace weft::array {
namespace {

using kernels::AxisStep;

bool axis_known(const Array& x, int axis) {
  const auto& sizes = x.chunks()[static_cast<std::size_t>(axis)];
  return std::none_of(sizes.begin(), sizes.end(), [](std::int64_t s) { return s == kUnknown; });
}

[[noreturn]] void throw_unknown_chunks(std::string_view op, const Array& x, int axis) {
  throw ValueError("unknown-chunks", std::string(op) + ": the chunk sizes of axis " + std::to_string(axis) +
                                         " are unknown (chunks " + chunks_str(x.chunks()) +
                                         "); call compute_chunk_sizes() first");
}

void require_known(std::string_view op, const Array& x, int axis) {
  if (!axis_known(x, axis)) throw_unknown_chunks(op, x, axis);
}

std::int64_t checked_index(std::int64_t i, std::int64_t size, int axis) {
  if (i < -size || i >= size)
    throw ValueError("index-out-of-range", "getitem: index " + std::to_string(i) + " is out of bounds for axis " +
                                               std::to_string(axis) + " with size " + std::to_string(size));
  return i < 0 ? i + size : i;
}

/// The shape of arrays with these chunks (kUnknown for an axis with an
/// unknown block size).
Shape shape_of(const Chunks& chunks) {
  Shape shape;
  for (const auto& sizes : chunks) {
    const bool known = std::none_of(sizes.begin(), sizes.end(), [](std::int64_t s) { return s == kUnknown; });
    shape.push_back(known ? std::accumulate(sizes.begin(), sizes.end(), std::int64_t{0}) : kUnknown);
  }
  return shape;
}

/// Every block index of a grid, in C order.
std::vector<std::vector<std::int64_t>> grid_indices(std::span<const std::int64_t> numblocks) {
  std::vector<std::vector<std::int64_t>> out;
  std::vector<std::int64_t> index(numblocks.size(), 0);
  if (shape_size(numblocks) == 0) return out;
  while (true) {
    out.push_back(index);
    std::size_t axis = numblocks.size();
    while (axis > 0 && ++index[axis - 1] == numblocks[axis - 1]) index[--axis] = 0;
    if (axis == 0) return out;
  }
}

/// The blocks of an axis (starts `offsets`) that hold part of [begin, end).
std::pair<std::size_t, std::size_t> blocks_covering(const std::vector<std::int64_t>& offsets, std::int64_t begin,
                                                    std::int64_t end) {
  std::size_t first = 0;
  while (first + 2 < offsets.size() && offsets[first + 1] <= begin) ++first;
  std::size_t last = first;
  while (last + 1 < offsets.size() && offsets[last] < end) ++last;
  return {first, std::max(last, first + 1)};
}

/// One index item, checked against its axis.
struct Item {
  enum class Kind { slice, integer, newaxis, list, lazy_list, lazy_mask };
  Kind kind = Kind::slice;
  int axis = -1;             ///< the input axis it applies to (-1 for newaxis)
  std::int64_t start = 0;    ///< slice: resolved as slice.indices(); integer: the index
  std::int64_t step = 1;
  std::int64_t count = -1;   ///< slice: elements kept; -1 when the axis length is unknown
  bool whole = false;        ///< a slice keeping the whole axis in order
  std::vector<std::int64_t> list;  ///< list: non-negative indices
  Array lazy;                ///< lazy_list, lazy_mask

  bool is_array() const { return kind == Kind::list || kind == Kind::lazy_list || kind == Kind::lazy_mask; }
};

Item whole_axis(const Array& x, int axis) {
  Item it;
  it.axis = axis;
  it.whole = true;
  if (axis_known(x, axis)) it.count = x.shape()[static_cast<std::size_t>(axis)];
  return it;
}

/// Python's slice.indices(length), then the number of elements.
Item slice_item(const Slice& s, const Array& x, int axis) {
  const std::int64_t step = s.step.value_or(1);
  if (step == 0) throw ValueError("bad-slice", "getitem: slice step cannot be zero (axis " + std::to_string(axis) + ")");
  if (!axis_known(x, axis)) {
    if (s.start || s.stop || step != 1) throw_unknown_chunks("getitem", x, axis);
    return whole_axis(x, axis);
  }
  const std::int64_t length = x.shape()[static_cast<std::size_t>(axis)];
  const std::int64_t lower = step < 0 ? -1 : 0;
  const std::int64_t upper = step < 0 ? length - 1 : length;
  auto resolve = [&](std::optional<std::int64_t> v, std::int64_t fallback) {
    if (!v) return fallback;
    std::int64_t i = *v;
    if (i < 0) return std::max(i + length, lower);
    return std::min(i, upper);
  };
  Item it;
  it.axis = axis;
  it.step = step;
  it.start = resolve(s.start, step < 0 ? upper : lower);
  const std::int64_t stop = resolve(s.stop, step < 0 ? lower : upper);
  it.count = step > 0 ? std::max<std::int64_t>(0, (stop - it.start + step - 1) / step)
                      : std::max<std::int64_t>(0, (it.start - stop - step - 1) / -step);
  it.whole = it.start == 0 && step == 1 && it.count == length;
  return it;
}

[[noreturn]] void throw_bad_dtype(DType t) {
  throw TypeError("bad-index", "getitem: arrays used as indices must be of integer or boolean type, not " +
                                   std::string(dtype_name(t)));
}

[[noreturn]] void throw_nd_array_index(int ndim) {
  throw ValueError("unsupported-index",
                   "getitem: an index array has " + std::to_string(ndim) +
                       " dimensions; integer arrays must be 1-d, and a boolean mask of several dimensions must be "
                       "the whole index with the array's shape");
}

void check_mask_length(std::int64_t mask_length, const Array& x, int axis) {
  require_known("getitem", x, axis);
  const std::int64_t length = x.shape()[static_cast<std::size_t>(axis)];
  if (mask_length != length)
    throw ValueError("mask-shape-mismatch", "getitem: boolean index did not match indexed array along axis " +
                                                std::to_string(axis) + "; size of axis is " + std::to_string(length) +
                                                " but size of corresponding boolean axis is " +
                                                std::to_string(mask_length));
}

Item list_item(const NDArray& a, const Array& x, int axis) {
  if (a.dtype() != DType::bool_ && !is_integer(a.dtype())) throw_bad_dtype(a.dtype());
  if (a.ndim() != 1) throw_nd_array_index(a.ndim());
  Item it;
  it.kind = Item::Kind::list;
  it.axis = axis;
  if (a.dtype() == DType::bool_) {
    check_mask_length(a.shape()[0], x, axis);
    const std::vector<bool> mask = a.to_vector<bool>();
    for (std::size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) it.list.push_back(static_cast<std::int64_t>(i));
    return it;
  }
  require_known("getitem", x, axis);
  it.list = a.to_vector<std::int64_t>();
  for (std::int64_t& i : it.list) i = checked_index(i, x.shape()[static_cast<std::size_t>(axis)], axis);
  return it;
}

Item lazy_item(const Array& a, const Array& x, int axis) {
  if (a.dtype() != DType::bool_ && !is_integer(a.dtype())) throw_bad_dtype(a.dtype());
  if (a.ndim() != 1) throw_nd_array_index(a.ndim());
  Item it;
  it.axis = axis;
  it.lazy = a;
  if (a.dtype() == DType::bool_) {
    if (!axis_known(a, 0)) throw_unknown_chunks("getitem (boolean index)", a, 0);
    check_mask_length(a.shape()[0], x, axis);
    it.kind = Item::Kind::lazy_mask;
  } else {
    require_known("getitem", x, axis);
    it.kind = Item::Kind::lazy_list;
  }
  return it;
}

/// The index with the ellipsis expanded and `:` for the axes it leaves out,
/// every item checked against its axis.
std::vector<Item> parse(const Array& x, std::span<const IndexItem> index) {
  const int ndim = x.ndim();
  int consumed = 0;
  int ellipses = 0;
  for (const IndexItem& item : index) {
    if (std::holds_alternative<Ellipsis>(item.value)) ++ellipses;
    else if (!std::holds_alternative<NewAxis>(item.value)) ++consumed;
  }
  if (ellipses > 1) throw ValueError("unsupported-index", "getitem: an index can only have a single ellipsis");
  if (consumed > ndim)
    throw ValueError("too-many-indices", "getitem: too many indices for array: array is " + std::to_string(ndim) +
                                             "-dimensional, but " + std::to_string(consumed) + " were indexed");
  std::vector<Item> items;
  int axis = 0;
  for (const IndexItem& item : index) {
    std::visit(
        [&]<class V>(const V& v) {
          if constexpr (std::is_same_v<V, std::int64_t>) {
            require_known("getitem", x, axis);
            Item it;
            it.kind = Item::Kind::integer;
            it.axis = axis;
            it.start = checked_index(v, x.shape()[static_cast<std::size_t>(axis)], axis);
            items.push_back(std::move(it));
            ++axis;
          } else if constexpr (std::is_same_v<V, Slice>) {
            items.push_back(slice_item(v, x, axis++));
          } else if constexpr (std::is_same_v<V, NewAxis>) {
            Item it;
            it.kind = Item::Kind::newaxis;
            items.push_back(std::move(it));
          } else if constexpr (std::is_same_v<V, Ellipsis>) {
            for (int k = consumed; k < ndim; ++k) items.push_back(whole_axis(x, axis++));
          } else if constexpr (std::is_same_v<V, NDArray>) {
            items.push_back(list_item(v, x, axis++));
          } else {
            items.push_back(lazy_item(v, x, axis++));
          }
        },
        item.value);
  }
  while (axis < ndim) items.push_back(whole_axis(x, axis++));
  if (std::count_if(items.begin(), items.end(), [](const Item& it) { return it.is_array(); }) > 1)
    throw ValueError("unsupported-index",
                     "getitem: only one integer-array or boolean index per index is supported (as in dask)");
  return items;
}

// --- basic indexing (dask's slice_array) ---------------------------------

/// One output block along a sliced axis: which input block, and the slice in it.
struct Piece {
  std::int64_t block;
  std::int64_t start;
  std::int64_t count;
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

/// The output blocks of a slice along an axis of blocks `sizes`: one per input
/// block it touches (in the slice's order), or a single empty one.
std::vector<Piece> slice_pieces(const std::vector<std::int64_t>& sizes, const Item& it) {
  std::vector<Piece> pieces;
  if (it.count < 0) {  // `:` over unknown sizes: every block whole
    for (std::size_t b = 0; b < sizes.size(); ++b) pieces.push_back({static_cast<std::int64_t>(b), 0, -1});
    return pieces;
  }
  const std::vector<std::int64_t> offsets = block_offsets(sizes);
  const auto nblocks = static_cast<std::int64_t>(sizes.size());
  for (std::int64_t i = 0; i < nblocks; ++i) {
    const std::int64_t b = it.step > 0 ? i : nblocks - 1 - i;
    const std::int64_t lo = offsets[static_cast<std::size_t>(b)];
    const std::int64_t hi = offsets[static_cast<std::size_t>(b) + 1];
    std::int64_t first;  // the first and one past the last element k of the slice in [lo, hi)
    std::int64_t last;
    if (it.step > 0) {
      first = ceil_div(lo - it.start, it.step);
      last = ceil_div(hi - it.start, it.step);
    } else {
      first = ceil_div(it.start - (hi - 1), -it.step);
      last = it.start < lo ? 0 : (it.start - lo) / -it.step + 1;
    }
    first = std::min(first, it.count);
    last = std::min(last, it.count);
    if (last > first) pieces.push_back({b, it.start + first * it.step - lo, last - first});
  }
  if (pieces.empty()) pieces.push_back({0, 0, 0});
  return pieces;
}

/// How one item maps output blocks to an input block and a step.
struct BasicPlan {
  Item::Kind kind;
  int axis;
  std::int64_t step;
  std::vector<Piece> pieces;  ///< slice
  std::int64_t block = 0;     ///< integer: the block holding it
  std::int64_t local = 0;     ///< integer: its index in the block
};

/// x[items] for basic items (slices, integers, newaxis); x itself when they
/// keep everything.
Array basic_index(const Array& x, const std::vector<Item>& items) {
  if (std::all_of(items.begin(), items.end(), [](const Item& it) { return it.kind == Item::Kind::slice && it.whole; }))
    return x;
  auto plan = std::make_shared<std::vector<BasicPlan>>();
  Chunks chunks;
  std::vector<std::int64_t> described;  // what the token hashes
  for (const Item& it : items) {
    BasicPlan p{it.kind, it.axis, it.step, {}, 0, 0};
    if (it.kind == Item::Kind::newaxis) {
      chunks.push_back({1});
    } else if (it.kind == Item::Kind::integer) {
      const std::vector<std::int64_t> offsets = block_offsets(x.chunks()[static_cast<std::size_t>(it.axis)]);
      p.block = std::upper_bound(offsets.begin(), offsets.end(), it.start) - offsets.begin() - 1;
      p.local = it.start - offsets[static_cast<std::size_t>(p.block)];
    } else {
      p.pieces = slice_pieces(x.chunks()[static_cast<std::size_t>(it.axis)], it);
      std::vector<std::int64_t> sizes;
      for (const Piece& piece : p.pieces) sizes.push_back(piece.count < 0 ? kUnknown : piece.count);
      chunks.push_back(std::move(sizes));
    }
    described.insert(described.end(), {static_cast<std::int64_t>(it.kind), it.start, it.step, it.count});
    plan->push_back(std::move(p));
  }
  detail::ArrayMeta meta{"getitem", detail::op_token("getitem", x, described), shape_of(chunks), chunks, x.dtype()};
  return make_array(std::move(meta), [x, plan](std::span<const std::int64_t> index, Key key) {
    kernels::BasicSpec spec;
    std::vector<std::int64_t> input(static_cast<std::size_t>(x.ndim()), 0);
    std::size_t out_axis = 0;
    for (const BasicPlan& p : *plan) {
      if (p.kind == Item::Kind::newaxis) {
        spec.steps.push_back({AxisStep::Kind::newaxis, 0, 1, 1});
        ++out_axis;
      } else if (p.kind == Item::Kind::integer) {
        input[static_cast<std::size_t>(p.axis)] = p.block;
        spec.steps.push_back({AxisStep::Kind::integer, p.local, 1, 1});
      } else {
        const Piece& piece = p.pieces[static_cast<std::size_t>(index[out_axis++])];
        input[static_cast<std::size_t>(p.axis)] = piece.block;
        spec.steps.push_back({AxisStep::Kind::slice, piece.start, piece.count, p.step});
      }
    }
    return weft::detail::make_call_task(std::move(key), /*cheap=*/true, &kernels::basic_block, std::move(spec),
                                        x.block(input));
  });
}

// --- array indices ------------------------------------------------------

/// Where the gathered axis of an array index goes: NumPy puts it first when
/// integers and the array index are not next to each other in the index.
struct AxisMove {
  int axis;  ///< the gathered axis in the basic-indexed array
  int dest;  ///< its place in the result

  template <class T>
  std::vector<T> apply(std::vector<T> v) const {
    T moved = std::move(v[static_cast<std::size_t>(axis)]);
    v.erase(v.begin() + axis);
    v.insert(v.begin() + dest, std::move(moved));
    return v;
  }
  /// The block index in the basic-indexed array of a result block.
  std::vector<std::int64_t> source(std::span<const std::int64_t> index) const {
    std::vector<std::int64_t> v(index.begin(), index.end());
    const std::int64_t moved = v[static_cast<std::size_t>(dest)];
    v.erase(v.begin() + dest);
    v.insert(v.begin() + axis, moved);
    return v;
  }
};

AxisMove array_axis_move(const std::vector<Item>& items, std::span<const IndexItem> index) {
  const auto array_at = std::find_if(items.begin(), items.end(), [](const Item& it) { return it.is_array(); });
  const auto axis = static_cast<int>(std::count_if(items.begin(), array_at, [](const Item& it) {
    return it.kind == Item::Kind::slice || it.kind == Item::Kind::newaxis;
  }));
  // Positions in the index as written: an ellipsis separates even when it
  // stands for no axis, as in NumPy.
  std::vector<std::size_t> advanced;
  for (std::size_t i = 0; i < index.size(); ++i)
    if (std::holds_alternative<std::int64_t>(index[i].value) || std::holds_alternative<NDArray>(index[i].value) ||
        std::holds_alternative<Array>(index[i].value))
      advanced.push_back(i);
  const bool together = advanced.back() - advanced.front() + 1 == advanced.size();
  return {axis, together ? axis : 0};
}

Chunks chunks_with(const Array& y, const AxisMove& move, std::vector<std::int64_t> axis_chunks) {
  Chunks chunks = y.chunks();
  chunks[static_cast<std::size_t>(move.axis)] = std::move(axis_chunks);
  return move.apply(std::move(chunks));
}

/// The blocks of `y` along move.axis at the other positions of `input`.
std::vector<Delayed<NDArray>> blocks_along(const Array& y, int axis, std::vector<std::int64_t> input,
                                           std::span<const std::int64_t> which) {
  std::vector<Delayed<NDArray>> blocks;
  for (std::int64_t b : which) {
    input[static_cast<std::size_t>(axis)] = b;
    blocks.push_back(y.block(input));
  }
  return blocks;
}

/// dask's take with known indices: output blocks of the axis's average chunk
/// size in index order, each gathering from the input blocks it needs.
Array take_known(const Array& y, const AxisMove& move, const std::vector<std::int64_t>& indices) {
  struct Part {
    std::vector<std::int64_t> blocks;
    kernels::TakeSpec spec;
  };
  const auto& sizes = y.chunks()[static_cast<std::size_t>(move.axis)];
  const std::vector<std::int64_t> offsets = block_offsets(sizes);
  const std::int64_t per_block = std::max<std::int64_t>(1, offsets.back() / static_cast<std::int64_t>(sizes.size()));
  auto parts = std::make_shared<std::vector<Part>>();
  std::vector<std::int64_t> out_sizes;
  std::vector<std::int32_t> slot(sizes.size(), -1);  // input block -> its place in the current part
  std::int64_t b = 0;                                   // the block of the previous index: runs are common
  const auto n = static_cast<std::int64_t>(indices.size());
  for (std::int64_t begin = 0; begin < n || parts->empty(); begin += per_block) {
    const std::int64_t end = std::min(n, begin + per_block);
    Part part{{}, {move.axis, move.dest, {}, {}}};
    for (std::int64_t k = begin; k < end; ++k) {
      const std::int64_t i = indices[static_cast<std::size_t>(k)];
      if (i < offsets[static_cast<std::size_t>(b)] || i >= offsets[static_cast<std::size_t>(b) + 1])
        b = std::upper_bound(offsets.begin(), offsets.end(), i) - offsets.begin() - 1;
      std::int32_t& at = slot[static_cast<std::size_t>(b)];
      if (at < 0) {
        at = static_cast<std::int32_t>(part.blocks.size());
        part.blocks.push_back(b);
      }
      part.spec.source.push_back(at);
      part.spec.offset.push_back(i - offsets[static_cast<std::size_t>(b)]);
    }
    for (std::int64_t used : part.blocks) slot[static_cast<std::size_t>(used)] = -1;
    if (part.blocks.empty()) part.blocks.push_back(0);  // an empty result still needs the other extents
    out_sizes.push_back(end - begin);
    parts->push_back(std::move(part));
  }
  const Chunks chunks = chunks_with(y, move, std::move(out_sizes));
  detail::ArrayMeta meta{"getitem", detail::op_token("getitem-take", y, indices, move.axis, move.dest),
                         shape_of(chunks), chunks, y.dtype()};
  return make_array(std::move(meta), [y, move, parts](std::span<const std::int64_t> index, Key key) {
    std::vector<std::int64_t> input = move.source(index);
    const Part& part = (*parts)[static_cast<std::size_t>(input[static_cast<std::size_t>(move.axis)])];
    return weft::detail::make_call_task(std::move(key), false, &kernels::take_blocks, part.spec,
                                        blocks_along(y, move.axis, std::move(input), part.blocks));
  });
}

/// y indexed along an axis by a lazy 1-d integer array: the output blocks
/// follow the index's blocks, each gathering from every block along the axis.
Array take_lazy(const Array& y, const AxisMove& move, const Array& index_array) {
  const auto& sizes = y.chunks()[static_cast<std::size_t>(move.axis)];
  kernels::TakeByArraySpec spec{move.axis, move.dest, block_offsets(sizes)};
  std::vector<std::int64_t> all(sizes.size());
  std::iota(all.begin(), all.end(), 0);
  const Chunks chunks = chunks_with(y, move, index_array.chunks()[0]);
  detail::ArrayMeta meta{"getitem", detail::op_token("getitem-take", y, index_array, move.axis, move.dest),
                         shape_of(chunks), chunks, y.dtype()};
  return make_array(std::move(meta), [y, move, index_array, spec, all](std::span<const std::int64_t> index, Key key) {
    std::vector<std::int64_t> input = move.source(index);
    const std::int64_t j = input[static_cast<std::size_t>(move.axis)];
    return weft::detail::make_call_task(std::move(key), false, &kernels::take_by_index_block, spec,
                                        blocks_along(y, move.axis, std::move(input), all), index_array.block({j}));
  });
}

/// y masked along an axis by a lazy 1-d bool array: block i keeps its
/// elements where the mask's part over it is true (sizes unknown).
Array compress_lazy(const Array& y, const AxisMove& move, const Array& mask) {
  struct Part {
    std::vector<std::int64_t> mask_blocks;
    kernels::CompressSpec spec;
  };
  const auto& sizes = y.chunks()[static_cast<std::size_t>(move.axis)];
  const std::vector<std::int64_t> offsets = block_offsets(sizes);
  const std::vector<std::int64_t> mask_offsets = block_offsets(mask.chunks()[0]);
  auto parts = std::make_shared<std::vector<Part>>();
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    const auto [first, last] = blocks_covering(mask_offsets, offsets[i], offsets[i + 1]);
    Part part;
    for (std::size_t b = first; b < last; ++b) part.mask_blocks.push_back(static_cast<std::int64_t>(b));
    part.spec = {move.axis, move.dest, offsets[i] - mask_offsets[first], offsets[i + 1] - mask_offsets[first]};
    parts->push_back(std::move(part));
  }
  const Chunks chunks = chunks_with(y, move, std::vector<std::int64_t>(sizes.size(), kUnknown));
  detail::ArrayMeta meta{"getitem", detail::op_token("getitem-mask", y, mask, move.axis, move.dest),
                         shape_of(chunks), chunks, y.dtype()};
  return make_array(std::move(meta), [y, move, mask, parts](std::span<const std::int64_t> index, Key key) {
    std::vector<std::int64_t> input = move.source(index);
    const Part& part = (*parts)[static_cast<std::size_t>(input[static_cast<std::size_t>(move.axis)])];
    std::vector<Delayed<NDArray>> pieces;
    for (std::int64_t b : part.mask_blocks) pieces.push_back(mask.block({b}));
    return weft::detail::make_call_task(std::move(key), false, &kernels::compress_block, part.spec, y.block(input),
                                        std::move(pieces));
  });
}

// --- a mask of the array's shape ------------------------------------------

/// An NDArray as an array whose blocks are constants (literal tasks).
Array constant_array(const NDArray& a, const Chunks& chunks) {
  const NDArray data = a.contiguous();
  const Token token = tokenize(dtype_name(data.dtype()), data.shape(),
                               std::span(static_cast<const unsigned char*>(data.raw_data()), data.nbytes()));
  detail::ArrayMeta meta{"array", token, data.shape(), chunks, data.dtype()};
  return make_array(std::move(meta), [data, chunks](std::span<const std::int64_t> index, Key key) {
    std::vector<std::int64_t> offset;
    for (std::size_t axis = 0; axis < index.size(); ++axis)
      offset.push_back(block_offsets(chunks[axis])[static_cast<std::size_t>(index[axis])]);
    const Shape shape = block_shape(chunks, index);
    return weft::literal(std::move(key), data.block(offset, shape).copy());
  });
}

/// x[mask] with mask of x's shape: one output block per block-row of x, of
/// `sizes` (unknown when not given).
Array mask_whole(const Array& x, const Array& mask, std::vector<std::int64_t> sizes) {
  struct Band {
    std::vector<std::vector<std::int64_t>> x_blocks;
    std::vector<std::vector<std::int64_t>> mask_blocks;
    kernels::MaskBandSpec spec;
  };
  const std::vector<std::int64_t> rows = block_offsets(x.chunks()[0]);
  const std::vector<std::int64_t> mask_rows = block_offsets(mask.chunks()[0]);
  const auto trailing_blocks = [](const Array& a) {
    std::vector<std::int64_t> n = a.numblocks();
    n[0] = 1;
    return grid_indices(n);
  };
  const auto x_trailing = trailing_blocks(x);
  const auto mask_trailing = trailing_blocks(mask);
  auto bands = std::make_shared<std::vector<Band>>();
  for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
    Band band;
    band.spec.x_band = x.chunks();
    band.spec.x_band[0] = {rows[i + 1] - rows[i]};
    for (auto index : x_trailing) {
      index[0] = static_cast<std::int64_t>(i);
      band.x_blocks.push_back(std::move(index));
    }
    const auto [first, last] = blocks_covering(mask_rows, rows[i], rows[i + 1]);
    band.spec.mask_band = mask.chunks();
    band.spec.mask_band[0].assign(mask.chunks()[0].begin() + static_cast<std::ptrdiff_t>(first),
                                  mask.chunks()[0].begin() + static_cast<std::ptrdiff_t>(last));
    for (std::size_t b = first; b < last; ++b) {
      for (auto index : mask_trailing) {
        index[0] = static_cast<std::int64_t>(b);
        band.mask_blocks.push_back(std::move(index));
      }
    }
    band.spec.begin = rows[i] - mask_rows[first];
    band.spec.end = rows[i + 1] - mask_rows[first];
    bands->push_back(std::move(band));
  }
  if (sizes.empty()) sizes.assign(bands->size(), kUnknown);
  Chunks chunks{std::move(sizes)};
  detail::ArrayMeta meta{"getitem", detail::op_token("getitem-mask", x, mask), shape_of(chunks), chunks, x.dtype()};
  return make_array(std::move(meta), [x, mask, bands](std::span<const std::int64_t> index, Key key) {
    const Band& band = (*bands)[static_cast<std::size_t>(index[0])];
    std::vector<Delayed<NDArray>> x_blocks;
    for (const auto& b : band.x_blocks) x_blocks.push_back(x.block(b));
    std::vector<Delayed<NDArray>> mask_blocks;
    for (const auto& b : band.mask_blocks) mask_blocks.push_back(mask.block(b));
    return weft::detail::make_call_task(std::move(key), false, &kernels::select_band, band.spec, std::move(x_blocks),
                                        std::move(mask_blocks));
  });
}

/// The index is one bool array of several dimensions: it must have x's shape.
Array getitem_whole_mask(const Array& x, const IndexItem& item) {
  const bool lazy = std::holds_alternative<Array>(item.value);
  const Shape mask_shape = lazy ? std::get<Array>(item.value).shape() : std::get<NDArray>(item.value).shape();
  const int mask_ndim = static_cast<int>(mask_shape.size());
  if (mask_ndim > x.ndim())
    throw ValueError("too-many-indices", "getitem: too many indices for array: array is " +
                                             std::to_string(x.ndim()) + "-dimensional, but " +
                                             std::to_string(mask_ndim) + " were indexed");
  if (mask_ndim < x.ndim()) throw_nd_array_index(mask_ndim);
  for (int axis = 0; axis < x.ndim(); ++axis) {
    require_known("getitem", x, axis);
    if (lazy && !axis_known(std::get<Array>(item.value), axis))
      throw_unknown_chunks("getitem (boolean index)", std::get<Array>(item.value), axis);
    check_mask_length(mask_shape[static_cast<std::size_t>(axis)], x, axis);
  }
  if (lazy) return mask_whole(x, std::get<Array>(item.value), {});
  // A known mask gives known sizes: count per block-row.
  const NDArray& mask = std::get<NDArray>(item.value);
  Chunks mask_chunks{x.chunks()[0]};
  for (int axis = 1; axis < x.ndim(); ++axis) mask_chunks.push_back({x.shape()[static_cast<std::size_t>(axis)]});
  const std::vector<bool> values = mask.to_vector<bool>();
  const std::int64_t row = x.size() / std::max<std::int64_t>(1, x.shape()[0]);
  std::vector<std::int64_t> sizes;
  std::int64_t start = 0;
  for (std::int64_t rows : x.chunks()[0]) {
    const auto begin = values.begin() + static_cast<std::ptrdiff_t>(start * row);
    sizes.push_back(std::count(begin, begin + static_cast<std::ptrdiff_t>(rows * row), true));
    start += rows;
  }
  return mask_whole(x, constant_array(mask, mask_chunks), std::move(sizes));
}

bool is_multi_dim_mask(const IndexItem& item) {
  if (const auto* a = std::get_if<Array>(&item.value)) return a->dtype() == DType::bool_ && a->ndim() > 1;
  if (const auto* a = std::get_if<NDArray>(&item.value)) return a->dtype() == DType::bool_ && a->ndim() > 1;
  return false;
}

}  // namespace

Array getitem(const Array& x, std::span<const IndexItem> index) {
  if (index.size() == 1 && is_multi_dim_mask(index[0])) return getitem_whole_mask(x, index[0]);
  std::vector<Item> items = parse(x, index);
  const auto array_at = std::find_if(items.begin(), items.end(), [](const Item& it) { return it.is_array(); });
  if (array_at == items.end()) return basic_index(x, items);
  const AxisMove move = array_axis_move(items, index);
  const Item array_item = std::move(*array_at);
  *array_at = whole_axis(x, array_item.axis);
  const Array y = basic_index(x, items);
  switch (array_item.kind) {
    case Item::Kind::list: return take_known(y, move, array_item.list);
    case Item::Kind::lazy_list: return take_lazy(y, move, array_item.lazy);
    default: return compress_lazy(y, move, array_item.lazy);
  }
}

Array take(const Array& x, const IndexItem& indices, int axis) {
  const int resolved = Axes(axis).resolve(x.ndim(), "take")[0];
  const bool integers = std::visit(
      []<class V>(const V& v) {
        if constexpr (std::is_same_v<V, std::int64_t>) return true;
        else if constexpr (std::is_same_v<V, NDArray> || std::is_same_v<V, Array>) return is_integer(v.dtype());
        else return false;
      },
      indices.value);
  if (!integers) throw TypeError("bad-index", "take: indices must be an integer or an integer array");
  std::vector<IndexItem> index(static_cast<std::size_t>(resolved), IndexItem(_));
  index.push_back(indices);
  return getitem(x, index);
}

Array compute_chunk_sizes(const Array& x, const ComputeOptions& options) {
  if (!has_unknown(x.chunks())) return x;
  // One block per position along each axis whose sizes are unknown, the
  // other positions 0: the grid is regular, so these give every size.
  std::map<std::vector<std::int64_t>, std::size_t> wanted;
  std::vector<TaskRef> roots;
  const Token token = detail::op_token("chunk-sizes", x);
  const Chunks& chunks = x.chunks();
  for (int axis = 0; axis < x.ndim(); ++axis) {
    if (axis_known(x, axis)) continue;
    for (std::size_t b = 0; b < chunks[static_cast<std::size_t>(axis)].size(); ++b) {
      std::vector<std::int64_t> index(static_cast<std::size_t>(x.ndim()), 0);
      index[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(b);
      if (!wanted.try_emplace(index, roots.size()).second) continue;
      TaskPtr task = weft::detail::make_call_task(Key("block-shape", token, index), false, &kernels::shape_of_block,
                                                  x.block(index));
      roots.push_back({task->key(), task});
    }
  }
  std::vector<Value> shapes = weft::detail::execute(roots, nullptr, options);
  Chunks known = chunks;
  for (const auto& [index, at] : wanted) {
    const auto& shape = shapes[at].get<std::vector<std::int64_t>>();
    for (std::size_t axis = 0; axis < index.size(); ++axis)
      if (known[axis][static_cast<std::size_t>(index[axis])] == kUnknown)
        known[axis][static_cast<std::size_t>(index[axis])] = shape[axis];
  }
  detail::ArrayMeta meta{"chunk-sizes", token, shape_of(known), known, x.dtype()};
  return make_array(std::move(meta), [x](std::span<const std::int64_t> index, Key key) {
    return weft::detail::make_call_task(std::move(key), /*cheap=*/true, &kernels::same_block, x.block(index));
  });
}

Array Array::operator[](std::initializer_list<IndexItem> index) const {
  return getitem(*this, std::span<const IndexItem>(index.begin(), index.size()));
}

Array Array::operator[](const std::vector<IndexItem>& index) const { return getitem(*this, index); }

}  // namespace weft::array
