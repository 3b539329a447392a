// src/array/reductions.cpp - the layers of reductions (chunk, combine tree,
// aggregate: dask's reduction/_tree_reduce), scans (dask's cumreduction),
// average and histogram. The arithmetic is in kernels/reduce*.cpp.
#include "weft/array/reductions.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "kernels/reduce.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/array/shape.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace {

using kernels::ReduceOp;
using kernels::ReduceSpec;
using BlockIndex = std::vector<std::int64_t>;

// A reduction of x over some axes: what the tree needs besides the kernels.
struct Reduction {
  std::string name;          // "sum": layers are sum-<t>, sum-partial-<t>, sum-aggregate-<t>
  ReduceSpec spec;
  std::vector<int> axes;     // reduced, sorted
  int split_every = 16;      // per tree node, over all reduced axes
};

int split_every_of(const ReduceOptions& options, std::string_view op) {
  const int s = options.split_every ? *options.split_every : config::get<int>("array.split-every");
  if (s < 2)
    throw ValueError("bad-split-every", std::string(op) + ": split_every must be at least 2, got " + std::to_string(s));
  return s;
}

std::uint64_t axis_mask(const std::vector<int>& axes) {
  std::uint64_t mask = 0;
  for (int a : axes) mask |= std::uint64_t{1} << a;
  return mask;
}

std::vector<int> resolve_axes(const Array& x, const Axes& axis, std::string_view op) {
  if (x.ndim() > 64)
    throw ValueError("bad-axis", std::string(op) + ": arrays of more than 64 dimensions cannot be reduced");
  return axis.resolve(x.ndim(), op);
}

// dask's rule: split_every s over n reduced axes combines about s^(1/n)
// blocks along each (at least 2).
std::int64_t per_axis_split(int split_every, std::size_t naxes) {
  if (naxes == 0) return 2;
  const double root = std::pow(static_cast<double>(split_every), 1.0 / static_cast<double>(naxes));
  return std::max<std::int64_t>(static_cast<std::int64_t>(root + 1e-9), 2);
}

// Calls f(index) for every index of the box [lo, hi) in C order.
template <class F>
void for_each_index(const BlockIndex& lo, const BlockIndex& hi, F&& f) {
  for (std::size_t d = 0; d < lo.size(); ++d)
    if (lo[d] >= hi[d]) return;
  BlockIndex index = lo;
  while (true) {
    f(index);
    std::size_t d = index.size();
    while (d > 0) {
      --d;
      if (++index[d] < hi[d]) break;
      index[d] = lo[d];
      if (d == 0) return;
    }
    if (index.empty()) return;
  }
}

// The blocks of `parts` in [lo, hi), in C order, as task arguments.
std::vector<Delayed<NDArray>> blocks_in(const Array& parts, const BlockIndex& lo, const BlockIndex& hi) {
  std::vector<Delayed<NDArray>> out;
  for_each_index(lo, hi, [&](const BlockIndex& index) { out.push_back(parts.block(index)); });
  return out;
}

// A partials array: axis 0 holds the fields, then x's axes with one size-1
// block per block of x along the reduced ones. `make(x_index)` gives a
// block's partial task given the index of x's block.
template <class Make>
Array partials_of(const Array& x, const Reduction& r, const Token& token, Make make) {
  const kernels::PartialLayout layout = kernels::partial_layout(r.spec);
  Chunks chunks{{layout.fields}};
  Shape shape{layout.fields};
  for (int d = 0; d < x.ndim(); ++d) {
    const bool reduced = r.spec.reduced >> d & 1;
    chunks.push_back(reduced ? std::vector<std::int64_t>(x.chunks()[d].size(), 1) : x.chunks()[d]);
    shape.push_back(reduced ? static_cast<std::int64_t>(x.chunks()[d].size()) : x.shape()[d]);
  }
  detail::ArrayMeta meta{r.name, token, std::move(shape), std::move(chunks), layout.dtype};
  return make_array(std::move(meta), [make](std::span<const std::int64_t> index, Key key) {
    return make(BlockIndex(index.begin() + 1, index.end()), std::move(key));
  });
}

