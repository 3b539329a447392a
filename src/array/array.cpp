// src/array/array.cpp - Array, its layers, and turning blocks into results.
#include "weft/array/array.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "weft/error.hpp"

namespace weft::array {

std::vector<int> Axes::resolve(int ndim, std::string_view op) const {
  std::vector<int> out;
  if (all_) {
    for (int a = 0; a < ndim; ++a) out.push_back(a);
    return out;
  }
  for (int axis : axes_) {
    if (axis < -ndim || axis >= ndim)
      throw ValueError("bad-axis", std::string(op) + ": axis " + std::to_string(axis) +
                                       " is out of bounds for an array of dimension " +
                                       std::to_string(ndim));
    const int a = axis < 0 ? axis + ndim : axis;
    if (std::find(out.begin(), out.end(), a) != out.end())
      throw ValueError("bad-axis", std::string(op) + ": axis " + std::to_string(axis) + " is given twice");
    out.push_back(a);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace detail {

Layer::Layer(ArrayMeta meta) : meta_(std::move(meta)) {
  if (meta_.chunks.size() != meta_.shape.size())
    throw ValueError("bad-chunks", meta_.name + ": " + std::to_string(meta_.chunks.size()) +
                                       " chunk axes for a shape of " + shape_str(meta_.shape));
}

Layer::~Layer() = default;

Key Layer::key(std::span<const std::int64_t> index) const {
  return Key(meta_.name, meta_.token, std::vector<std::int64_t>(index.begin(), index.end()));
}

TaskPtr Layer::task(std::span<const std::int64_t> index) const {
  const std::vector<std::int64_t> grid = numblocks(meta_.chunks);
  if (index.size() != grid.size())
    throw ValueError("bad-index", meta_.name + ": block index of " + std::to_string(index.size()) +
                                      " axes for an array of " + std::to_string(grid.size()));
  std::size_t flat = 0;
  for (std::size_t a = 0; a < grid.size(); ++a) {
    if (index[a] < 0 || index[a] >= grid[a])
      throw ValueError("bad-index", meta_.name + ": block " + std::to_string(index[a]) + " along axis " +
                                        std::to_string(a) + " is outside the " +
                                        std::to_string(grid[a]) + " blocks there");
    flat = flat * static_cast<std::size_t>(grid[a]) + static_cast<std::size_t>(index[a]);
  }
  {
    std::lock_guard lock(mutex_);
    if (tasks_.empty()) tasks_.resize(static_cast<std::size_t>(shape_size(grid)));
    if (tasks_[flat]) return tasks_[flat];
  }
  // Made without the lock: making a block asks other layers for theirs.
  TaskPtr made = make_task(index, key(index));
  std::lock_guard lock(mutex_);
  if (!tasks_[flat]) tasks_[flat] = std::move(made);
  return tasks_[flat];
}

namespace {

class FunctionLayer final : public Layer {
 public:
  FunctionLayer(ArrayMeta meta, BlockMaker make) : Layer(std::move(meta)), make_(std::move(make)) {}

 protected:
  TaskPtr make_task(std::span<const std::int64_t> index, Key key) const override {
    return make_(index, std::move(key));
  }

 private:
  BlockMaker make_;
};

// Persisted blocks (persist): tasks holding their results under the same
// keys (the values here, futures for them on the cluster's workers).
class PersistedLayer final : public Layer {
 public:
  PersistedLayer(ArrayMeta meta, std::vector<TaskPtr> blocks)
      : Layer(std::move(meta)), blocks_(std::move(blocks)) {}

 protected:
  TaskPtr make_task(std::span<const std::int64_t> index, Key) const override {
    const std::vector<std::int64_t> grid = numblocks(meta().chunks);
    std::size_t flat = 0;
    for (std::size_t a = 0; a < grid.size(); ++a)
      flat = flat * static_cast<std::size_t>(grid[a]) + static_cast<std::size_t>(index[a]);
    return blocks_[flat];
  }

 private:
  std::vector<TaskPtr> blocks_;
};

}  // namespace
}  // namespace detail

Array make_array(detail::ArrayMeta meta, detail::BlockMaker make) {
  return Array(std::make_shared<detail::FunctionLayer>(std::move(meta), std::move(make)));
}

Array make_array(std::shared_ptr<const detail::Layer> layer) { return Array(std::move(layer)); }

namespace {

// Calls f(index) for every block index of `grid`, in C order.
template <class F>
void for_each_block(std::span<const std::int64_t> grid, F&& f) {
  std::vector<std::int64_t> index(grid.size(), 0);
  if (shape_size(grid) == 0) return;
  while (true) {
    f(std::span<const std::int64_t>(index));
    int a = static_cast<int>(grid.size()) - 1;
    while (a >= 0 && ++index[static_cast<std::size_t>(a)] == grid[static_cast<std::size_t>(a)])
      index[static_cast<std::size_t>(a--)] = 0;
    if (a < 0) return;
  }
}

// What from_delayed checks a block against when it runs.
struct BlockSpec {
  Shape shape;
  DType dtype;
  template <class A>
  void serialize(A& a) {
    a(shape, dtype);
  }
};

NDArray checked_block(const BlockSpec& spec, const NDArray& block) {
  if (block.shape() != spec.shape || block.dtype() != spec.dtype)
    throw ValueError("block-mismatch", "from_delayed: the value is " +
                                           std::string(dtype_name(block.dtype())) + shape_str(block.shape()) +
                                           ", declared " + std::string(dtype_name(spec.dtype)) +
                                           shape_str(spec.shape));
  return block;
}

}  // namespace

std::int64_t Array::npartitions() const { return shape_size(numblocks()); }

std::string Array::name() const { return meta().name + "-" + meta().token.hex(); }

const detail::Layer& Array::layer() const {
  if (!layer_) throw ValueError("empty-array", "this Array was default-constructed and has no data");
  return *layer_;
}

NDArray Array::compute(const ComputeOptions& options) const {
  return std::get<0>(weft::compute(options, *this));
}

Array Array::persist(const ComputeOptions& options) const {
  return std::get<0>(weft::persist(options, *this));
}

Graph Array::graph() const { return graph_of(*this); }

std::vector<Delayed<NDArray>> to_delayed(const Array& x) {
  std::vector<Delayed<NDArray>> out;
  const std::vector<std::int64_t> grid = x.numblocks();
  for_each_block(grid, [&](std::span<const std::int64_t> index) { out.push_back(x.block(index)); });
  return out;
}

Array from_delayed(const Delayed<NDArray>& value, Shape shape, DType dtype) {
  for (std::int64_t extent : shape)
    if (extent < 0)
      throw ValueError("bad-shape", "from_delayed: negative extent in shape " + shape_str(shape));
  detail::ArrayMeta meta;
  meta.name = "from-value";
  meta.token = detail::op_token("from-value", value, shape, dtype);
  meta.shape = shape;
  for (std::int64_t extent : shape) meta.chunks.push_back({extent});
  meta.dtype = dtype;
  BlockSpec spec{std::move(shape), dtype};
  return make_array(std::move(meta), [value, spec](std::span<const std::int64_t>, Key key) {
    return weft::detail::make_call_task(std::move(key), false, &checked_block, spec, value);
  });
}

NDArray concatenate_blocks(const Chunks& chunks, std::span<const NDArray* const> blocks, DType dtype) {
  const std::vector<std::int64_t> grid = numblocks(chunks);
  if (blocks.size() != static_cast<std::size_t>(shape_size(grid)))
    throw ValueError("block-mismatch", "concatenate_blocks: " + std::to_string(blocks.size()) +
                                           " blocks for a grid of " + shape_str(grid));
  if (blocks.size() == 1 && blocks[0]->dtype() == dtype) return blocks[0]->contiguous();
  // Offsets per axis from the blocks' own extents, so unknown chunks work:
  // the extent of block i along axis a is that of the block with i there and
  // 0 on the other axes.
  const std::size_t ndim = grid.size();
  std::vector<std::vector<std::int64_t>> offsets(ndim);
  Shape shape(ndim);
  std::vector<std::int64_t> stride(ndim, 1);
  for (std::size_t a = ndim; a-- > 1;) stride[a - 1] = stride[a] * grid[a];
  for (std::size_t a = 0; a < ndim; ++a) {
    offsets[a].push_back(0);
    for (std::int64_t i = 0; i < grid[a]; ++i) {
      const NDArray& b = *blocks[static_cast<std::size_t>(i * stride[a])];
      offsets[a].push_back(offsets[a].back() + b.shape()[a]);
    }
    shape[a] = offsets[a].back();
  }
  NDArray out(dtype, shape);
  std::size_t flat = 0;
  for_each_block(grid, [&](std::span<const std::int64_t> index) {
    const NDArray& b = *blocks[flat++];
    std::vector<std::int64_t> at(ndim);
    for (std::size_t a = 0; a < ndim; ++a) {
      at[a] = offsets[a][static_cast<std::size_t>(index[a])];
      if (b.shape()[a] != offsets[a][static_cast<std::size_t>(index[a]) + 1] - at[a])
        throw ValueError("block-mismatch", "block " + shape_str(index) + " has shape " +
                                               shape_str(b.shape()) + ", which does not line up with its neighbours");
    }
    out.block(at, b.shape()).assign(b);
  });
  return out;
}

namespace detail {

BlockPlacement::BlockPlacement(const Chunks& chunks) {
  const std::vector<std::int64_t> grid = numblocks(chunks);
  grid_strides_.assign(grid.size(), 1);
  for (std::size_t a = grid.size(); a-- > 1;) grid_strides_[a - 1] = grid_strides_[a] * grid[a];
  for (const auto& axis : chunks) offsets_.push_back(block_offsets(axis));
}

void BlockPlacement::place(NDArray& target, std::size_t i, const NDArray& block) const {
  const std::size_t ndim = offsets_.size();
  std::vector<std::int64_t> index(ndim), at(ndim);
  Shape shape(ndim);
  auto flat = static_cast<std::int64_t>(i);
  for (std::size_t a = 0; a < ndim; ++a) {
    index[a] = flat / grid_strides_[a];
    flat %= grid_strides_[a];
    const auto k = static_cast<std::size_t>(index[a]);
    at[a] = offsets_[a][k];
    shape[a] = offsets_[a][k + 1] - at[a];
  }
  if (block.shape() != shape)
    throw ValueError("block-mismatch", "block " + shape_str(index) + " has shape " + shape_str(block.shape()) +
                                           ", which does not line up with its neighbours (expected " +
                                           shape_str(shape) + ")");
  target.block(at, shape).assign(block);
}

}  // namespace detail

void store(std::span<const Array> sources, std::span<NDArray> targets, const ComputeOptions& options) {
  if (sources.size() != targets.size())
    throw ValueError("shape-mismatch", "store: " + std::to_string(sources.size()) + " sources for " +
                                           std::to_string(targets.size()) + " targets");
  std::vector<TaskRef> roots;
  std::vector<std::size_t> first_root;
  std::vector<detail::BlockPlacement> placements;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].shape() != targets[i].shape())
      throw ValueError("shape-mismatch", "store: source " + std::to_string(i) + " has shape " +
                                             shape_str(sources[i].shape()) + ", its target " +
                                             shape_str(targets[i].shape()));
    if (has_unknown(sources[i].chunks()))
      throw ValueError("unknown-chunks", "store: source " + std::to_string(i) +
                                             " has unknown chunk sizes; call compute_chunk_sizes first");
    first_root.push_back(roots.size());
    placements.emplace_back(sources[i].chunks());
    CollectionTraits<Array>::roots(sources[i], roots);
  }
  first_root.push_back(roots.size());
  // Each block goes into its target as its task finishes, and is freed.
  const weft::detail::RootSink sink = [&](std::size_t position, const Value& value) {
    const auto i = static_cast<std::size_t>(
        std::upper_bound(first_root.begin(), first_root.end(), position) - first_root.begin() - 1);
    placements[i].place(targets[i], position - first_root[i], value.get<NDArray>());
  };
  weft::detail::execute(roots, nullptr, options, &sink);
}

