// weft/array/reductions.hpp - reductions, scans and histograms of chunked
// arrays (dask.array's reductions, with NumPy's semantics).
//
// A reduction is three kinds of layer, as in dask's _tree_reduce: a per-block
// *partial* (the block reduced along the reduced axes, kept as size-1 axes),
// a tree of *combine* layers that each merge up to split_every partials along
// the reduced axes (ReduceOptions::split_every, else config array.split-every;
// with n reduced axes about its n-th root along each), and a final
// *aggregate* that merges the last ones and turns them into the result.
// Partials are NDArrays with a leading axis of fields (mean: count and sum;
// var/std/moment: count, mean and the central power sums, merged with Chan's
// and Pebay's formulas), so results equal NumPy's up to rounding whatever the
// chunking and the tree, on every scheduler and rank count. When x was made
// by elementwise operations, the partial tasks evaluate that expression tile
// by tile themselves (all but argmin/argmax), so its blocks never exist:
// (x + x.T() - x.mean(0)).sum() makes one pass over x's blocks.
//
// dtypes follow NumPy: sum/prod of bool and signed integers narrower than
// int64 give int64 (unsigned: uint64); mean/var/std of integers give float64;
// var/std of complex give the real type; argmin/argmax/count_nonzero give
// int64; any/all give bool. The nan* functions skip NaNs (on integers they
// are the plain ones); a slice of only NaNs gives NaN (nanargmin/nanargmax:
// ValueError "value.all-nan-slice" when the task runs). Reducing over no
// elements: sum 0, prod 1, mean/var NaN; min/max/ptp/argmin/argmax throw
// ValueError "value.empty-reduction" when called. Axes out of range or
// repeated throw ValueError "value.bad-axis" when called.
//
// Scans (cumsum, ...) scan each block and add the running totals of the
// blocks before it along the axis (dask's cumreduction).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "weft/array/array.hpp"

namespace weft::array {

Array sum(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array prod(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array nansum(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array nanprod(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array min(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array max(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array nanmin(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array nanmax(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
/// max - min in the input's dtype (TypeError "type.bad-dtype" for bool, as NumPy).
Array ptp(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array any(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array all(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
/// Number of non-zero elements, as int64.
Array count_nonzero(const Array& x, Axes axis = {}, const ReduceOptions& options = {});

Array mean(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
Array nanmean(const Array& x, Axes axis = {}, const ReduceOptions& options = {});
/// Sum of squared deviations / (N - ddof).
Array var(const Array& x, Axes axis = {}, int ddof = 0, const ReduceOptions& options = {});
Array nanvar(const Array& x, Axes axis = {}, int ddof = 0, const ReduceOptions& options = {});
Array std(const Array& x, Axes axis = {}, int ddof = 0, const ReduceOptions& options = {});
Array nanstd(const Array& x, Axes axis = {}, int ddof = 0, const ReduceOptions& options = {});
/// The central moment of `order` (dask.array.moment): sum((x - mean)^order) / (N - ddof).
/// ValueError "value.bad-order" for a negative order.
Array moment(const Array& x, int order, Axes axis = {}, int ddof = 0, const ReduceOptions& options = {});

/// Index of the smallest/largest element (the first on ties; the first NaN
/// if any): along `axis`, or into the flattened array when axis is None.
/// options.dtype must be unset (TypeError "type.bad-dtype").
Array argmin(const Array& x, std::optional<int> axis = std::nullopt, const ReduceOptions& options = {});
Array argmax(const Array& x, std::optional<int> axis = std::nullopt, const ReduceOptions& options = {});
Array nanargmin(const Array& x, std::optional<int> axis = std::nullopt, const ReduceOptions& options = {});
Array nanargmax(const Array& x, std::optional<int> axis = std::nullopt, const ReduceOptions& options = {});

/// np.average: the mean, or with weights sum(x * w) / sum(w). Weights have
/// x's shape, or are 1-d with x.shape[axis] elements for one int axis
/// (ValueError "value.shape-mismatch" otherwise).
Array average(const Array& x, Axes axis = {}, const std::optional<Array>& weights = std::nullopt,
              bool keepdims = false);
/// np.average(..., returned=True): the average and the sum of the weights
/// (the count without weights), the latter broadcast to the average's shape.
std::pair<Array, Array> average_returned(const Array& x, Axes axis = {},
                                         const std::optional<Array>& weights = std::nullopt,
                                         bool keepdims = false);

/// Cumulative sums/products along `axis`, or of the flattened array when axis
/// is None; dtype as sum/prod's unless given.
Array cumsum(const Array& x, std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt);
Array cumprod(const Array& x, std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt);
Array nancumsum(const Array& x, std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt);
Array nancumprod(const Array& x, std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt);

/// What histogram() returns: the counts (one block) and the bin edges.
struct Histogram {
  Array counts;
  NDArray edges;
};
/// np.histogram of all elements with `bins` equal bins over [lo, hi]
/// (dask needs the range up front). Counts are int64, or the weights' dtype
/// with weights (same shape as x), or float64 densities with density.
/// ValueError "value.bad-bins" for bins < 1 or lo > hi; TypeError
/// "type.bad-dtype" for complex input.
Histogram histogram(const Array& x, std::int64_t bins, std::pair<double, double> range,
                    const std::optional<Array>& weights = std::nullopt, bool density = false);
/// With explicit, increasing edges (the last bin includes its right edge).
Histogram histogram(const Array& x, std::vector<double> edges,
                    const std::optional<Array>& weights = std::nullopt, bool density = false);

}  // namespace weft::array
