// weft/array/array.hpp - weft::array::Array, a lazy chunked n-d array (dask.array.Array).
//
// An Array is shape, chunks, dtype and a pointer to the *layer* that makes
// its blocks: each operation adds one layer object, which makes the task of
// any block only when asked (at compute time), so building an expression over
// 100k blocks costs one object per operation. Blocks are NDArrays; the task
// of block (i, j) of an array named "add-<token>" has the key
// ('add-<token>', i, j), as in Dask.
//
// Array is a collection (weft/compute.hpp): weft::compute(a, b) runs both in
// one pass and returns their NDArrays; persist() keeps the blocks in memory.
// Every operation checks shapes, axes, chunks and dtypes when it is called,
// before any task exists, and throws ValueError/TypeError naming the
// operation and the problem.
//
// The operations live in their own headers (creation, elementwise,
// reductions, shape, indexing, rechunk, blockwise, linalg, random);
// weft/array.hpp includes them all. The methods below mirror dask.array's
// and call those functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "weft/array/chunks.hpp"
#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/compute.hpp"
#include "weft/delayed.hpp"
#include "weft/graph.hpp"
#include "weft/key.hpp"
#include "weft/task.hpp"
#include "weft/tokenize.hpp"

namespace weft::array {

class Array;
struct IndexItem;

/// An `axis=` argument: None (all axes), one axis, or several. Negative
/// axes count from the end.
class Axes {
 public:
  Axes() = default;                                          // None
  Axes(int axis) : axes_{axis}, all_(false) {}               // NOLINT
  Axes(std::initializer_list<int> axes) : axes_(axes), all_(false) {}  // NOLINT
  Axes(std::vector<int> axes) : axes_(std::move(axes)), all_(false) {}  // NOLINT
  bool all() const noexcept { return all_; }
  const std::vector<int>& list() const noexcept { return axes_; }
  /// The axes for an ndim-dimensional operand, non-negative and sorted
  /// (all of them for None). ValueError "value.bad-axis" naming `op` for an
  /// axis out of range or given twice.
  std::vector<int> resolve(int ndim, std::string_view op) const;

 private:
  std::vector<int> axes_;
  bool all_ = true;
};

/// Options of reductions (dask's dtype=, keepdims=, split_every=).
struct ReduceOptions {
  bool keepdims = false;
  std::optional<DType> dtype{};      ///< accumulate and return this dtype
  std::optional<int> split_every{};  ///< blocks combined per tree node (default: config array.split-every)
};

namespace detail {

/// What every array knows about itself.
struct ArrayMeta {
  std::string name;   ///< "add", "random", ...
  Token token;        ///< the array's key is name-token
  Shape shape;
  Chunks chunks;
  DType dtype = DType::float64;
};

/// One operation's node in an array's graph. It makes the task of a block
/// on demand (make_task) and remembers it, so that a block another layer
/// asks for twice is one task.
class Layer {
 public:
  explicit Layer(ArrayMeta meta);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const ArrayMeta& meta() const noexcept { return meta_; }
  /// The key of block `index`: (name-token, i, j, ...).
  Key key(std::span<const std::int64_t> index) const;
  /// The task that makes block `index` (one per block, made on first use).
  /// ValueError "value.bad-index" for an index outside the block grid.
  TaskPtr task(std::span<const std::int64_t> index) const;

 protected:
  virtual TaskPtr make_task(std::span<const std::int64_t> index, Key key) const = 0;

 private:
  ArrayMeta meta_;
  const weft::detail::InternedName* name_;
  mutable std::mutex mutex_;
  mutable std::vector<TaskPtr> tasks_;  // by flat block index; sized on first use
};

/// A layer whose blocks a function makes: most operations are one of these.
/// `make(index, key)` returns the task for a block; it usually captures the
/// input Arrays and calls weft::detail::make_call_task(key, false, kernel,
/// spec, input.block(...)) with a kernel function pointer and a spec that
/// can travel to other ranks (see weft/detail/task_wire.hpp).
using BlockMaker = std::function<TaskPtr(std::span<const std::int64_t> index, Key key)>;

/// The token of an operation: its name, its parameters and its inputs.
template <class... P>
Token op_token(std::string_view op, const P&... params) {
  return tokenize(op, params...);
}

}  // namespace detail

/// Builds an array from its metadata and a function making each block's task.
Array make_array(detail::ArrayMeta meta, detail::BlockMaker make);
/// Builds an array from a layer subclass.
Array make_array(std::shared_ptr<const detail::Layer> layer);

class Array {
 public:
  /// An array with no layer; every use but assignment throws ValueError
  /// "value.empty-array".
  Array() = default;
  explicit Array(std::shared_ptr<const detail::Layer> layer) : layer_(std::move(layer)) {}

  const Shape& shape() const { return meta().shape; }
  int ndim() const { return static_cast<int>(meta().shape.size()); }
  std::int64_t size() const { return shape_size(meta().shape); }
  DType dtype() const { return meta().dtype; }
  std::size_t itemsize() const { return array::itemsize(meta().dtype); }
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * itemsize(); }
  const Chunks& chunks() const { return meta().chunks; }
  std::vector<std::int64_t> numblocks() const { return array::numblocks(meta().chunks); }
  std::int64_t npartitions() const;
  /// "add-<token>": the first part of every block's key.
  std::string name() const;
  const Token& token() const { return meta().token; }
  bool empty_handle() const noexcept { return layer_ == nullptr; }