// One level of the tree: up to `split` partials merged along each reduced axis.
Array combine_level(const Array& parts, const Reduction& r, std::int64_t split) {
  Chunks chunks = parts.chunks();
  Shape shape = parts.shape();
  for (int d : r.axes) {
    const auto blocks = static_cast<std::int64_t>(chunks[d + 1].size());
    const std::int64_t groups = (blocks + split - 1) / split;
    chunks[d + 1].assign(groups, 1);
    shape[d + 1] = groups;
  }
  const std::string name = r.name + "-partial";
  detail::ArrayMeta meta{name, detail::op_token(name, parts, split), std::move(shape), std::move(chunks),
                         parts.dtype()};
  const std::vector<std::int64_t> grid = parts.numblocks();
  return make_array(std::move(meta), [parts, r, split, grid](std::span<const std::int64_t> index, Key key) {
    BlockIndex lo(index.begin(), index.end());
    BlockIndex hi(lo);
    for (std::size_t d = 0; d < hi.size(); ++d) ++hi[d];
    for (int d : r.axes) {
      lo[d + 1] = index[d + 1] * split;
      hi[d + 1] = std::min(lo[d + 1] + split, grid[d + 1]);
    }
    return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_combine, r.spec,
                                        blocks_in(parts, lo, hi));
  });
}

// Combine levels until at most `split` partials remain along each reduced axis.
Array combine_tree(Array parts, const Reduction& r) {
  const std::int64_t split = per_axis_split(r.split_every, r.axes.size());
  while (std::any_of(r.axes.begin(), r.axes.end(), [&](int d) { return parts.numblocks()[d + 1] > split; }))
    parts = combine_level(parts, r, split);
  return parts;
}

// The result: all remaining partials along the reduced axes merged and finished.
Array aggregate(const Array& parts, const Reduction& r, const Shape& x_shape) {
  Chunks chunks;
  Shape shape;
  for (int d = 0; d < r.spec.ndim; ++d) {
    const bool reduced = r.spec.reduced >> d & 1;
    if (reduced && !r.spec.keepdims) continue;
    chunks.push_back(reduced ? std::vector<std::int64_t>{1} : parts.chunks()[d + 1]);
    shape.push_back(reduced ? 1 : x_shape[d]);
  }
  const std::string name = r.name + "-aggregate";
  detail::ArrayMeta meta{name, detail::op_token(name, parts, r.spec.keepdims, static_cast<int>(r.spec.out)),
                         std::move(shape), std::move(chunks), r.spec.out};
  const std::vector<std::int64_t> grid = parts.numblocks();
  return make_array(std::move(meta), [parts, r, grid](std::span<const std::int64_t> index, Key key) {
    BlockIndex lo(grid.size(), 0);
    BlockIndex hi(grid.size(), 1);
    std::size_t at = 0;
    for (int d = 0; d < r.spec.ndim; ++d) {
      const bool reduced = r.spec.reduced >> d & 1;
      if (reduced) {
        hi[d + 1] = grid[d + 1];
        if (r.spec.keepdims) ++at;
      } else {
        lo[d + 1] = index[at++];
        hi[d + 1] = lo[d + 1] + 1;
      }
    }
    return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_aggregate, r.spec,
                                        blocks_in(parts, lo, hi));
  });
}

Reduction make_reduction(const Array& x, std::string name, ReduceOp op, const Axes& axis,
                         const ReduceOptions& options, DType out) {
  Reduction r;
  r.axes = resolve_axes(x, axis, name);
  r.split_every = split_every_of(options, name);
  r.spec.op = op;
  r.spec.input = x.dtype();
  r.spec.out = options.dtype.value_or(out);
  r.spec.reduced = axis_mask(r.axes);
  r.spec.ndim = x.ndim();
  r.spec.keepdims = options.keepdims;
  r.name = std::move(name);
  return r;
}

Token chunk_token(const Array& x, const Reduction& r) {
  return detail::op_token(r.name, x, static_cast<int>(r.spec.op), static_cast<int>(r.spec.input),
                          static_cast<int>(r.spec.out), r.spec.reduced, r.spec.order, r.spec.ddof);
}

