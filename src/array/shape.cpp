// src/array/shape.cpp - reshape, transpose, squeeze, concatenate and friends.
#include "weft/array/shape.hpp"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "kernels/elementwise.hpp"
#include "kernels/rechunk.hpp"
#include "weft/array/blockwise.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace {

using AxisChunkSizes = std::vector<std::int64_t>;

std::string axes_str(const std::vector<int>& axes) {
  std::vector<std::int64_t> wide(axes.begin(), axes.end());
  return shape_str(wide);
}

int resolve_axis(int axis, int ndim, std::string_view op) { return Axes(axis).resolve(ndim, op).front(); }

// A layer whose block i (in C order of its grid) is block i of x in another
// shape: reshape, squeeze and expand_dims, where x's blocks already line up
// with the result's.
Array reshape_blocks(std::string name, Token token, const Array& x, Shape shape, Chunks chunks) {
  const std::vector<std::int64_t> in_grid = x.numblocks();
  detail::ArrayMeta meta{std::move(name), token, std::move(shape), chunks, x.dtype()};
  return make_array(std::move(meta), [x, in_grid, chunks](std::span<const std::int64_t> index, Key key) {
    std::int64_t flat = 0;
    for (std::size_t a = 0; a < index.size(); ++a)
      flat = flat * static_cast<std::int64_t>(chunks[a].size()) + index[a];
    std::vector<std::int64_t> in_index(in_grid.size());
    for (std::size_t a = in_grid.size(); a-- > 0;) {
      in_index[a] = flat % in_grid[a];
      flat /= in_grid[a];
    }
    return weft::detail::make_call_task(std::move(key), false, &kernels::reshape_block,
                                        kernels::BlockShape{block_shape(chunks, index)}, x.block(in_index));
  });
}

// dask's expand_tuple: each chunk split into about `factor` parts.
AxisChunkSizes expand_chunks(const AxisChunkSizes& chunks, std::int64_t factor) {
  if (factor == 1) return chunks;
  AxisChunkSizes out;
  for (std::int64_t c : chunks) {
    std::int64_t rest = c;
    const double part = std::max(static_cast<double>(c) / static_cast<double>(factor), 1.0);
    while (static_cast<double>(rest) >= 2 * part) {
      out.push_back(static_cast<std::int64_t>(part));
      rest -= static_cast<std::int64_t>(part);
    }
    if (rest > 0) out.push_back(rest);
  }
  return out;
}

// dask's contract_tuple: chunks merged forward into multiples of `factor`
// (the chunks add up to a multiple of it).
AxisChunkSizes contract_chunks(const AxisChunkSizes& chunks, std::int64_t factor) {
  AxisChunkSizes out;
  std::int64_t residual = 0;
  for (std::int64_t c : chunks) {
    const std::int64_t whole = (c + residual) / factor * factor;
    residual = c + residual - whole;
    if (whole > 0) out.push_back(whole);
  }
  return out;
}

std::int64_t product(const Shape& shape, std::size_t from, std::size_t to) {
  return std::accumulate(shape.begin() + static_cast<std::ptrdiff_t>(from),
                         shape.begin() + static_cast<std::ptrdiff_t>(to), std::int64_t{1},
                         std::multiplies<>());
}