  /// The key and task of one block.
  Key block_key(std::span<const std::int64_t> index) const { return layer().key(index); }
  TaskPtr block_task(std::span<const std::int64_t> index) const { return layer().task(index); }
  /// One block as a Delayed (dask's x.to_delayed()[i, j]).
  Delayed<NDArray> block(std::span<const std::int64_t> index) const {
    return Delayed<NDArray>(block_task(index));
  }
  Delayed<NDArray> block(std::initializer_list<std::int64_t> index) const {
    return block(std::span<const std::int64_t>(index.begin(), index.size()));
  }

  /// Runs the graph and assembles the result.
  NDArray compute(const ComputeOptions& options = {}) const;
  /// Runs the graph and returns an array whose blocks are held in memory.
  Array persist(const ComputeOptions& options = {}) const;
  /// The tasks of all blocks, as a Graph.
  Graph graph() const;

  const detail::Layer& layer() const;
  const std::shared_ptr<const detail::Layer>& layer_ptr() const noexcept { return layer_; }

  // --- dask.array.Array's methods (defined with the functions they call) --
  // Reductions (reductions.hpp).
  Array sum(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array prod(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array mean(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array var(Axes axis = {}, int ddof = 0, const ReduceOptions& options = {}) const;
  Array std(Axes axis = {}, int ddof = 0, const ReduceOptions& options = {}) const;
  Array min(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array max(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array argmin(std::optional<int> axis = std::nullopt) const;
  Array argmax(std::optional<int> axis = std::nullopt) const;
  Array any(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array all(Axes axis = {}, const ReduceOptions& options = {}) const;
  Array cumsum(std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt) const;
  Array cumprod(std::optional<int> axis = std::nullopt, std::optional<DType> dtype = std::nullopt) const;
  // Shape (shape.hpp).
  Array T() const;
  Array transpose(std::vector<int> axes = {}) const;
  Array reshape(Shape shape) const;
  Array ravel() const;
  Array squeeze(Axes axis = {}) const;
  Array swapaxes(int a, int b) const;
  // Elementwise (elementwise.hpp).
  Array astype(DType dtype) const;
  Array round(int decimals = 0) const;
  Array clip(std::optional<Scalar> lo, std::optional<Scalar> hi) const;
  Array conj() const;
  Array real() const;
  Array imag() const;
  // Indexing (indexing.hpp): x[{slice(0, 10), 3, newaxis}].
  Array operator[](std::initializer_list<IndexItem> index) const;
  Array operator[](const std::vector<IndexItem>& index) const;
  // Rechunk (rechunk.hpp).
  Array rechunk(const ChunkSpec& chunks) const;
  // Linear algebra (linalg.hpp).
  Array dot(const Array& other) const;

 private:
  const detail::ArrayMeta& meta() const { return layer().meta(); }
  std::shared_ptr<const detail::Layer> layer_;
};

/// One Delayed per block, in C-order of the block grid (x.to_delayed().ravel()).
std::vector<Delayed<NDArray>> to_delayed(const Array& x);
/// An array of one block computed by `value` (dask.array.from_delayed):
/// shape and dtype must be what the value will be (checked when it runs:
/// ValueError "value.block-mismatch").
Array from_delayed(const Delayed<NDArray>& value, Shape shape, DType dtype);
/// Computes `x` into `target` (shape must match; dtype is converted), each
/// block copied in as its task finishes and then freed, so the whole array
/// never exists twice (da.store). As with da.store, a run that fails leaves
/// the blocks already done written.
void store(const Array& x, NDArray& target, const ComputeOptions& options = {});
/// Computes several arrays in one pass into their targets.
void store(std::span<const Array> sources, std::span<NDArray> targets, const ComputeOptions& options = {});
/// Assembles block results (in C-order of the grid of `chunks`) into one
/// array; block sizes are taken from the blocks, so unknown chunks work.
NDArray concatenate_blocks(const Chunks& chunks, std::span<const NDArray* const> blocks, DType dtype);

namespace detail {
/// Where each block of known `chunks` goes in a whole array: place() copies
/// block i (C order of the grid) into its region of `target`, from any
/// thread (distinct blocks concurrently), after checking its shape.
class BlockPlacement {
 public:
  explicit BlockPlacement(const Chunks& chunks);
  void place(NDArray& target, std::size_t i, const NDArray& block) const;

 private:
  std::vector<std::vector<std::int64_t>> offsets_;  // per axis, block starts and the end
  std::vector<std::int64_t> grid_strides_;          // of the block grid, C order
};
}  // namespace detail

}  // namespace weft::array

namespace weft {

template <>
struct CollectionTraits<array::Array> {
  using Result = array::NDArray;
  static void roots(const array::Array& x, std::vector<TaskRef>& out);
  static array::NDArray finalize(const array::Array& x, std::span<Value> values);
  static array::Array rebuild(const array::Array& x, std::span<TaskPtr> held);

  /// The result array, made before the run, with each block copied in as its
  /// task finishes (the copies overlap the rest of the run, and each block is
  /// freed at once). One block is kept as it is, without a copy.
  class Assembly {
   public:
    explicit Assembly(const array::Array& x);
    void place(std::size_t block, const Value& value);
    array::NDArray finish();

   private:
    array::DType dtype_;
    bool one_block_;
    array::NDArray out_;
    array::detail::BlockPlacement placement_;
  };
  /// nullopt for chunks of unknown size or an empty grid: finalize() then.
  static std::optional<Assembly> assemble(const array::Array& x);
};

template <>
struct Tokenizer<array::Array> {
  static void apply(Hasher& h, const array::Array& x) {
    tokenize_into(h, x.layer().meta().name);
    tokenize_into(h, x.token());
  }
};

}  // namespace weft