// Partial tasks reading x's blocks; or, when x is a fused elementwise
// expression, evaluating it tile by tile inside the partial, so that its
// blocks never exist.
Array block_partials(const Array& x, const Reduction& r) {
  const kernels::ElementwiseLayer* fused = kernels::elementwise_layer(x);
  if (fused != nullptr && kernels::fusable(r.spec.op)) {
    const auto layer = std::static_pointer_cast<const kernels::ElementwiseLayer>(x.layer_ptr());
    return partials_of(x, r, chunk_token(x, r), [layer, spec = r.spec](const BlockIndex& index, Key key) {
      return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_fused_partial, spec,
                                          layer->block_program(index), block_shape(layer->meta().chunks, index),
                                          layer->leaf_blocks(index));
    });
  }
  return partials_of(x, r, chunk_token(x, r), [x, spec = r.spec](const BlockIndex& index, Key key) {
    return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_partial, spec, x.block(index));
  });
}

Array tree_reduce(const Array& x, const Reduction& r) {
  return aggregate(combine_tree(block_partials(x, r), r), r, x.shape());
}

// Whether the reduced axes hold no element (min/max/arg of nothing).
void check_not_empty(const Array& x, const Reduction& r) {
  for (int d : r.axes)
    if (x.shape()[d] == 0)
      throw ValueError("empty-reduction", r.name + ": zero-size array to reduction operation " + r.name +
                                              " which has no identity (axis " + std::to_string(d) +
                                              " of shape " + shape_str(x.shape()) + " is empty)");
}

// NumPy's sum/prod dtype: bool and narrower ints widen to int64 (uint64).
DType sum_dtype(DType t) {
  switch (t) {
    case DType::bool_:
    case DType::int8:
    case DType::int16:
    case DType::int32: return DType::int64;
    case DType::uint8:
    case DType::uint16:
    case DType::uint32: return DType::uint64;
    default: return t;
  }
}

// nan* functions on types without NaN are the plain ones.
ReduceOp without_nan(DType t, ReduceOp nan_op, ReduceOp plain) { return is_inexact(t) ? nan_op : plain; }

Array simple(const Array& x, const char* name, ReduceOp op, const Axes& axis, const ReduceOptions& options,
             DType out) {
  const Reduction r = make_reduction(x, name, op, axis, options, out);
  return tree_reduce(x, r);
}

Array extreme(const Array& x, const char* name, ReduceOp op, const Axes& axis, const ReduceOptions& options) {
  const Reduction r = make_reduction(x, name, op, axis, options, x.dtype());
  check_not_empty(x, r);
  return tree_reduce(x, r);
}

Array moments(const Array& x, const char* name, ReduceOp op, int order, const Axes& axis, int ddof,
              const ReduceOptions& options) {
  Reduction r = make_reduction(x, name, op, axis, options, real_type(float_result(x.dtype())));
  r.spec.order = order;
  r.spec.ddof = ddof;
  return tree_reduce(x, r);
}

Array arg_reduce(const Array& x, const char* name, ReduceOp op, std::optional<int> axis,
                 const ReduceOptions& options) {
  if (options.dtype)
    throw TypeError("bad-dtype", std::string(name) + ": the result is always int64; dtype must not be given");
  const Axes axes = axis ? Axes(*axis) : Axes();
  const Reduction r = make_reduction(x, name, op, axes, options, DType::int64);
  check_not_empty(x, r);
  // An element's index in the result: along the axis, or C-order flat.
  std::vector<std::int64_t> index_strides(x.ndim(), 0);
  if (axis) {
    index_strides[r.axes.front()] = 1;
  } else {
    const Strides flat = c_strides(x.shape());
    index_strides.assign(flat.begin(), flat.end());
  }
  std::vector<std::vector<std::int64_t>> offsets;
  for (const auto& c : x.chunks()) offsets.push_back(block_offsets(c));
  const auto make = [x, spec = r.spec, index_strides, offsets](const BlockIndex& index, Key key) {
    std::vector<std::int64_t> placement;
    for (std::size_t d = 0; d < index.size(); ++d) placement.push_back(offsets[d][index[d]]);
    placement.insert(placement.end(), index_strides.begin(), index_strides.end());
    return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_arg_partial, spec,
                                        std::move(placement), x.block(index));
  };
  const Array parts = partials_of(x, r, chunk_token(x, r), make);
  return aggregate(combine_tree(parts, r), r, x.shape());
}

}  // namespace

