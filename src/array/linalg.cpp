// src/array/linalg.cpp - matmul, dot, tensordot, vdot, outer as one block contraction.
#include "weft/array/linalg.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "kernels/linalg.hpp"
#include "weft/array/blockwise.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/error.hpp"

namespace weft::array {
namespace {

using kernels::ContractSpec;

std::string shapes_text(const Array& a, const Array& b) {
  return "a has shape " + shape_str(a.shape()) + " and b " + shape_str(b.shape());
}

/// a and b with the axes that meet in the product chunked alike: summed
/// pairs, and batch axes both have with more than one element.
void unify_chunks(std::string_view op, Array& a, Array& b, const ContractSpec& spec) {
  if (has_unknown(a.chunks()) || has_unknown(b.chunks()))
    throw ValueError("unknown-chunks", std::string(op) +
                                           ": an operand has blocks of unknown size; compute its chunks first");
  Chunks a_chunks = a.chunks(), b_chunks = b.chunks();
  auto meet = [&](int ax, int bx) {
    if (a_chunks[ax] == b_chunks[bx]) return;
    a_chunks[ax] = b_chunks[bx] = detail::common_blocks(a_chunks[ax], b_chunks[bx]);
  };
  for (std::size_t i = 0; i < spec.a_sum.size(); ++i) meet(spec.a_sum[i], spec.b_sum[i]);
  for (std::size_t d = 0; d < spec.a_batch.size(); ++d) {
    const int ax = spec.a_batch[d], bx = spec.b_batch[d];
    if (ax >= 0 && bx >= 0 && a.shape()[ax] != 1 && b.shape()[bx] != 1) meet(ax, bx);
  }
  if (a_chunks != a.chunks()) a = rechunk(a, a_chunks);
  if (b_chunks != b.chunks()) b = rechunk(b, b_chunks);
}

/// The product of a and b as `spec` describes it (shapes already checked):
/// one task per output block over all the block pairs along the summed axes.
Array contract(std::string_view op, Array a, Array b, ContractSpec spec) {
  unify_chunks(op, a, b, spec);
  spec.dtype = result_type(a.dtype(), b.dtype());
  detail::ArrayMeta meta;
  meta.name = std::string(op);
  meta.dtype = spec.dtype;
  for (std::size_t d = 0; d < spec.a_batch.size(); ++d) {
    const int ax = spec.a_batch[d], bx = spec.b_batch[d];
    // The operand that has the axis with more than one element gives it.
    const bool from_a = ax >= 0 && (bx < 0 || b.shape()[bx] == 1);
    meta.shape.push_back(from_a ? a.shape()[ax] : b.shape()[bx]);
    meta.chunks.push_back(from_a ? a.chunks()[ax] : b.chunks()[bx]);
  }
  for (int ax : spec.a_rows) {
    meta.shape.push_back(a.shape()[ax]);
    meta.chunks.push_back(a.chunks()[ax]);
  }
  for (int bx : spec.b_cols) {
    meta.shape.push_back(b.shape()[bx]);
    meta.chunks.push_back(b.chunks()[bx]);
  }
  meta.token = detail::op_token(op, a, b, spec.conj_a, spec.a_batch, spec.b_batch, spec.a_rows, spec.a_sum,
                                spec.b_sum, spec.b_cols);

  // The grid of block pairs: a's blocks along its summed axes (b's match).
  Shape sum_grid;
  for (int ax : spec.a_sum) sum_grid.push_back(static_cast<std::int64_t>(a.chunks()[ax].size()));
  return make_array(std::move(meta), [a, b, spec, sum_grid](std::span<const std::int64_t> index, Key key) {
    const std::size_t nbatch = spec.a_batch.size();
    std::vector<std::int64_t> a_index(static_cast<std::size_t>(a.ndim())), b_index(static_cast<std::size_t>(b.ndim()));
    const std::vector<std::int64_t> a_blocks = a.numblocks(), b_blocks = b.numblocks();
    for (std::size_t d = 0; d < nbatch; ++d) {
      // A broadcast axis (length 1) has one block.
      if (int ax = spec.a_batch[d]; ax >= 0) a_index[ax] = a_blocks[ax] == 1 ? 0 : index[d];
      if (int bx = spec.b_batch[d]; bx >= 0) b_index[bx] = b_blocks[bx] == 1 ? 0 : index[d];
    }
    for (std::size_t r = 0; r < spec.a_rows.size(); ++r) a_index[spec.a_rows[r]] = index[nbatch + r];
    for (std::size_t c = 0; c < spec.b_cols.size(); ++c)
      b_index[spec.b_cols[c]] = index[nbatch + spec.a_rows.size() + c];
    std::vector<Delayed<NDArray>> a_pairs, b_pairs;
    const std::int64_t pairs = shape_size(sum_grid);
    std::vector<std::int64_t> k(sum_grid.size(), 0);
    for (std::int64_t p = 0; p < pairs; ++p) {
      for (std::size_t s = 0; s < k.size(); ++s) {
        a_index[spec.a_sum[s]] = k[s];
        b_index[spec.b_sum[s]] = k[s];
      }
      a_pairs.push_back(a.block(a_index));
      b_pairs.push_back(b.block(b_index));
      for (std::size_t s = k.size(); s-- > 0;) {
        if (++k[s] < sum_grid[s]) break;
        k[s] = 0;
      }
    }
    return weft::detail::make_call_task(std::move(key), false, &kernels::contract_blocks, spec, std::move(a_pairs),
                                        std::move(b_pairs));
  });
}

/// Axes in [-ndim, ndim) as non-negative ones, in the order given.
std::vector<int> resolve_axes(std::string_view op, const std::vector<int>& axes, int ndim, char operand) {
  std::vector<int> out;
  for (int axis : axes) {
    if (axis < -ndim || axis >= ndim)
      throw ValueError("bad-axis", std::string(op) + ": axis " + std::to_string(axis) + " of " + operand +
                                       " is out of bounds for an array of dimension " + std::to_string(ndim));
    const int a = axis < 0 ? axis + ndim : axis;
    if (std::find(out.begin(), out.end(), a) != out.end())
      throw ValueError("bad-axis", std::string(op) + ": axis " + std::to_string(axis) + " of " + operand +
                                       " is given twice");
    out.push_back(a);
  }
  return out;
}

/// The axes of an ndim array that are not in `summed`, in order.
std::vector<int> free_axes(int ndim, const std::vector<int>& summed) {
  std::vector<int> out;
  for (int axis = 0; axis < ndim; ++axis)
    if (std::find(summed.begin(), summed.end(), axis) == summed.end()) out.push_back(axis);
  return out;
}

Array tensordot_as(std::string_view op, const Array& a, const Array& b, const std::vector<int>& a_axes,
                   const std::vector<int>& b_axes, bool conj_a = false) {
  if (a_axes.size() != b_axes.size())
    throw ValueError("bad-axis", std::string(op) + ": " + std::to_string(a_axes.size()) + " axes of a to sum with " +
                                     std::to_string(b_axes.size()) + " of b");
  ContractSpec spec;
  spec.conj_a = conj_a;
  spec.a_sum = resolve_axes(op, a_axes, a.ndim(), 'a');
  spec.b_sum = resolve_axes(op, b_axes, b.ndim(), 'b');
  for (std::size_t i = 0; i < spec.a_sum.size(); ++i)
    if (a.shape()[spec.a_sum[i]] != b.shape()[spec.b_sum[i]])
      throw ValueError("shape-mismatch", std::string(op) + ": " + shapes_text(a, b) + ": axis " +
                                             std::to_string(spec.a_sum[i]) + " of a and axis " +
                                             std::to_string(spec.b_sum[i]) + " of b differ in length");
  spec.a_rows = free_axes(a.ndim(), spec.a_sum);
  spec.b_cols = free_axes(b.ndim(), spec.b_sum);
  return contract(op, a, b, std::move(spec));
}

std::vector<int> leading_axes(int n) {
  std::vector<int> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = i;
  return out;
}

}  // namespace

Array matmul(const Array& a, const Array& b) {
  if (a.ndim() == 0 || b.ndim() == 0)
    throw ValueError("bad-ndim", "matmul: operand " + std::string(a.ndim() == 0 ? "a" : "b") +
                                     " is 0-d; matmul needs at least 1 dimension (use multiply for scalars)");
  const int a_nd = a.ndim(), b_nd = b.ndim();
  ContractSpec spec;
  spec.a_sum = {a_nd - 1};
  if (a_nd >= 2) spec.a_rows = {a_nd - 2};
  spec.b_sum = {b_nd >= 2 ? b_nd - 2 : 0};
  if (b_nd >= 2) spec.b_cols = {b_nd - 1};
  if (a.shape()[spec.a_sum[0]] != b.shape()[spec.b_sum[0]])
    throw ValueError("shape-mismatch", "matmul: " + shapes_text(a, b) + ": the contracted lengths " +
                                           std::to_string(a.shape()[spec.a_sum[0]]) + " and " +
                                           std::to_string(b.shape()[spec.b_sum[0]]) + " differ");
  // Batch axes broadcast from the right, as NumPy's do.
  const int a_batch = std::max(a_nd - 2, 0), b_batch = std::max(b_nd - 2, 0);
  const int batch = std::max(a_batch, b_batch);
  for (int d = 0; d < batch; ++d) {
    const int ax = d - (batch - a_batch), bx = d - (batch - b_batch);
    spec.a_batch.push_back(ax >= 0 ? ax : -1);
    spec.b_batch.push_back(bx >= 0 ? bx : -1);
    if (ax >= 0 && bx >= 0 && a.shape()[ax] != b.shape()[bx] && a.shape()[ax] != 1 && b.shape()[bx] != 1)
      throw ValueError("shape-mismatch", "matmul: " + shapes_text(a, b) + ": the batch axes do not broadcast");
  }
  return contract("matmul", a, b, std::move(spec));
}

Array dot(const Array& a, const Array& b) {
  if (a.ndim() == 0 || b.ndim() == 0) return tensordot_as("dot", a, b, {}, {});
  return tensordot_as("dot", a, b, {a.ndim() - 1}, {b.ndim() >= 2 ? b.ndim() - 2 : 0});
}

Array tensordot(const Array& a, const Array& b, int axes) {
  if (axes < 0 || axes > a.ndim() || axes > b.ndim())
    throw ValueError("bad-axis", "tensordot: axes=" + std::to_string(axes) + " for operands of " +
                                     std::to_string(a.ndim()) + " and " + std::to_string(b.ndim()) + " dimensions");
  std::vector<int> a_axes = leading_axes(axes);
  for (int& axis : a_axes) axis += a.ndim() - axes;
  return tensordot_as("tensordot", a, b, a_axes, leading_axes(axes));
}

Array tensordot(const Array& a, const Array& b, const std::vector<int>& a_axes, const std::vector<int>& b_axes) {
  return tensordot_as("tensordot", a, b, a_axes, b_axes);
}

Array vdot(const Array& a, const Array& b) {
  if (a.shape() != b.shape())
    throw ValueError("shape-mismatch", "vdot: " + shapes_text(a, b) + "; vdot needs operands of the same shape");
  return tensordot_as("vdot", a, b, leading_axes(a.ndim()), leading_axes(b.ndim()), is_complex(a.dtype()));
}

Array outer(const Array& a, const Array& b) {
  if (a.ndim() != 1 || b.ndim() != 1)
    throw ValueError("bad-ndim", "outer: " + shapes_text(a, b) + "; outer takes 1-d operands");
  return tensordot_as("outer", a, b, {}, {});
}

Array Array::dot(const Array& other) const { return array::dot(*this, other); }

}  // namespace weft::array
