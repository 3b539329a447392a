// weft/array/blockwise.hpp - your own function over blocks: map_blocks and blockwise.
//
// map_blocks(f, x) is the array whose block i is f(block i of x); blockwise
// generalises it with dask's index notation: blockwise(f, "ij", {{x, "ik"},
// {y, "kj"}}) calls f once per output block (i, j) with x's blocks (i, k)
// and y's blocks (k, j) for every k. An index missing from the output is
// contracted: f receives a std::vector<NDArray> of the blocks along it (in
// C order of the contracted block grid), or, with `concatenate`, those
// blocks concatenated into one. Arrays sharing an index are rechunked to a
// common chunking; an axis of length 1 broadcasts against a longer one.
//
// The function f: a function pointer or a lambda (with one, non-template
// call operator) whose parameters are, per input array in order,
// `const NDArray&` (one block) or `const std::vector<NDArray>&` (the blocks
// along the contracted indices), optionally preceded by `const BlockInfo&`
// (dask's block_id / block_info: where the block sits in the output), and
// which returns an NDArray. Tasks travel to other ranks on the distributed
// scheduler, f with them: use a function pointer or a captureless lambda; a
// lambda capturing trivially copyable values (numbers, not pointers or
// references) travels as bytes too (weft/detail/task_wire.hpp). Capturing a
// std::vector or a pointer works on the local schedulers only.
//
// Checks when the array is built, before any task exists: the index
// notation, the shapes along shared indices ("value.shape-mismatch"),
// declared chunks ("value.bad-chunks") and f's parameters against the
// inputs (TypeError "type.bad-block-function"). Without a declared dtype, f
// is called once on empty blocks (dask's meta) to learn it. A block whose
// shape or dtype differs from what was declared fails its task with
// ValueError "value.block-mismatch" naming the block.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weft/array/array.hpp"

namespace weft::array {

/// Where a block sits in the output (dask's block_id and block_info[None]).
struct BlockInfo {
  std::vector<std::int64_t> block_id;    ///< its index in the block grid
  std::vector<std::int64_t> num_chunks;  ///< blocks per axis of the output
  std::vector<std::int64_t> location;    ///< offset of its first element in the output
  Shape chunk_shape;                     ///< its declared shape
  Shape shape;                           ///< the whole output's shape
  DType dtype = DType::float64;          ///< the output's dtype

  template <class Archive>
  void serialize(Archive& ar) {
    ar(block_id, num_chunks, location, chunk_shape, shape, dtype);
  }
};

struct MapBlocksOptions {
  /// The result's dtype; learnt by calling f on empty blocks when not given.
  std::optional<DType> dtype{};
  /// The result's blocks when f changes their shape, one entry per output
  /// axis: one size for every block along it, or a size per block (for a
  /// new axis: its block sizes). Default: the inputs' (1 for new axes).
  std::optional<Chunks> chunks{};
  /// Axes of the inputs that f removes: the blocks along them are
  /// concatenated before f sees them (dask's drop_axis).
  std::vector<int> drop_axis{};
  /// Axes of the result that f adds (dask's new_axis).
  std::vector<int> new_axis{};
  /// The result's name (its keys are name-token); default "map_blocks".
  std::string name{};
};

/// Block sizes along one output index of blockwise (dask's adjust_chunks):
/// one size for every block, a size per block, or a function of the
/// input block's size.
class ChunkAdjust {
 public:
  ChunkAdjust(std::int64_t size) : sizes_{size} {}                       // NOLINT
  ChunkAdjust(int size) : sizes_{size} {}                                // NOLINT
  ChunkAdjust(std::vector<std::int64_t> sizes) : sizes_(std::move(sizes)) {}  // NOLINT
  ChunkAdjust(std::function<std::int64_t(std::int64_t)> fn) : fn_(std::move(fn)) {}  // NOLINT
  /// The new sizes of blocks that had `old_sizes`; ValueError
  /// "value.bad-chunks" naming `op` and `index` for a list of another length
  /// or a negative size.
  std::vector<std::int64_t> apply(std::span<const std::int64_t> old_sizes, std::string_view op, char index) const;

