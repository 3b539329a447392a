// weft/array/linalg.hpp - products of arrays: matmul, dot, tensordot, vdot, outer.
//
// NumPy's semantics per function (result dtype np.result_type of the
// operands; integer and bool products wrap and stay in that dtype, as in
// NumPy). The block algorithm makes one task per output block: it runs the
// products of all the contracted block pairs, accumulating into the block
// (one gemm per pair with beta = 1 for float and complex dtypes, OpenBLAS),
// so a matmul of n x n blocks is n^2 tasks of n gemms each, without a tree
// of partial sums. Contracted axes must be chunked alike in both operands,
// as must broadcast batch axes of matmul; they are rechunked to a common
// chunking when they are not (as dask.array does).
//
// Blocks that are transposed views go to BLAS as transposed matrices, not
// copies. Inside a task of the threads scheduler BLAS runs single-threaded
// (weft runs the blocks in parallel); on the sync scheduler it uses its own
// threads.
#pragma once

#include <vector>

#include "weft/array/array.hpp"

namespace weft::array {

/// np.matmul: the last two axes are matrices, the others broadcast as a
/// batch; a 1-d operand is a vector (a 1 is prepended to a, appended to b,
/// and removed from the result). ValueError "value.bad-ndim" for a 0-d
/// operand, "value.shape-mismatch" when the contracted lengths differ or the
/// batch axes do not broadcast.
Array matmul(const Array& a, const Array& b);

/// np.dot: a product over the last axis of a and the second-to-last of b
/// (the last when b is 1-d); inner product of 1-d operands; elementwise
/// product when either is 0-d. ValueError "value.shape-mismatch" when the
/// contracted lengths differ.
Array dot(const Array& a, const Array& b);

/// np.tensordot(a, b, axes=n): sums over the last n axes of a and the first
/// n of b. The result's axes are a's remaining axes, then b's.
/// ValueError "value.bad-axis" for n < 0 or larger than either ndim,
/// "value.shape-mismatch" when the summed lengths differ.
Array tensordot(const Array& a, const Array& b, int axes = 2);
/// np.tensordot(a, b, axes=(a_axes, b_axes)): sums over a_axes[i] of a with
/// b_axes[i] of b (negative axes count from the end). ValueError
/// "value.bad-axis" for lists of different lengths, an axis out of range or
/// given twice; "value.shape-mismatch" when paired lengths differ.
Array tensordot(const Array& a, const Array& b, const std::vector<int>& a_axes,
                const std::vector<int>& b_axes);

/// np.vdot for operands of the same shape: the sum of conj(a) * b over all
/// elements, a 0-d array. ValueError "value.shape-mismatch" for other shapes.
Array vdot(const Array& a, const Array& b);

/// np.outer for 1-d operands: out[i, j] = a[i] * b[j]. ValueError
/// "value.bad-ndim" for operands that are not 1-d.
Array outer(const Array& a, const Array& b);

}  // namespace weft::array