// dask's reshape_rechunk for arrays with elements: the chunks to rechunk x
// to, and the result's chunks, so that x's blocks map one to one onto the
// result's. Axes are matched from the end into groups whose extents
// multiply to the same number; in a group of input axes [il, ii] becoming
// output axes [ol, oi], all input axes but il are whole, and il's blocks
// are whole multiples of the rows that fill whole output rows.
std::pair<Chunks, Chunks> reshape_rechunk(const Shape& in_shape, const Shape& out_shape, const Chunks& in_chunks) {
  Chunks in(in_shape.size()), out(out_shape.size());
  auto ii = static_cast<std::ptrdiff_t>(in_shape.size()) - 1;
  auto oi = static_cast<std::ptrdiff_t>(out_shape.size()) - 1;
  const auto at = [](auto& v, std::ptrdiff_t i) -> auto& { return v[static_cast<std::size_t>(i)]; };
  while (ii >= 0 || oi >= 0) {
    if (ii >= 0 && oi >= 0 && at(in_shape, ii) == at(out_shape, oi)) {
      at(in, ii) = at(in_chunks, ii);
      at(out, oi--) = at(in_chunks, ii--);
      continue;
    }
    // Axes of length 1 (once one side is used up, the other has only those).
    if (ii >= 0 && at(in_shape, ii) == 1) {
      at(in, ii--) = {1};
      continue;
    }
    if (oi >= 0 && at(out_shape, oi) == 1) {
      at(out, oi--) = {1};
      continue;
    }
    std::ptrdiff_t il = ii, ol = oi;
    std::int64_t in_size = at(in_shape, ii), out_size = at(out_shape, oi);
    while (in_size != out_size) {
      if (in_size < out_size) in_size *= at(in_shape, --il);
      else out_size *= at(out_shape, --ol);
    }
    const auto first_in = static_cast<std::size_t>(il), last_in = static_cast<std::size_t>(ii);
    const auto first_out = static_cast<std::size_t>(ol), last_out = static_cast<std::size_t>(oi);
    const bool outer_in_single = std::all_of(in_chunks.begin() + il, in_chunks.begin() + ii, [](const AxisChunkSizes& c) {
      return std::all_of(c.begin(), c.end(), [](std::int64_t s) { return s == 1; });
    });
    if (ol == oi && outer_in_single) {
      // Merging axes whose outer blocks are single rows: blocks only move.
      std::int64_t repeats = 1;
      for (std::size_t a = first_in; a <= last_in; ++a) {
        in[a] = in_chunks[a];
        if (a < last_in) repeats *= static_cast<std::int64_t>(in_chunks[a].size());
      }
      for (std::int64_t r = 0; r < repeats; ++r)
        out[last_out].insert(out[last_out].end(), in_chunks[last_in].begin(), in_chunks[last_in].end());
    } else {
      const std::int64_t inner_in = product(in_shape, first_in + 1, last_in + 1);
      const std::int64_t inner_out = product(out_shape, first_out + 1, last_out + 1);
      std::int64_t inner_blocks = 1;
      for (std::size_t a = first_in + 1; a <= last_in; ++a) {
        inner_blocks *= static_cast<std::int64_t>(in_chunks[a].size());
        in[a] = {in_shape[a]};
      }
      // Leading rows per block: whole multiples of the rows that make whole
      // output rows; split further as the inner axes merged away blocks.
      const std::int64_t rows = std::lcm(inner_in, inner_out) / inner_in;
      in[first_in] = contract_chunks(expand_chunks(in_chunks[first_in], inner_blocks), rows);
      for (std::int64_t c : in[first_in]) out[first_out].push_back(c * inner_in / inner_out);
      for (std::size_t a = first_out + 1; a <= last_out; ++a) out[a] = {out_shape[a]};
    }
    ii = il - 1;
    oi = ol - 1;
  }
  return {std::move(in), std::move(out)};
}

}  // namespace

Array reshape(const Array& x, Shape shape) {
  const auto bad = [&](const std::string& why) {
    throw ValueError("bad-shape", "reshape: cannot reshape an array of shape " + shape_str(x.shape()) +
                                      " into shape " + shape_str(shape) + ": " + why);
  };
  if (has_unknown(x.chunks()))
    throw ValueError("unknown-chunks", "reshape: the array has chunks of unknown size " + chunks_str(x.chunks()) +
                                           "; compute the chunk sizes first");
  auto inferred = shape.end();
  for (auto it = shape.begin(); it != shape.end(); ++it) {
    if (*it == -1 && inferred != shape.end()) bad("only one extent can be -1");
    if (*it == -1) inferred = it;
    else if (*it < 0) bad("negative extents are not allowed");
  }
  if (inferred != shape.end()) {
    *inferred = 1;
    const std::int64_t known = shape_size(shape);
    if (known == 0 || x.size() % known != 0) {
      *inferred = -1;
      bad("the size " + std::to_string(x.size()) + " does not divide into it");
    }
    *inferred = x.size() / known;
  }
  if (shape_size(shape) != x.size()) bad("the sizes " + std::to_string(x.size()) + " and " +
                                         std::to_string(shape_size(shape)) + " differ");
  if (shape == x.shape()) return x;
  const Token token = detail::op_token("reshape", x, shape);
  if (x.npartitions() == 1 || x.size() == 0) {
    Chunks whole;
    for (std::int64_t extent : shape) whole.push_back({extent});
    return reshape_blocks("reshape", token, rechunk(x, -1), std::move(shape), std::move(whole));
  }
  auto [in_chunks, out_chunks] = reshape_rechunk(x.shape(), shape, x.chunks());
  return reshape_blocks("reshape", token, rechunk(x, in_chunks), std::move(shape), std::move(out_chunks));
}