 private:
  std::vector<std::int64_t> sizes_;
  std::function<std::int64_t(std::int64_t)> fn_;
};

struct BlockwiseOptions {
  /// The result's dtype; learnt by calling f on empty blocks when not given.
  std::optional<DType> dtype{};
  /// Indices of the output that no input has, with their block sizes
  /// (dask's new_axes: {'z', {5}} is one block of 5).
  std::map<char, std::vector<std::int64_t>> new_axes{};
  /// Concatenate the blocks along contracted indices (f takes NDArray).
  bool concatenate = false;
  /// New block sizes per output index, when f changes them.
  std::map<char, ChunkAdjust> adjust_chunks{};
  /// The result's name (its keys are name-token); default "blockwise".
  std::string name{};
};

/// An input of blockwise: an array and its index, one letter per axis.
struct BlockwiseInput {
  Array array;
  std::string index;
};

namespace detail {

/// How f receives an input (or where the block sits).
enum class BlockParam : std::uint8_t { block, blocks, info };

template <class P>
constexpr BlockParam block_param() {
  using D = std::remove_cvref_t<P>;
  if constexpr (std::is_same_v<D, NDArray>) return BlockParam::block;
  else if constexpr (std::is_same_v<D, std::vector<NDArray>>) return BlockParam::blocks;
  else if constexpr (std::is_same_v<D, BlockInfo>) return BlockParam::info;
  else static_assert(sizeof(P) == 0, "a block function takes const NDArray&, const std::vector<NDArray>& or const BlockInfo&");
}

/// The parameter list of a block function.
template <class F>
struct BlockFunction : BlockFunction<decltype(&F::operator())> {};
template <class R, class... P>
struct BlockFunction<R (*)(P...)> {
  using Result = R;
  using Params = std::tuple<P...>;
};
template <class R, class... P>
struct BlockFunction<R (*)(P...) noexcept> : BlockFunction<R (*)(P...)> {};
template <class C, class R, class... P>
struct BlockFunction<R (C::*)(P...) const> : BlockFunction<R (*)(P...)> {};
template <class C, class R, class... P>
struct BlockFunction<R (C::*)(P...) const noexcept> : BlockFunction<R (*)(P...)> {};

template <class F>
using BlockParams = typename BlockFunction<F>::Params;

template <class F>
std::vector<BlockParam> block_params() {
  static_assert(std::is_same_v<typename BlockFunction<F>::Result, NDArray>, "a block function returns NDArray");
  return []<std::size_t... I>(std::index_sequence<I...>) {
    return std::vector<BlockParam>{block_param<std::tuple_element_t<I, BlockParams<F>>>()...};
  }(std::make_index_sequence<std::tuple_size_v<BlockParams<F>>>{});
}

/// What the task of one block knows about its call (it travels with the task).
struct BlockCall {
  std::string op;     ///< "map_blocks" or "blockwise", for messages
  std::string array;  ///< the output's name-token, for messages
  BlockInfo info;
  /// Per input: the grid of blocks to concatenate (empty: pass one block or
  /// the list as it is).
  std::vector<std::vector<std::int64_t>> concat_grid;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(op, array, info, concat_grid);
  }
};

/// Input `i`'s blocks as the one block f takes: concatenated, or the only one.
NDArray single_block(const BlockCall& call, std::size_t i, const std::vector<NDArray>& blocks);
/// ValueError "value.block-mismatch" when `out` is not the declared block.
void check_block(const BlockCall& call, const NDArray& out);

template <class P>
decltype(auto) block_argument(const BlockCall& call, std::size_t i, const std::vector<std::vector<NDArray>>& inputs) {
  if constexpr (block_param<P>() == BlockParam::blocks) return (inputs[i]);
  else return single_block(call, i, inputs[i]);
}

/// Calls f with the inputs as its parameters take them.
template <class F>
NDArray call_block_function(const F& f, const BlockInfo& info, const BlockCall& call,
                            const std::vector<std::vector<NDArray>>& inputs) {
  using Params = BlockParams<F>;
  constexpr std::size_t count = std::tuple_size_v<Params>;
  if constexpr (count > 0 && block_param<std::tuple_element_t<0, Params>>() == BlockParam::info) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::invoke(f, info, block_argument<std::tuple_element_t<I + 1, Params>>(call, I, inputs)...);
    }(std::make_index_sequence<count - 1>{});
  } else {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::invoke(f, block_argument<std::tuple_element_t<I, Params>>(call, I, inputs)...);
    }(std::make_index_sequence<count>{});
  }
}

/// The kernel of every block of map_blocks and blockwise.
template <class F>
NDArray run_block_function(const BlockCall& call, const F& f, const std::vector<std::vector<NDArray>>& inputs) {
  NDArray out = call_block_function(f, call.info, call, inputs);
  check_block(call, out);
  return out;
}

