// src/array/blockwise.cpp - blockwise and map_blocks: checks, chunks and the
// layer; the typed call of the user's function is in blockwise.hpp.
#include "weft/array/blockwise.hpp"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include "weft/array/rechunk.hpp"
#include "weft/error.hpp"

namespace weft::array {

std::vector<std::int64_t> ChunkAdjust::apply(std::span<const std::int64_t> old_sizes, std::string_view op,
                                             char index) const {
  std::vector<std::int64_t> out;
  if (fn_) {
    for (std::int64_t n : old_sizes) out.push_back(fn_(n));
  } else if (sizes_.size() == 1) {
    out.assign(old_sizes.size(), sizes_[0]);
  } else if (sizes_.size() == old_sizes.size()) {
    out = sizes_;
  } else {
    throw ValueError("bad-chunks", std::string(op) + ": index '" + index + "' has " +
                                       std::to_string(old_sizes.size()) + " blocks, but " +
                                       std::to_string(sizes_.size()) + " block sizes were given for it");
  }
  for (std::int64_t n : out)
    if (n < 0)
      throw ValueError("bad-chunks", std::string(op) + ": block size " + std::to_string(n) + " for index '" +
                                         index + "' is negative");
  return out;
}

namespace detail {

std::vector<std::int64_t> common_blocks(std::span<const std::int64_t> x, std::span<const std::int64_t> y) {
  std::vector<std::int64_t> bounds = block_offsets(x);
  const std::vector<std::int64_t> more = block_offsets(y);
  bounds.insert(bounds.end(), more.begin(), more.end());
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  std::vector<std::int64_t> sizes;
  for (std::size_t i = 1; i < bounds.size(); ++i) sizes.push_back(bounds[i] - bounds[i - 1]);
  if (sizes.empty()) sizes.push_back(0);  // an axis of length 0 is one empty block
  return sizes;
}

namespace {

std::string block_name(const BlockCall& call) {
  return "block " + shape_str(call.info.block_id) + " of " + call.array;
}

[[noreturn]] void notation_error(std::string_view op, const std::string& text) {
  throw ValueError("bad-index-notation", std::string(op) + ": " + text);
}

bool contains(std::string_view s, char c) { return s.find(c) != std::string_view::npos; }

/// The index letters of the inputs, checked, and f's parameters against them.
void check_notation(std::string_view op, const std::string& out_index, const std::vector<BlockwiseInput>& inputs,
                    const BlockwiseOptions& options, std::span<const BlockParam> params) {
  for (std::size_t i = 0; i < out_index.size(); ++i)
    if (out_index.find(out_index[i], i + 1) != std::string::npos)
      notation_error(op, "the output index \"" + out_index + "\" has '" + out_index[i] + "' twice");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const BlockwiseInput& in = inputs[i];
    if (static_cast<int>(in.index.size()) != in.array.ndim())
      notation_error(op, "input " + std::to_string(i) + " has index \"" + in.index + "\" for an array of " +
                             std::to_string(in.array.ndim()) + " dimensions");
    for (std::size_t a = 0; a < in.index.size(); ++a)
      if (!contains(out_index, in.index[a]) && in.index.find(in.index[a], a + 1) != std::string::npos)
        notation_error(op, "input " + std::to_string(i) + " has the contracted index '" + in.index[a] + "' twice");
  }
  for (const auto& [c, sizes] : options.new_axes) {
    if (!contains(out_index, c)) notation_error(op, std::string("new axis '") + c + "' is not in the output index");
    for (const BlockwiseInput& in : inputs)
      if (contains(in.index, c)) notation_error(op, std::string("new axis '") + c + "' is an input's index too");
    if (sizes.empty()) throw ValueError("bad-chunks", std::string(op) + ": new axis '" + c + "' has no blocks");
  }
  for (char c : out_index) {
    const bool known = options.new_axes.contains(c) ||
                       std::any_of(inputs.begin(), inputs.end(), [c](const BlockwiseInput& in) { return contains(in.index, c); });
    if (!known) notation_error(op, std::string("output index '") + c + "' is in no input and not in new_axes");
  }
  for (const auto& entry : options.adjust_chunks)
    if (!contains(out_index, entry.first))
      notation_error(op, std::string("adjust_chunks names '") + entry.first + "', which is not in the output index");