Array ravel(const Array& x) { return reshape(x, {-1}); }

Array transpose(const Array& x, std::vector<int> axes) {
  const int ndim = x.ndim();
  if (axes.empty()) {
    axes.resize(static_cast<std::size_t>(ndim));
    std::iota(axes.rbegin(), axes.rend(), 0);
  }
  if (static_cast<int>(axes.size()) != ndim)
    throw ValueError("bad-axis", "transpose: axes " + axes_str(axes) + " do not match an array of dimension " +
                                     std::to_string(ndim));
  static_cast<void>(Axes(axes).resolve(ndim, "transpose"));  // checks range and repeats
  for (int& a : axes) a = a < 0 ? a + ndim : a;
  if (std::is_sorted(axes.begin(), axes.end())) return x;
  // Random values transpose by reading their generator transposed, and stay fusable.
  if (std::optional<Array> generated = kernels::transpose_generated(x, axes)) return *generated;
  Shape shape;
  Chunks chunks;
  for (int a : axes) {
    shape.push_back(x.shape()[static_cast<std::size_t>(a)]);
    chunks.push_back(x.chunks()[static_cast<std::size_t>(a)]);
  }
  detail::ArrayMeta meta{"transpose", detail::op_token("transpose", x, axes), std::move(shape), std::move(chunks),
                         x.dtype()};
  return make_array(std::move(meta), [x, order = kernels::AxisOrder{axes}](std::span<const std::int64_t> index,
                                                                          Key key) {
    std::vector<std::int64_t> in_index(index.size());
    for (std::size_t i = 0; i < index.size(); ++i) in_index[static_cast<std::size_t>(order.axes[i])] = index[i];
    return weft::detail::make_call_task(std::move(key), true, &kernels::transpose_block, order, x.block(in_index));
  });
}

Array moveaxis(const Array& x, std::vector<int> source, std::vector<int> destination) {
  const int ndim = x.ndim();
  if (source.size() != destination.size())
    throw ValueError("bad-axis", "moveaxis: source " + axes_str(source) + " and destination " +
                                     axes_str(destination) + " must have the same number of elements");
  static_cast<void>(Axes(source).resolve(ndim, "moveaxis"));  // checks range and repeats
  static_cast<void>(Axes(destination).resolve(ndim, "moveaxis"));
  std::vector<std::pair<int, int>> moves;  // (destination, source), as NumPy inserts them
  for (std::size_t i = 0; i < source.size(); ++i)
    moves.emplace_back(resolve_axis(destination[i], ndim, "moveaxis"), resolve_axis(source[i], ndim, "moveaxis"));
  std::sort(moves.begin(), moves.end());
  std::vector<int> order;
  for (int a = 0; a < ndim; ++a)
    if (std::none_of(moves.begin(), moves.end(), [&](const auto& m) { return m.second == a; })) order.push_back(a);
  for (const auto& [to, from] : moves) order.insert(order.begin() + to, from);
  return transpose(x, std::move(order));
}

Array moveaxis(const Array& x, int source, int destination) {
  return moveaxis(x, std::vector<int>{source}, std::vector<int>{destination});
}