/// Makes the task of one block from its call and its inputs' blocks.
using BlockTaskMaker =
    std::function<TaskPtr(Key key, BlockCall call, std::vector<std::vector<Delayed<NDArray>>> inputs)>;

/// Everything blockwise does but the typed call: checks, chunks, the layer.
/// `params` are f's parameters; `infer_dtype(call of block 0, empty
/// inputs)` gives the dtype when options.dtype is not set.
using DTypeInference = std::function<DType(const BlockCall& call, const std::vector<std::vector<NDArray>>& empty)>;
Array make_blockwise(std::string_view op, const std::string& out_index, std::vector<BlockwiseInput> inputs,
                     const BlockwiseOptions& options, std::span<const BlockParam> params, const Token& fn_token,
                     const DTypeInference& infer_dtype, BlockTaskMaker make);

/// map_blocks as blockwise: the output index, the inputs with their
/// indices, and the blockwise options (dask's map_blocks does the same).
struct MapBlocksPlan {
  std::string out_index;
  std::vector<BlockwiseInput> inputs;
  BlockwiseOptions options;
};
MapBlocksPlan plan_map_blocks(const std::vector<Array>& arrays, const MapBlocksOptions& options);

/// The block sizes both chunkings of one axis split at (dask's
/// common_blockdim): every boundary of either.
std::vector<std::int64_t> common_blocks(std::span<const std::int64_t> x, std::span<const std::int64_t> y);

/// A token for a block function: its type, and its value where that is bytes.
template <class F>
Token function_token(const F& f) {
  // Not is_trivially_copyable: asked here, GCC 12 answers it differently
  // later for the same closure type, and the task's decoder fails to build.
  if constexpr (std::is_trivially_copy_constructible_v<F> && std::is_trivially_destructible_v<F>) {
    std::string bytes(sizeof(F), '\0');
    std::memcpy(bytes.data(), &f, sizeof(F));
    return tokenize(std::string_view(typeid(F).name()), bytes);
  } else {
    return tokenize(std::string_view(typeid(F).name()), f);  // random unless F can be hashed
  }
}

template <class F>
Array blockwise_of(std::string_view op, const F& f, const std::string& out_index, std::vector<BlockwiseInput> inputs,
                   const BlockwiseOptions& options) {
  const std::vector<BlockParam> params = block_params<F>();
  auto infer = [&f](const BlockCall& call, const std::vector<std::vector<NDArray>>& empty) {
    return call_block_function(f, call.info, call, empty).dtype();
  };
  return make_blockwise(op, out_index, std::move(inputs), options, params, function_token(f), infer,
                        [f](Key key, BlockCall call, std::vector<std::vector<Delayed<NDArray>>> blocks) {
                          return weft::detail::make_call_task(std::move(key), false, &run_block_function<F>,
                                                              std::move(call), f, std::move(blocks));
                        });
}

}  // namespace detail

/// dask.array.blockwise: f over the blocks of the inputs, with dask's index
/// notation (see the top of this file). `out_index` has one letter per axis
/// of the result; each input's index one letter per axis of its array.
/// ValueError "value.bad-index-notation" for an index of the wrong length, an
/// output letter no input nor new_axes has, or one given twice;
/// "value.shape-mismatch" for axes sharing a letter with different lengths
/// (other than 1); "value.bad-chunks" for adjust_chunks or new_axes that do
/// not fit; TypeError "type.bad-block-function" when f's parameters do not
/// match the inputs (one block for an input with a contracted index needs
/// concatenate).
template <class F>
Array blockwise(F f, const std::string& out_index, std::vector<BlockwiseInput> inputs,
                const BlockwiseOptions& options = {}) {
  return detail::blockwise_of("blockwise", f, out_index, std::move(inputs), options);
}

/// dask.array.map_blocks: f over corresponding blocks of the arrays, which
/// broadcast against each other (aligned at their last axes). ValueError
/// "value.bad-axis" for drop_axis/new_axis out of range, "value.bad-chunks"
/// for chunks of the wrong number of axes or blocks, and the errors of
/// blockwise.
template <class F>
Array map_blocks(F f, const std::vector<Array>& arrays, const MapBlocksOptions& options = {}) {
  detail::MapBlocksPlan plan = detail::plan_map_blocks(arrays, options);
  return detail::blockwise_of("map_blocks", f, plan.out_index, std::move(plan.inputs), plan.options);
}
template <class F>
Array map_blocks(F f, const Array& x, const MapBlocksOptions& options = {}) {
  return map_blocks(std::move(f), std::vector<Array>{x}, options);
}

}  // namespace weft::array
