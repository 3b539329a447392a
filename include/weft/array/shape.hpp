// weft/array/shape.hpp - changing an array's shape and joining arrays
// (dask.array's names, NumPy's semantics).
//
// transpose and its relatives permute the blocks and view each one
// transposed: no element is copied. reshape works block by block as dask's
// reshape_rechunk does: it rechunks x only as much as needed so that every
// block maps onto one block of the result (axes merged into one need whole
// blocks on all but the first; an axis split into several needs blocks of
// whole multiples of the inner ones). squeeze and expand_dims drop or add
// axes of length 1 block by block. concatenate and stack keep the input
// blocks (rechunking only axes on which the inputs' chunks differ) and
// convert them to the common dtype (NumPy's result_type).
#pragma once

#include <cstdint>
#include <vector>

#include "weft/array/array.hpp"

namespace weft::array {

/// np.reshape: one extent may be -1 (inferred). ValueError "value.bad-shape"
/// when the sizes differ, more than one extent is -1 or one is negative;
/// "value.unknown-chunks" when x has chunks of unknown size.
Array reshape(const Array& x, Shape shape);
/// np.ravel: reshape(x, {-1}).
Array ravel(const Array& x);

/// np.transpose: axes[i] is the axis of x that becomes axis i; none given
/// reverses them. ValueError "value.bad-axis" when axes is not a permutation
/// of x's axes (negative axes count from the end).
Array transpose(const Array& x, std::vector<int> axes = {});
/// np.moveaxis: axes `source` move to positions `destination`, the others keep
/// their order. ValueError "value.bad-axis" for an axis out of range or given
/// twice, or lists of different lengths.
Array moveaxis(const Array& x, std::vector<int> source, std::vector<int> destination);
Array moveaxis(const Array& x, int source, int destination);
/// np.swapaxes.
Array swapaxes(const Array& x, int axis1, int axis2);

/// np.squeeze: drops the given axes of length 1 (all of them for None).
/// ValueError "value.bad-axis" for an axis out of range or not of length 1.
Array squeeze(const Array& x, Axes axis = {});
/// np.expand_dims: new axes of length 1 at the given positions of the result.
/// ValueError "value.bad-axis" for a position out of range or given twice.
Array expand_dims(const Array& x, Axes axis);

/// np.concatenate along `axis`. The result's dtype is the inputs' result_type.
/// ValueError "value.no-arrays" for no arrays, "value.bad-axis" for an axis out
/// of range (any axis of 0-d arrays), "value.shape-mismatch" for arrays whose
/// number of axes or extents off `axis` differ, "value.unknown-chunks" for
/// chunks of unknown size off `axis`.
Array concatenate(const std::vector<Array>& arrays, int axis = 0);
/// np.stack: the arrays (of one shape; else "value.shape-mismatch") along a
/// new axis at position `axis` of the result.
Array stack(const std::vector<Array>& arrays, int axis = 0);

/// np.atleast_1d/2d/3d: x with axes of length 1 added (in NumPy's places)
/// up to 1, 2 or 3 axes; x itself when it has that many.
Array atleast_1d(const Array& x);
Array atleast_2d(const Array& x);
Array atleast_3d(const Array& x);

}  // namespace weft::array