  // f's parameters: BlockInfo first if at all, then one per input.
  const std::size_t skip = !params.empty() && params[0] == BlockParam::info ? 1 : 0;
  const std::size_t arrays = params.size() - skip;
  if (arrays != inputs.size() ||
      std::any_of(params.begin() + static_cast<std::ptrdiff_t>(skip), params.end(),
                  [](BlockParam p) { return p == BlockParam::info; }))
    throw TypeError("bad-block-function", std::string(op) + ": the function takes " + std::to_string(arrays) +
                                              " arrays (and BlockInfo only first), but " +
                                              std::to_string(inputs.size()) + " inputs were given");
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (options.concatenate || params[skip + i] != BlockParam::block) continue;
    for (char c : inputs[i].index)
      if (!contains(out_index, c))
        throw TypeError("bad-block-function",
                        std::string(op) + ": input " + std::to_string(i) + " has the contracted index '" + c +
                            "', so the function receives its blocks as a const std::vector<NDArray>& (or pass "
                            "concatenate = true to receive them as one block)");
  }
}

/// The inputs rechunked so that axes sharing an index have the same blocks;
/// returns each index's length and blocks. Axes of length 1 broadcast.
std::map<char, std::vector<std::int64_t>> align_inputs(std::string_view op, std::vector<BlockwiseInput>& inputs) {
  std::map<char, std::int64_t> length;
  for (const BlockwiseInput& in : inputs) {
    if (has_unknown(in.array.chunks()))
      throw ValueError("unknown-chunks", std::string(op) + ": an input has blocks of unknown size; compute its chunks first");
    for (std::size_t a = 0; a < in.index.size(); ++a) {
      const std::int64_t n = in.array.shape()[a];
      auto [it, fresh] = length.emplace(in.index[a], n);
      if (fresh || n == 1 || n == it->second) continue;
      if (it->second != 1) {
        std::string shapes;
        for (const BlockwiseInput& other : inputs)
          shapes += (shapes.empty() ? "" : ", ") + shape_str(other.array.shape()) + " as \"" + other.index + "\"";
        throw ValueError("shape-mismatch", std::string(op) + ": index '" + in.index[a] + "' has lengths " +
                                               std::to_string(it->second) + " and " + std::to_string(n) +
                                               " in the inputs " + shapes);
      }
      it->second = n;
    }
  }
  // Common blocks over the axes that do not broadcast.
  std::map<char, std::vector<std::int64_t>> blocks;
  for (const BlockwiseInput& in : inputs)
    for (std::size_t a = 0; a < in.index.size(); ++a) {
      const char c = in.index[a];
      if (in.array.shape()[a] != length[c]) continue;
      auto [it, fresh] = blocks.emplace(c, in.array.chunks()[a]);
      if (!fresh && it->second != in.array.chunks()[a]) it->second = common_blocks(it->second, in.array.chunks()[a]);
    }
  for (BlockwiseInput& in : inputs) {
    Chunks chunks = in.array.chunks();
    for (std::size_t a = 0; a < in.index.size(); ++a)
      if (in.array.shape()[a] == length[in.index[a]]) chunks[a] = blocks[in.index[a]];
    if (chunks != in.array.chunks()) in.array = rechunk(in.array, chunks);
  }
  return blocks;
}

/// How one input's blocks are found for an output block.
struct InputPlan {
  std::vector<char> contracted;           ///< its contracted indices, in axis order
  std::vector<std::int64_t> contracted_blocks;  ///< blocks along each
  std::vector<std::int64_t> numblocks;
};

}  // namespace

NDArray single_block(const BlockCall& call, std::size_t i, const std::vector<NDArray>& blocks) {
  if (call.concat_grid.size() <= i || call.concat_grid[i].empty()) return blocks.front();
  Chunks grid;
  for (std::int64_t n : call.concat_grid[i]) grid.emplace_back(static_cast<std::size_t>(n), kUnknown);
  std::vector<const NDArray*> pointers;
  for (const NDArray& b : blocks) pointers.push_back(&b);
  return concatenate_blocks(grid, pointers, blocks.front().dtype());
}

void check_block(const BlockCall& call, const NDArray& out) {
  const Shape& want = call.info.chunk_shape;
  bool fits = out.dtype() == call.info.dtype && out.shape().size() == want.size();
  for (std::size_t a = 0; fits && a < want.size(); ++a) fits = want[a] == kUnknown || want[a] == out.shape()[a];
  if (!fits)
    throw ValueError("block-mismatch", call.op + ": " + block_name(call) + " came back as " +
                                           std::string(dtype_name(out.dtype())) + " of shape " + shape_str(out.shape()) +
                                           ", but " + std::string(dtype_name(call.info.dtype)) + " of shape " +
                                           shape_str(want) + " was declared (pass the dtype and chunks it makes)");
}