void store(const Array& x, NDArray& target, const ComputeOptions& options) {
  store(std::span<const Array>(&x, 1), std::span<NDArray>(&target, 1), options);
}

}  // namespace weft::array

namespace weft {

void CollectionTraits<array::Array>::roots(const array::Array& x, std::vector<TaskRef>& out) {
  const std::vector<std::int64_t> grid = x.numblocks();
  out.reserve(out.size() + static_cast<std::size_t>(array::shape_size(grid)));
  array::for_each_block(grid, [&](std::span<const std::int64_t> index) {
    TaskPtr task = x.block_task(index);
    Key key = task->key();
    out.push_back(TaskRef{std::move(key), std::move(task)});
  });
}

array::NDArray CollectionTraits<array::Array>::finalize(const array::Array& x, std::span<Value> values) {
  std::vector<const array::NDArray*> blocks;
  blocks.reserve(values.size());
  for (Value& v : values) blocks.push_back(&v.get<array::NDArray>());
  return array::concatenate_blocks(x.chunks(), blocks, x.dtype());
}

CollectionTraits<array::Array>::Assembly::Assembly(const array::Array& x)
    : dtype_(x.dtype()), one_block_(x.npartitions() == 1), placement_(x.chunks()) {
  if (!one_block_) out_ = array::NDArray(dtype_, x.shape());
}

void CollectionTraits<array::Array>::Assembly::place(std::size_t block, const Value& value) {
  const auto& b = value.get<array::NDArray>();
  if (one_block_) {
    out_ = b;  // shares the block's memory; finish() makes it contiguous
  } else {
    placement_.place(out_, block, b);
  }
}

array::NDArray CollectionTraits<array::Array>::Assembly::finish() {
  if (!one_block_) return std::move(out_);
  return out_.dtype() == dtype_ ? out_.contiguous() : out_.astype(dtype_);
}

std::optional<CollectionTraits<array::Array>::Assembly> CollectionTraits<array::Array>::assemble(
    const array::Array& x) {
  if (array::has_unknown(x.chunks()) || x.npartitions() == 0) return std::nullopt;
  return Assembly(x);
}

array::Array CollectionTraits<array::Array>::rebuild(const array::Array& x, std::span<TaskPtr> held) {
  return array::Array(std::make_shared<array::detail::PersistedLayer>(
      x.layer().meta(), std::vector<TaskPtr>(held.begin(), held.end())));
}

}  // namespace weft