Array sum(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "sum", ReduceOp::sum, axis, options, sum_dtype(x.dtype()));
}
Array prod(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "prod", ReduceOp::prod, axis, options, sum_dtype(x.dtype()));
}
Array nansum(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "nansum", without_nan(x.dtype(), ReduceOp::nansum, ReduceOp::sum), axis, options,
                sum_dtype(x.dtype()));
}
Array nanprod(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "nanprod", without_nan(x.dtype(), ReduceOp::nanprod, ReduceOp::prod), axis, options,
                sum_dtype(x.dtype()));
}
Array min(const Array& x, Axes axis, const ReduceOptions& options) {
  return extreme(x, "min", ReduceOp::min, axis, options);
}
Array max(const Array& x, Axes axis, const ReduceOptions& options) {
  return extreme(x, "max", ReduceOp::max, axis, options);
}
Array nanmin(const Array& x, Axes axis, const ReduceOptions& options) {
  return extreme(x, "nanmin", without_nan(x.dtype(), ReduceOp::nanmin, ReduceOp::min), axis, options);
}
Array nanmax(const Array& x, Axes axis, const ReduceOptions& options) {
  return extreme(x, "nanmax", without_nan(x.dtype(), ReduceOp::nanmax, ReduceOp::max), axis, options);
}
Array ptp(const Array& x, Axes axis, const ReduceOptions& options) {
  if (x.dtype() == DType::bool_)
    throw TypeError("bad-dtype", "ptp: numpy boolean subtract is not supported; convert the bool array first");
  return extreme(x, "ptp", ReduceOp::ptp, axis, options);
}
Array any(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "any", ReduceOp::any, axis, options, DType::bool_);
}
Array all(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "all", ReduceOp::all, axis, options, DType::bool_);
}
Array count_nonzero(const Array& x, Axes axis, const ReduceOptions& options) {
  return simple(x, "count_nonzero", ReduceOp::count_nonzero, axis, options, DType::int64);
}

Array mean(const Array& x, Axes axis, const ReduceOptions& options) {
  const Reduction r = make_reduction(x, "mean", ReduceOp::mean, axis, options, float_result(x.dtype()));
  return tree_reduce(x, r);
}
Array nanmean(const Array& x, Axes axis, const ReduceOptions& options) {
  const Reduction r = make_reduction(x, "nanmean", without_nan(x.dtype(), ReduceOp::nanmean, ReduceOp::mean), axis,
                                     options, float_result(x.dtype()));
  return tree_reduce(x, r);
}
Array var(const Array& x, Axes axis, int ddof, const ReduceOptions& options) {
  return moments(x, "var", ReduceOp::var, 2, axis, ddof, options);
}
Array nanvar(const Array& x, Axes axis, int ddof, const ReduceOptions& options) {
  return moments(x, "nanvar", without_nan(x.dtype(), ReduceOp::nanvar, ReduceOp::var), 2, axis, ddof, options);
}
Array std(const Array& x, Axes axis, int ddof, const ReduceOptions& options) {
  return moments(x, "std", ReduceOp::std, 2, axis, ddof, options);
}
Array nanstd(const Array& x, Axes axis, int ddof, const ReduceOptions& options) {
  return moments(x, "nanstd", without_nan(x.dtype(), ReduceOp::nanstd, ReduceOp::std), 2, axis, ddof, options);
}
Array moment(const Array& x, int order, Axes axis, int ddof, const ReduceOptions& options) {
  if (order < 0) throw ValueError("bad-order", "moment: order must be an integer >= 0, got " + std::to_string(order));
  if (is_complex(x.dtype()))
    throw TypeError("bad-dtype", "moment: complex input is not supported (got " +
                                     std::string(dtype_name(x.dtype())) + ")");
  return moments(x, "moment", ReduceOp::moment, order, axis, ddof, options);
}

Array argmin(const Array& x, std::optional<int> axis, const ReduceOptions& options) {
  return arg_reduce(x, "argmin", ReduceOp::argmin, axis, options);
}
Array argmax(const Array& x, std::optional<int> axis, const ReduceOptions& options) {
  return arg_reduce(x, "argmax", ReduceOp::argmax, axis, options);
}
Array nanargmin(const Array& x, std::optional<int> axis, const ReduceOptions& options) {
  return arg_reduce(x, "nanargmin", without_nan(x.dtype(), ReduceOp::nanargmin, ReduceOp::argmin), axis, options);
}
Array nanargmax(const Array& x, std::optional<int> axis, const ReduceOptions& options) {
  return arg_reduce(x, "nanargmax", without_nan(x.dtype(), ReduceOp::nanargmax, ReduceOp::argmax), axis, options);
}