Array make_blockwise(std::string_view op, const std::string& out_index, std::vector<BlockwiseInput> inputs,
                     const BlockwiseOptions& options, std::span<const BlockParam> params, const Token& fn_token,
                     const DTypeInference& infer_dtype, BlockTaskMaker make) {
  for (const BlockwiseInput& in : inputs) static_cast<void>(in.array.layer());  // "value.empty-array"
  check_notation(op, out_index, inputs, options, params);
  std::map<char, std::vector<std::int64_t>> index_blocks = align_inputs(op, inputs);
  for (const auto& [c, sizes] : options.new_axes) index_blocks[c] = sizes;

  detail::ArrayMeta meta;
  meta.name = options.name.empty() ? std::string(op) : options.name;
  for (char c : out_index) {
    std::vector<std::int64_t> sizes = index_blocks.at(c);
    if (auto it = options.adjust_chunks.find(c); it != options.adjust_chunks.end()) sizes = it->second.apply(sizes, op, c);
    std::int64_t length = 0;
    for (std::int64_t n : sizes) length += n;
    meta.shape.push_back(length);
    meta.chunks.push_back(std::move(sizes));
  }

  std::vector<InputPlan> plans;
  std::vector<Token> input_tokens;
  for (const BlockwiseInput& in : inputs) {
    InputPlan plan;
    plan.numblocks = in.array.numblocks();
    for (std::size_t a = 0; a < in.index.size(); ++a)
      if (!contains(out_index, in.index[a])) {
        plan.contracted.push_back(in.index[a]);
        plan.contracted_blocks.push_back(plan.numblocks[a]);
      }
    plans.push_back(std::move(plan));
    input_tokens.push_back(tokenize(in.array, in.index));
  }

  // The call of block `index`, without the output's name (not known yet).
  auto call_of = [op = std::string(op), out_index, inputs, plans, concatenate = options.concatenate](
                     const ArrayMeta& out, std::span<const std::int64_t> index) {
    BlockCall call;
    call.op = op;
    call.info.block_id.assign(index.begin(), index.end());
    call.info.num_chunks = numblocks(out.chunks);
    call.info.chunk_shape = block_shape(out.chunks, index);
    call.info.shape = out.shape;
    call.info.dtype = out.dtype;
    for (std::size_t a = 0; a < index.size(); ++a)
      call.info.location.push_back(block_offsets(out.chunks[a])[static_cast<std::size_t>(index[a])]);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      std::vector<std::int64_t> grid;
      if (concatenate && !plans[i].contracted.empty())
        for (std::size_t a = 0; a < inputs[i].index.size(); ++a)
          grid.push_back(contains(out_index, inputs[i].index[a]) ? 1 : plans[i].numblocks[a]);
      call.concat_grid.push_back(std::move(grid));
    }
    return call;
  };

  if (options.dtype) {
    meta.dtype = *options.dtype;
  } else {
    // dask's meta: f on empty blocks tells the dtype; the first input's
    // dtype when f cannot run on them.
    std::vector<std::vector<NDArray>> empty;
    for (const BlockwiseInput& in : inputs)
      empty.push_back({NDArray(in.array.dtype(), Shape(static_cast<std::size_t>(in.array.ndim()), 0))});
    BlockCall call = call_of(meta, std::vector<std::int64_t>(out_index.size(), 0));
    call.concat_grid.assign(inputs.size(), {});
    try {
      meta.dtype = infer_dtype(call, empty);
    } catch (const std::exception&) {
      meta.dtype = inputs.empty() ? DType::float64 : inputs.front().array.dtype();
    }
  }
  meta.token = detail::op_token(op, fn_token, out_index, input_tokens, options.concatenate, meta.chunks, meta.dtype);

  const std::string array_name = meta.name + "-" + meta.token.hex();
  const ArrayMeta out_meta = meta;
  return make_array(std::move(meta), [out_meta, array_name, out_index, inputs, plans, call_of,
                                      make = std::move(make)](std::span<const std::int64_t> index, Key key) {
    BlockCall call = call_of(out_meta, index);
    call.array = array_name;
    std::vector<std::vector<Delayed<NDArray>>> blocks;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const BlockwiseInput& in = inputs[i];
      const InputPlan& plan = plans[i];
      std::vector<std::int64_t> at(in.index.size());
      for (std::size_t a = 0; a < at.size(); ++a) {
        const std::size_t pos = out_index.find(in.index[a]);
        // A broadcast axis has one block.
        if (pos != std::string::npos) at[a] = plan.numblocks[a] == 1 ? 0 : index[pos];
      }
      // Every combination of the contracted indices' blocks, in C order.
      std::vector<Delayed<NDArray>> list;
      std::vector<std::int64_t> k(plan.contracted.size(), 0);
      for (std::int64_t n = shape_size(plan.contracted_blocks); n > 0; --n) {
        for (std::size_t a = 0, s = 0; a < at.size(); ++a)
          if (s < k.size() && in.index[a] == plan.contracted[s]) at[a] = k[s++];
        list.push_back(in.array.block(at));
        for (std::size_t s = k.size(); s-- > 0;) {
          if (++k[s] < plan.contracted_blocks[s]) break;
          k[s] = 0;
        }
      }
      blocks.push_back(std::move(list));
    }
    return make(std::move(key), std::move(call), std::move(blocks));
  });
}

