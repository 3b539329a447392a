// weft/array/creation.hpp - arrays made from nothing, from parameters, or
// from memory: dask.array's zeros, ones, full, empty, the *_like functions,
// arange, linspace, eye, diag, indices, meshgrid, fromfunction and
// from_array, with NumPy's semantics per function.
//
// Every function takes `chunks` (a ChunkSpec, "auto" by default, normalised
// as dask.array.core.normalize_chunks does) and, where NumPy has one, a
// dtype. Arguments are checked when the function is called (ValueError or
// TypeError naming the function), before any task exists.
//
// Functions passed to fromfunction and from_block_function run inside tasks,
// which may travel to other ranks of the same binary: they must be plain
// function pointers (a captureless lambda converts to one), never closures.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "weft/array/array.hpp"

namespace weft::array {

/// Uninitialised blocks (np.empty): only the shape and dtype are defined.
Array empty(Shape shape, DType dtype = DType::float64, const ChunkSpec& chunks = {});
/// Blocks of zeros.
Array zeros(Shape shape, DType dtype = DType::float64, const ChunkSpec& chunks = {});
/// Blocks of ones.
Array ones(Shape shape, DType dtype = DType::float64, const ChunkSpec& chunks = {});
/// Blocks filled with `fill_value`. The dtype defaults to the fill's, as
/// np.full's: a number written in C++ gives its kind's default type (7 ->
/// int64, 2.5 -> float64, true -> bool), a non-weak Scalar its own dtype.
Array full(Shape shape, const Scalar& fill_value, std::optional<DType> dtype = std::nullopt,
           const ChunkSpec& chunks = {});

/// The *_like functions: x's shape, dtype and chunks unless given. A `shape`
/// other than x's takes chunks "auto" unless `chunks` is given (dask's rule).
Array empty_like(const Array& x, std::optional<DType> dtype = std::nullopt,
                 std::optional<ChunkSpec> chunks = std::nullopt, std::optional<Shape> shape = std::nullopt);
Array zeros_like(const Array& x, std::optional<DType> dtype = std::nullopt,
                 std::optional<ChunkSpec> chunks = std::nullopt, std::optional<Shape> shape = std::nullopt);
Array ones_like(const Array& x, std::optional<DType> dtype = std::nullopt,
                std::optional<ChunkSpec> chunks = std::nullopt, std::optional<Shape> shape = std::nullopt);
Array full_like(const Array& x, const Scalar& fill_value, std::optional<DType> dtype = std::nullopt,
                std::optional<ChunkSpec> chunks = std::nullopt, std::optional<Shape> shape = std::nullopt);

/// np.arange(start, stop, step): ceil((stop - start) / step) values (none
/// when that is negative), element i being start + i * delta where delta is
/// (start + step) - start in the result dtype, exactly as NumPy fills it.
/// The dtype defaults to int64 when start, stop and step are integers (or
/// bool) and to float64 when any is a float. ValueError "value.zero-step"
/// for step 0; TypeError "type.arange-complex" for a complex start, stop or
/// step; TypeError "type.arange-dtype" for a bool dtype and more than 2 values.
Array arange(const Scalar& start, const Scalar& stop, const Scalar& step = 1,
             std::optional<DType> dtype = std::nullopt, const ChunkSpec& chunks = {});
/// np.arange(stop): 0, 1, ..., stop - 1.
Array arange(const Scalar& stop);

/// np.linspace: `num` values from start to stop (stop included when
/// `endpoint`), computed with NumPy's formula (i * step + start, the last one
/// set to stop; integer dtypes take the floor) so that values match. The
/// computation is in float64, or complex128 when start or stop is complex;
/// the dtype defaults to that. ValueError "value.bad-num" for num < 0.
Array linspace(const Scalar& start, const Scalar& stop, std::int64_t num = 50, bool endpoint = true,
               std::optional<DType> dtype = std::nullopt, const ChunkSpec& chunks = {});

/// np.eye: N x M (M defaults to N) with ones on diagonal k (k > 0 above the
/// main diagonal, k < 0 below).
Array eye(std::int64_t N, std::optional<std::int64_t> M = std::nullopt, std::int64_t k = 0,
          DType dtype = DType::float64, const ChunkSpec& chunks = {});

/// np.diag: a 1-d v gives the square 2-d array with v on diagonal k (its
/// blocks follow v's chunks, plus blocks of |k| zero rows or columns); a 2-d
/// v gives its diagonal k as a 1-d array (blocks cut where v's blocks are).
/// ValueError "value.bad-ndim" for other dimensions.
Array diag(const Array& v, std::int64_t k = 0);

/// np.indices: shape (len(dimensions), *dimensions); block (a, ...) holds the
/// index along axis a. Axis 0 has blocks of 1; `chunks` cut the others.
Array indices(Shape dimensions, DType dtype = DType::int64, const ChunkSpec& chunks = {});

/// np.meshgrid of 1-d arrays: one array per input, each the input broadcast
/// along the other axes (blocks are broadcast views of the input's blocks, as
/// dask's are). `indexing` "xy" (Cartesian: the first two axes swapped) or
/// "ij" (matrix); ValueError "value.bad-indexing" otherwise,
/// "value.bad-ndim" for an input that is not 1-d.
std::vector<Array> meshgrid(const std::vector<Array>& arrays, std::string_view indexing = "xy");

/// What fromfunction calls per block: one index array per axis, each of the
/// block's shape and of fromfunction's dtype, holding the coordinates of the
/// block's elements in the whole array (as np.fromfunction's function gets
/// them). It must return an array of the block's shape (ValueError
/// "value.block-mismatch" when it runs otherwise).
using IndexFunction = NDArray (*)(const std::vector<NDArray>& indices);

/// np.fromfunction, block by block. The result's dtype is that of `f` called
/// once on empty index arrays while the array is built (dask's meta); each
/// block's result is converted to it.
Array fromfunction(IndexFunction f, Shape shape, DType dtype = DType::float64, const ChunkSpec& chunks = {});

/// An Array of `x`'s elements (da.from_array). Blocks are views of x, not
/// copies: x's memory (a caller's buffer wrapped with NDArray::wrap, say)
/// must stay alive and unchanged until the array's last compute. Each block
/// is a task holding its view; on a distributed run the view's elements are
/// sent with the task. The name is "array-<token>": the token hashes x's
/// elements when x holds at most 1 MiB (as dask's tokenize, so equal small
/// arrays share keys), and is fresh per call above that, since hashing a
/// large array to make a key would cost as much as reading it.
Array from_array(const NDArray& x, const ChunkSpec& chunks = {});

/// An Array of a vector's elements in C order, taken over without a copy.
/// ValueError "value.size-mismatch" when its size is not shape's.
template <Element T>
  requires(!std::is_same_v<T, bool>)
Array from_array(std::vector<T> data, Shape shape, const ChunkSpec& chunks = {});

/// What from_block_function calls per block: the block's index in the block
/// grid and its shape; it must return an array of that shape (ValueError
/// "value.block-mismatch" when it runs otherwise), which is converted to the
/// declared dtype.
using BlockFunction = NDArray (*)(std::span<const std::int64_t> block_index, const Shape& block_shape);

/// An Array whose blocks `f` makes, one call per block, in the task of that
/// block (for data produced or read block by block). Named
/// "from-block-function-<token>" with a token of f's address, shape, dtype
/// and chunks.
Array from_block_function(BlockFunction f, Shape shape, DType dtype, const ChunkSpec& chunks = {});

namespace detail {
/// from_array(vector) after the vector is owned: checks the size and wraps it.
Array from_owned_buffer(std::shared_ptr<void> owner, void* data, std::size_t size, DType dtype, Shape shape,
                        const ChunkSpec& chunks);
}  // namespace detail

template <Element T>
  requires(!std::is_same_v<T, bool>)
Array from_array(std::vector<T> data, Shape shape, const ChunkSpec& chunks) {
  auto owner = std::make_shared<std::vector<T>>(std::move(data));
  void* elements = owner->data();
  const std::size_t size = owner->size();
  return detail::from_owned_buffer(std::move(owner), elements, size, dtype_of<T>, std::move(shape), chunks);
}

}  // namespace weft::array