// --- average -------------------------------------------------------------------

namespace {

// The average and the sum of weights: two aggregates of one tree of mean partials.
std::pair<Array, Array> averaged(const Array& x, const Axes& axis, const std::optional<Array>& weights,
                                 bool keepdims) {
  ReduceOptions options;
  options.keepdims = keepdims;
  if (!weights) {
    const Reduction r = make_reduction(x, "average", ReduceOp::mean, axis, options, float_result(x.dtype()));
    const Array combined = combine_tree(block_partials(x, r), r);
    Reduction count = r;
    count.spec.op = ReduceOp::average_weights;
    count.name = "average-count";
    return {aggregate(combined, r, x.shape()), aggregate(combined, count, x.shape())};
  }
  const Array& w = *weights;
  const DType result = is_integer(x.dtype()) || x.dtype() == DType::bool_
                           ? result_type(result_type(x.dtype(), w.dtype()), DType::float64)
                           : result_type(x.dtype(), w.dtype());
  Reduction r = make_reduction(x, "average", ReduceOp::mean, axis, options, result);
  r.spec.input = result;
  int weights_axis = -1;
  Array aligned;
  if (w.shape() == x.shape()) {
    aligned = w.chunks() == x.chunks() ? w : rechunk(w, x.chunks());
  } else if (w.ndim() == 1 && r.axes.size() == 1 && !axis.all() && w.shape()[0] == x.shape()[r.axes[0]]) {
    weights_axis = r.axes[0];
    const Chunks along{x.chunks()[weights_axis]};
    aligned = w.chunks() == along ? w : rechunk(w, along);
  } else {
    throw ValueError("shape-mismatch", "average: weights of shape " + shape_str(w.shape()) +
                                           " do not fit an array of shape " + shape_str(x.shape()) +
                                           " (give x's shape, or 1-d weights along the one axis reduced)");
  }
  const Token token = detail::op_token("average", x, aligned, r.spec.reduced, static_cast<int>(result));
  const auto make = [x, aligned, spec = r.spec, weights_axis](const BlockIndex& index, Key key) {
    const Delayed<NDArray> wb = weights_axis >= 0 ? aligned.block({index[weights_axis]}) : aligned.block(index);
    return weft::detail::make_call_task(std::move(key), false, &kernels::reduce_weighted_partial, spec,
                                        x.block(index), wb, weights_axis);
  };
  const Array combined = combine_tree(partials_of(x, r, token, make), r);
  Reduction count = r;
  count.spec.op = ReduceOp::average_weights;
  count.name = "average-weights";
  return {aggregate(combined, r, x.shape()), aggregate(combined, count, x.shape())};
}

}  // namespace

Array average(const Array& x, Axes axis, const std::optional<Array>& weights, bool keepdims) {
  return averaged(x, axis, weights, keepdims).first;
}

std::pair<Array, Array> average_returned(const Array& x, Axes axis, const std::optional<Array>& weights,
                                         bool keepdims) {
  return averaged(x, axis, weights, keepdims);
}

// --- scans ---------------------------------------------------------------------

