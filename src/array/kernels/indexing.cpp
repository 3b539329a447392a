// Per-block kernels of indexing: views for basic indexing, typed gathers for
// integer-array indices and masks.
#include "indexing.hpp"

#include <algorithm>
#include <memory>
#include <span>
#include <string>

#include "weft/array/array.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {
namespace {

/// `a` with axis `from` moved to position `to` (a view).
NDArray move_axis(const NDArray& a, int from, int to) {
  if (from == to) return a;
  std::vector<int> axes;
  for (int i = 0; i < a.ndim(); ++i)
    if (i != from) axes.push_back(i);
  axes.insert(axes.begin() + to, from);
  return a.transpose(axes);
}

/// Output position k along `axis` is element offset[k] of blocks[source[k]]
/// (blocks agree on every other extent); then the axis moves to `dest`.
NDArray gather(const std::vector<NDArray>& blocks, int axis, int dest,
               std::span<const std::int32_t> source, std::span<const std::int64_t> offset) {
  const NDArray& first = blocks.at(0);
  const auto n = static_cast<std::int64_t>(source.size());
  Shape shape = first.shape();
  shape[axis] = n;
  const std::int64_t outer = shape_size(std::span(shape).first(axis));
  const std::int64_t inner = shape_size(std::span(shape).subspan(axis + 1));
  std::vector<NDArray> inputs;
  inputs.reserve(blocks.size());
  for (const NDArray& b : blocks) inputs.push_back(b.contiguous());
  NDArray out(first.dtype(), shape);
  dispatch(first.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<const T*> base;
    std::vector<std::int64_t> length;
    for (const NDArray& b : inputs) {
      base.push_back(b.data<T>());
      length.push_back(b.shape()[axis]);
    }
    T* dst = out.data<T>();
    for (std::int64_t o = 0; o < outer; ++o) {
      for (std::int64_t k = 0; k < n; ++k) {
        const auto s = static_cast<std::size_t>(source[k]);
        const T* from = base[s] + (o * length[s] + offset[k]) * inner;
        T* to = dst + (o * n + k) * inner;
#pragma omp simd
        for (std::int64_t e = 0; e < inner; ++e) to[e] = from[e];
      }
    }
  });
  return move_axis(out, axis, dest);
}

std::vector<const NDArray*> pointers(const std::vector<NDArray>& blocks) {
  std::vector<const NDArray*> out;
  out.reserve(blocks.size());
  for (const NDArray& b : blocks) out.push_back(&b);
  return out;
}

}  // namespace

NDArray basic_block(const BasicSpec& spec, const NDArray& block) {
  Shape shape;
  Strides strides;
  std::int64_t offset = 0;
  std::size_t in_axis = 0;
  for (const AxisStep& step : spec.steps) {
    switch (step.kind) {
      case AxisStep::Kind::newaxis:
        shape.push_back(1);
        strides.push_back(0);
        break;
      case AxisStep::Kind::integer:
        offset += step.start * block.strides()[in_axis++];
        break;
      case AxisStep::Kind::slice:
        shape.push_back(step.count < 0 ? block.shape()[in_axis] : step.count);
        offset += step.start * block.strides()[in_axis];
        strides.push_back(block.strides()[in_axis++] * step.step);
        break;
    }
  }
  // An empty view points at the block's start: its offset may lie outside.
  if (shape_size(shape) == 0) offset = 0;
  auto* base = static_cast<std::byte*>(const_cast<void*>(block.raw_data())) +
               offset * static_cast<std::int64_t>(block.itemsize());
  return NDArray::wrap(base, block.dtype(), std::move(shape), std::move(strides),
                       std::make_shared<NDArray>(block));
}

NDArray take_blocks(const TakeSpec& spec, const std::vector<NDArray>& blocks) {
  return gather(blocks, spec.axis, spec.dest, spec.source, spec.offset);
}

NDArray take_by_index_block(const TakeByArraySpec& spec, const std::vector<NDArray>& blocks,
                            const NDArray& index) {
  const std::int64_t length = spec.offsets.back();
  std::vector<std::int64_t> offset = index.to_vector<std::int64_t>();
  std::vector<std::int32_t> source(offset.size());
  for (std::size_t k = 0; k < offset.size(); ++k) {
    std::int64_t i = offset[k];
    if (i < -length || i >= length)
      throw ValueError("index-out-of-range", "getitem: index " + std::to_string(i) +
                                                 " is out of bounds for axis " + std::to_string(spec.axis) +
                                                 " with size " + std::to_string(length));
    if (i < 0) i += length;
    const auto b = std::upper_bound(spec.offsets.begin(), spec.offsets.end(), i) - spec.offsets.begin() - 1;
    source[k] = static_cast<std::int32_t>(b);
    offset[k] = i - spec.offsets[static_cast<std::size_t>(b)];
  }
  return gather(blocks, spec.axis, spec.dest, source, offset);
}

NDArray compress_block(const CompressSpec& spec, const NDArray& block,
                       const std::vector<NDArray>& mask_pieces) {
  std::vector<std::int64_t> kept;
  std::int64_t position = 0;
  for (const NDArray& piece : mask_pieces) {
    const NDArray values = piece.astype(DType::bool_);
    const bool* keep = values.data<bool>();
    for (std::int64_t e = 0; e < values.size(); ++e, ++position)
      if (keep[e] && position >= spec.begin && position < spec.end) kept.push_back(position - spec.begin);
  }
  return gather({block}, spec.axis, spec.dest, std::vector<std::int32_t>(kept.size(), 0), kept);
}

NDArray select_band(const MaskBandSpec& spec, const std::vector<NDArray>& x_blocks,
                    const std::vector<NDArray>& mask_blocks) {
  const DType dtype = x_blocks.at(0).dtype();
  const NDArray band = concatenate_blocks(spec.x_band, pointers(x_blocks), dtype).contiguous();
  const NDArray mask = concatenate_blocks(spec.mask_band, pointers(mask_blocks), DType::bool_)
                           .slice(0, spec.begin, spec.end)
                           .astype(DType::bool_);
  const bool* keep = mask.data<bool>();
  const auto kept = static_cast<std::int64_t>(std::count(keep, keep + mask.size(), true));
  NDArray out(dtype, Shape{kept});
  dispatch(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* from = band.data<T>();
    T* to = out.data<T>();
    for (std::int64_t i = 0; i < mask.size(); ++i)
      if (keep[i]) *to++ = from[i];
  });
  return out;
}

std::vector<std::int64_t> shape_of_block(const NDArray& block) { return block.shape(); }


}  // namespace weft::array::kernels