Array swapaxes(const Array& x, int axis1, int axis2) {
  const int a = resolve_axis(axis1, x.ndim(), "swapaxes");
  const int b = resolve_axis(axis2, x.ndim(), "swapaxes");
  std::vector<int> order(static_cast<std::size_t>(x.ndim()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<std::size_t>(a)], order[static_cast<std::size_t>(b)]);
  return transpose(x, std::move(order));
}

Array squeeze(const Array& x, Axes axis) {
  std::vector<int> dropped;
  if (axis.all()) {
    for (int a = 0; a < x.ndim(); ++a)
      if (x.shape()[static_cast<std::size_t>(a)] == 1) dropped.push_back(a);
  } else {
    dropped = axis.resolve(x.ndim(), "squeeze");
    for (int a : dropped)
      if (x.shape()[static_cast<std::size_t>(a)] != 1)
        throw ValueError("bad-axis", "squeeze: axis " + std::to_string(a) + " has length " +
                                         std::to_string(x.shape()[static_cast<std::size_t>(a)]) + ", not 1");
  }
  if (dropped.empty()) return x;
  Shape shape;
  Chunks chunks, in_chunks;  // a dropped axis must be one block ({1, 0} is two)
  for (int a = 0; a < x.ndim(); ++a) {
    const bool drop = std::find(dropped.begin(), dropped.end(), a) != dropped.end();
    in_chunks.push_back(drop ? AxisChunkSizes{1} : x.chunks()[static_cast<std::size_t>(a)]);
    if (!drop) {
      shape.push_back(x.shape()[static_cast<std::size_t>(a)]);
      chunks.push_back(x.chunks()[static_cast<std::size_t>(a)]);
    }
  }
  return reshape_blocks("squeeze", detail::op_token("squeeze", x, dropped),
                        in_chunks == x.chunks() ? x : rechunk(x, in_chunks), std::move(shape), std::move(chunks));
}

Array expand_dims(const Array& x, Axes axis) {
  if (axis.all()) throw ValueError("bad-axis", "expand_dims: the positions of the new axes must be given");
  const int ndim = x.ndim() + static_cast<int>(axis.list().size());
  const std::vector<int> added = axis.resolve(ndim, "expand_dims");
  Shape shape;
  Chunks chunks;
  for (int a = 0, from = 0; a < ndim; ++a) {
    if (std::find(added.begin(), added.end(), a) != added.end()) {
      shape.push_back(1);
      chunks.push_back({1});
    } else {
      shape.push_back(x.shape()[static_cast<std::size_t>(from)]);
      chunks.push_back(x.chunks()[static_cast<std::size_t>(from++)]);
    }
  }
  return reshape_blocks("expand_dims", detail::op_token("expand_dims", x, added), x, std::move(shape),
                        std::move(chunks));
}