MapBlocksPlan plan_map_blocks(const std::vector<Array>& arrays, const MapBlocksOptions& options) {
  static constexpr std::string_view kLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  if (arrays.empty()) throw ValueError("no-arrays", "map_blocks: no arrays to map over");
  int ndim = 0;
  for (const Array& x : arrays) ndim = std::max(ndim, x.ndim());
  if (static_cast<std::size_t>(ndim) + options.new_axis.size() > kLetters.size())
    notation_error("map_blocks", "too many dimensions");

  MapBlocksPlan plan;
  // Arrays align at their last axes, as in broadcasting.
  for (const Array& x : arrays)
    plan.inputs.push_back({x, std::string(kLetters.substr(static_cast<std::size_t>(ndim - x.ndim()),
                                                          static_cast<std::size_t>(x.ndim())))});
  std::vector<int> dropped;
  for (int axis : options.drop_axis) {
    if (axis < -ndim || axis >= ndim)
      throw ValueError("bad-axis", "map_blocks: drop_axis " + std::to_string(axis) + " is out of bounds for " +
                                       std::to_string(ndim) + " dimensions");
    dropped.push_back(axis < 0 ? axis + ndim : axis);
  }
  for (int a = 0; a < ndim; ++a)
    if (std::find(dropped.begin(), dropped.end(), a) == dropped.end()) plan.out_index += kLetters[static_cast<std::size_t>(a)];

  const int out_ndim = static_cast<int>(plan.out_index.size() + options.new_axis.size());
  std::vector<int> added;
  for (int axis : options.new_axis) {
    if (axis < -out_ndim || axis >= out_ndim)
      throw ValueError("bad-axis", "map_blocks: new_axis " + std::to_string(axis) + " is out of bounds for " +
                                       std::to_string(out_ndim) + " output dimensions");
    added.push_back(axis < 0 ? axis + out_ndim : axis);
  }
  std::sort(added.begin(), added.end());
  if (std::adjacent_find(added.begin(), added.end()) != added.end())
    throw ValueError("bad-axis", "map_blocks: new_axis names an axis twice");
  if (options.chunks && static_cast<int>(options.chunks->size()) != out_ndim)
    throw ValueError("bad-chunks", "map_blocks: chunks for " + std::to_string(options.chunks->size()) +
                                       " axes, but the result has " + std::to_string(out_ndim));
  for (std::size_t j = 0; j < added.size(); ++j) {
    const char c = kLetters[static_cast<std::size_t>(ndim) + j];
    plan.out_index.insert(static_cast<std::size_t>(added[j]), 1, c);
    plan.options.new_axes[c] = options.chunks ? (*options.chunks)[static_cast<std::size_t>(added[j])]
                                              : std::vector<std::int64_t>{1};
  }
  if (options.chunks)
    for (std::size_t a = 0; a < plan.out_index.size(); ++a)
      if (!plan.options.new_axes.contains(plan.out_index[a]))
        plan.options.adjust_chunks.emplace(plan.out_index[a], ChunkAdjust((*options.chunks)[a]));
  plan.options.dtype = options.dtype;
  plan.options.concatenate = !dropped.empty();
  plan.options.name = options.name;
  return plan;
}

}  // namespace detail
}  // namespace weft::array