namespace {

// dask's cumreduction: per block its total along the axis (in parallel), the
// running totals carried from block to block (small slices), then each block
// scanned starting from the carry of the blocks before it.
Array cumulative(const Array& input, const char* name, kernels::ScanOp op, std::optional<int> axis_arg,
                 std::optional<DType> dtype) {
  const Array x = axis_arg ? input : ravel(input);
  const int axis = Axes(axis_arg.value_or(0)).resolve(x.ndim(), name).front();
  const kernels::ScanSpec spec{op, dtype.value_or(sum_dtype(x.dtype())), axis};
  const Token base = detail::op_token(name, x, axis, static_cast<int>(spec.out));

  Chunks slice_chunks = x.chunks();
  slice_chunks[axis].assign(slice_chunks[axis].size(), 1);
  Shape slice_shape = x.shape();
  slice_shape[axis] = static_cast<std::int64_t>(slice_chunks[axis].size());

  const std::string total_name = std::string(name) + "-total";
  const Array totals = make_array(
      detail::ArrayMeta{total_name, detail::op_token(total_name, base), slice_shape, slice_chunks, spec.out},
      [x, spec](std::span<const std::int64_t> index, Key key) {
        return weft::detail::make_call_task(std::move(key), false, &kernels::scan_total, spec, x.block(index));
      });
  // carry block j: the totals of blocks 0..j along the axis.
  const std::string carry_name = std::string(name) + "-carry";
  auto carries = std::make_shared<Array>();
  *carries = make_array(
      detail::ArrayMeta{carry_name, detail::op_token(carry_name, base), slice_shape, slice_chunks, spec.out},
      [totals, spec, weak = std::weak_ptr<Array>(carries)](std::span<const std::int64_t> index, Key key) {
        BlockIndex at(index.begin(), index.end());
        if (at[spec.axis] == 0) return totals.block_task(at);
        BlockIndex before = at;
        --before[spec.axis];
        return weft::detail::make_call_task(std::move(key), false, &kernels::scan_carry, spec,
                                            weak.lock()->block(before), totals.block(at));
      });
  detail::ArrayMeta meta{name, base, x.shape(), x.chunks(), spec.out};
  return make_array(std::move(meta), [x, spec, carries](std::span<const std::int64_t> index, Key key) {
    BlockIndex at(index.begin(), index.end());
    if (at[spec.axis] == 0)
      return weft::detail::make_call_task(std::move(key), false, &kernels::scan_first, spec, x.block(at));
    BlockIndex before = at;
    --before[spec.axis];
    return weft::detail::make_call_task(std::move(key), false, &kernels::scan_after, spec, x.block(at),
                                        carries->block(before));
  });
}

}  // namespace

Array cumsum(const Array& x, std::optional<int> axis, std::optional<DType> dtype) {
  return cumulative(x, "cumsum", kernels::ScanOp::sum, axis, dtype);
}
Array cumprod(const Array& x, std::optional<int> axis, std::optional<DType> dtype) {
  return cumulative(x, "cumprod", kernels::ScanOp::prod, axis, dtype);
}
Array nancumsum(const Array& x, std::optional<int> axis, std::optional<DType> dtype) {
  return cumulative(x, "nancumsum", is_inexact(x.dtype()) ? kernels::ScanOp::nansum : kernels::ScanOp::sum, axis,
                    dtype);
}
Array nancumprod(const Array& x, std::optional<int> axis, std::optional<DType> dtype) {
  return cumulative(x, "nancumprod", is_inexact(x.dtype()) ? kernels::ScanOp::nanprod : kernels::ScanOp::prod, axis,
                    dtype);
}

// --- histogram -----------------------------------------------------------------

namespace {

Histogram histogram_of(const Array& x, std::vector<double> edges, bool uniform, const std::optional<Array>& weights,
                       bool density) {
  if (is_complex(x.dtype()))
    throw TypeError("bad-dtype", "histogram: complex input is not supported (got " +
                                     std::string(dtype_name(x.dtype())) + ")");
  if (edges.size() < 2) throw ValueError("bad-bins", "histogram: at least two bin edges are needed");
  for (std::size_t i = 1; i < edges.size(); ++i)
    if (!(edges[i] >= edges[i - 1]))
      throw ValueError("bad-bins", "histogram: bin edges must increase monotonically");
  Array aligned;
  if (weights) {
    if (weights->shape() != x.shape())
      throw ValueError("shape-mismatch", "histogram: weights of shape " + shape_str(weights->shape()) +
                                             " differ from the array's " + shape_str(x.shape()));
    aligned = weights->chunks() == x.chunks() ? *weights : rechunk(*weights, x.chunks());
  }
  const auto bins = static_cast<std::int64_t>(edges.size()) - 1;
  // Block counts form a [1, grid..., bins] partials array; its grid axes are summed.
  std::vector<int> grid_axes(x.ndim());
  for (int d = 0; d < x.ndim(); ++d) grid_axes[d] = d;
  Reduction r;
  r.name = "histogram";
  r.axes = grid_axes;
  r.split_every = split_every_of({}, "histogram");
  r.spec.op = ReduceOp::sum;
  r.spec.out = weights ? weights->dtype() : DType::int64;
  r.spec.input = r.spec.out;
  r.spec.reduced = axis_mask(grid_axes);
  r.spec.ndim = x.ndim() + 1;
  const kernels::HistogramSpec hspec{uniform};
  Chunks chunks{{1}};
  Shape shape{1};
  for (const auto& c : x.chunks()) {
    chunks.push_back(std::vector<std::int64_t>(c.size(), 1));
    shape.push_back(static_cast<std::int64_t>(c.size()));
  }
  chunks.push_back({bins});
  shape.push_back(bins);
  const Token token = detail::op_token("histogram", x, aligned.empty_handle() ? Token{} : aligned.token(), edges,
                                       uniform);
  const Array parts = make_array(
      detail::ArrayMeta{"histogram", token, shape, chunks, r.spec.out},
      [x, aligned, hspec, edges](std::span<const std::int64_t> index, Key key) {
        const BlockIndex at(index.begin() + 1, index.end() - 1);
        if (aligned.empty_handle())
          return weft::detail::make_call_task(std::move(key), false, &kernels::histogram_partial, hspec, edges,
                                              x.block(at));
        return weft::detail::make_call_task(std::move(key), false, &kernels::histogram_weighted_partial, hspec, edges,
                                            x.block(at), aligned.block(at));
      });
  Array counts = aggregate(combine_tree(parts, r), r, Shape(shape.begin() + 1, shape.end()));
  NDArray edge_array = NDArray::from(edges, Shape{bins + 1});
  if (density) {
    const std::string name = "histogram-density";
    counts = make_array(detail::ArrayMeta{name, detail::op_token(name, counts), {bins}, {{bins}}, DType::float64},
                        [counts, edges](std::span<const std::int64_t>, Key key) {
                          return weft::detail::make_call_task(std::move(key), false, &kernels::histogram_density,
                                                              edges, counts.block({0}));
                        });
  }
  return {counts, std::move(edge_array)};
}

}  // namespace