Array concatenate(const std::vector<Array>& arrays, int axis) {
  if (arrays.empty()) throw ValueError("no-arrays", "concatenate: at least one array is needed");
  const int ndim = arrays.front().ndim();
  if (ndim == 0) throw ValueError("bad-axis", "concatenate: 0-d arrays cannot be concatenated");
  const auto along = static_cast<std::size_t>(resolve_axis(axis, ndim, "concatenate"));
  DType dtype = arrays.front().dtype();
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const Array& a = arrays[i];
    if (a.ndim() != ndim)
      throw ValueError("shape-mismatch", "concatenate: array 0 has " + std::to_string(ndim) + " dimensions, array " +
                                             std::to_string(i) + " has " + std::to_string(a.ndim()));
    for (std::size_t d = 0; d < a.shape().size(); ++d)
      if (d != along && a.shape()[d] != arrays.front().shape()[d])
        throw ValueError("shape-mismatch", "concatenate: array 0 has shape " + shape_str(arrays.front().shape()) +
                                               ", array " + std::to_string(i) + " has shape " + shape_str(a.shape()) +
                                               "; they may differ only along axis " + std::to_string(along));
    for (std::size_t d = 0; d < a.chunks().size(); ++d)
      if (d != along && has_unknown(Chunks{a.chunks()[d]}))
        throw ValueError("unknown-chunks", "concatenate: array " + std::to_string(i) + " has chunks of unknown size " +
                                               chunks_str(a.chunks()) + " off axis " + std::to_string(along));
    dtype = result_type(dtype, a.dtype());
  }
  // Off the axis, all inputs take the blocks between all their boundaries.
  Chunks common = arrays.front().chunks();
  common[along].clear();
  for (const Array& a : arrays)
    for (std::size_t d = 0; d < common.size(); ++d)
      if (d != along && common[d] != a.chunks()[d]) common[d] = detail::common_blocks(common[d], a.chunks()[d]);
  std::vector<Array> inputs;
  Shape shape = arrays.front().shape();
  shape[along] = 0;
  Chunks chunks = common;
  std::vector<std::int64_t> first_block;  // of each input along the axis
  for (const Array& a : arrays) {
    Chunks wanted = common;
    wanted[along] = a.chunks()[along];
    inputs.push_back(wanted == a.chunks() ? a : rechunk(a, wanted));
    first_block.push_back(static_cast<std::int64_t>(chunks[along].size()));
    chunks[along].insert(chunks[along].end(), a.chunks()[along].begin(), a.chunks()[along].end());
    shape[along] = shape[along] == kUnknown || a.shape()[along] == kUnknown ? kUnknown
                                                                            : shape[along] + a.shape()[along];
  }
  detail::ArrayMeta meta{"concatenate", detail::op_token("concatenate", inputs, along, dtype), std::move(shape),
                         std::move(chunks), dtype};
  return make_array(std::move(meta), [inputs, first_block, along, dtype](std::span<const std::int64_t> index,
                                                                         Key key) {
    const auto k = static_cast<std::size_t>(
        std::upper_bound(first_block.begin(), first_block.end(), index[along]) - first_block.begin() - 1);
    std::vector<std::int64_t> in_index(index.begin(), index.end());
    in_index[along] -= first_block[k];
    const Array& x = inputs[k];
    if (x.dtype() == dtype)
      return weft::detail::make_call_task(std::move(key), true, &kernels::same_block, x.block(in_index));
    return weft::detail::make_call_task(std::move(key), false, &kernels::cast_block, dtype, x.block(in_index));
  });
}

Array stack(const std::vector<Array>& arrays, int axis) {
  if (arrays.empty()) throw ValueError("no-arrays", "stack: at least one array is needed");
  for (std::size_t i = 0; i < arrays.size(); ++i)
    if (arrays[i].shape() != arrays.front().shape())
      throw ValueError("shape-mismatch", "stack: array 0 has shape " + shape_str(arrays.front().shape()) +
                                             ", array " + std::to_string(i) + " has shape " +
                                             shape_str(arrays[i].shape()) + "; all must have the same shape");
  const int at = resolve_axis(axis, arrays.front().ndim() + 1, "stack");
  std::vector<Array> expanded;
  for (const Array& a : arrays) expanded.push_back(expand_dims(a, at));
  return concatenate(expanded, at);
}

Array atleast_1d(const Array& x) { return x.ndim() >= 1 ? x : expand_dims(x, 0); }

Array atleast_2d(const Array& x) {
  if (x.ndim() >= 2) return x;
  return x.ndim() == 1 ? expand_dims(x, 0) : expand_dims(x, {0, 1});
}

Array atleast_3d(const Array& x) {
  switch (x.ndim()) {
    case 0: return expand_dims(x, {0, 1, 2});
    case 1: return expand_dims(x, {0, 2});
    case 2: return expand_dims(x, 2);
    default: return x;
  }
}

Array Array::T() const { return array::transpose(*this); }
Array Array::transpose(std::vector<int> axes) const { return array::transpose(*this, std::move(axes)); }
Array Array::reshape(Shape shape) const { return array::reshape(*this, std::move(shape)); }
Array Array::ravel() const { return array::ravel(*this); }
Array Array::squeeze(Axes axis) const { return array::squeeze(*this, std::move(axis)); }
Array Array::swapaxes(int a, int b) const { return array::swapaxes(*this, a, b); }

}  // namespace weft::array