Histogram histogram(const Array& x, std::int64_t bins, std::pair<double, double> range,
                    const std::optional<Array>& weights, bool density) {
  if (bins < 1) throw ValueError("bad-bins", "histogram: bins must be at least 1, got " + std::to_string(bins));
  auto [lo, hi] = range;
  if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi))
    throw ValueError("bad-bins", "histogram: the range must be finite with lo <= hi, got (" + std::to_string(lo) +
                                     ", " + std::to_string(hi) + ")");
  if (lo == hi) {  // NumPy widens an empty range
    lo -= 0.5;
    hi += 0.5;
  }
  // np.linspace's values: i * step + lo, the last exactly hi.
  std::vector<double> edges(bins + 1);
  const double step = (hi - lo) / static_cast<double>(bins);
  for (std::int64_t i = 0; i <= bins; ++i) edges[i] = static_cast<double>(i) * step + lo;
  edges[bins] = hi;
  return histogram_of(x, std::move(edges), true, weights, density);
}

Histogram histogram(const Array& x, std::vector<double> edges, const std::optional<Array>& weights, bool density) {
  return histogram_of(x, std::move(edges), false, weights, density);
}

// --- Array's methods -------------------------------------------------------------

Array Array::sum(Axes axis, const ReduceOptions& options) const { return array::sum(*this, std::move(axis), options); }
Array Array::prod(Axes axis, const ReduceOptions& options) const {
  return array::prod(*this, std::move(axis), options);
}
Array Array::mean(Axes axis, const ReduceOptions& options) const {
  return array::mean(*this, std::move(axis), options);
}
Array Array::var(Axes axis, int ddof, const ReduceOptions& options) const {
  return array::var(*this, std::move(axis), ddof, options);
}
Array Array::std(Axes axis, int ddof, const ReduceOptions& options) const {
  return array::std(*this, std::move(axis), ddof, options);
}
Array Array::min(Axes axis, const ReduceOptions& options) const { return array::min(*this, std::move(axis), options); }
Array Array::max(Axes axis, const ReduceOptions& options) const { return array::max(*this, std::move(axis), options); }
Array Array::argmin(std::optional<int> axis) const { return array::argmin(*this, axis); }
Array Array::argmax(std::optional<int> axis) const { return array::argmax(*this, axis); }
Array Array::any(Axes axis, const ReduceOptions& options) const { return array::any(*this, std::move(axis), options); }
Array Array::all(Axes axis, const ReduceOptions& options) const { return array::all(*this, std::move(axis), options); }
Array Array::cumsum(std::optional<int> axis, std::optional<DType> dtype) const {
  return array::cumsum(*this, axis, dtype);
}
Array Array::cumprod(std::optional<int> axis, std::optional<DType> dtype) const {
  return array::cumprod(*this, axis, dtype);
}

}  // namespace weft::array
