// reduce_scan.cpp - cumulative sums/products (dask's cumreduction: each
// block's total along the axis, running totals carried from block to block,
// each block scanned from the carry before it) and histogram kernels.
#include <algorithm>

#include "reduce.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {

namespace {

// Calls f(Op{}) with the scan's operation on element type T.
template <class T, class F>
void with_scan_op(ScanOp op, F&& f) {
  switch (op) {
    case ScanOp::sum: return f(Add<T>{});
    case ScanOp::prod: return f(Multiply<T>{});
    case ScanOp::nansum: return f(SkipNan<Add<T>, T>{});
    case ScanOp::nanprod: return f(SkipNan<Multiply<T>, T>{});
  }
}

// The block as a fresh C-order array of the result dtype, scanned in place
// along the axis, starting from `carry` (kept shape, axis of 1) if given.
NDArray scan(const ScanSpec& spec, const NDArray& block, const NDArray* carry) {
  NDArray out(spec.out, block.shape());
  out.assign(block);
  const NDArray start = carry != nullptr ? carry->astype(spec.out) : NDArray();
  std::int64_t outer = 1;
  std::int64_t inner = 1;
  for (int d = 0; d < spec.axis; ++d) outer *= block.shape()[d];
  for (int d = spec.axis + 1; d < block.ndim(); ++d) inner *= block.shape()[d];
  const std::int64_t length = block.ndim() == 0 ? 1 : block.shape()[spec.axis];
  dispatch(spec.out, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_scan_op<T>(spec.op, [&](auto op) {
      using Op = decltype(op);
      T* data = out.data<T>();
      const T* from = carry != nullptr ? start.data<T>() : nullptr;
      for (std::int64_t o = 0; o < outer; ++o) {
        T* row = data + o * length * inner;
        if (length == 0) continue;
        if (from != nullptr) {
          const T* c = from + o * inner;
#pragma omp simd
          for (std::int64_t j = 0; j < inner; ++j) row[j] = Op::combine(c[j], Op::lift(row[j]));
        } else {
#pragma omp simd
          for (std::int64_t j = 0; j < inner; ++j) row[j] = Op::lift(row[j]);
        }
        for (std::int64_t i = 1; i < length; ++i) {
          T* r = row + i * inner;
          const T* prev = r - inner;
#pragma omp simd
          for (std::int64_t j = 0; j < inner; ++j) r[j] = Op::combine(prev[j], Op::lift(r[j]));
        }
      }
    });
  });
  return out;
}

}  // namespace

NDArray scan_total(const ScanSpec& spec, const NDArray& block) {
  const NDArray in = block.dtype() != spec.out ? block.astype(spec.out) : block;
  const std::uint64_t reduced = std::uint64_t{1} << spec.axis;
  NDArray out(spec.out, kept_shape(in.shape(), reduced));
  dispatch(spec.out, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_scan_op<T>(spec.op, [&](auto op) {
      using Op = decltype(op);
      T* acc = out.data<T>();
      std::fill(acc, acc + out.size(), Op::identity());
      fold_block<T, T>(in, reduced, acc, [](const T& v, std::int64_t) { return Op::lift(v); },
                       [](const T& a, const T& b) { return Op::combine(a, b); });
    });
  });
  return out;
}

NDArray scan_carry(const ScanSpec& spec, const NDArray& previous, const NDArray& total) {
  NDArray out = previous.copy();
  const NDArray add = total.contiguous();
  dispatch(spec.out, [&](auto tag) {
    using T = typename decltype(tag)::type;
    with_scan_op<T>(spec.op, [&](auto op) {
      using Op = decltype(op);
      T* a = out.data<T>();
      const T* b = add.data<T>();
#pragma omp simd
      for (std::int64_t i = 0; i < out.size(); ++i) a[i] = Op::combine(a[i], b[i]);
    });
  });
  return out;
}

NDArray scan_first(const ScanSpec& spec, const NDArray& block) { return scan(spec, block, nullptr); }

NDArray scan_after(const ScanSpec& spec, const NDArray& block, const NDArray& carry) {
  return scan(spec, block, &carry);
}

namespace {

// The bin of v, or -1 outside the edges (NumPy's rules: the last bin
// includes its right edge; equal bins are found by arithmetic, then
// corrected against the edges).
std::int64_t bin_of(const HistogramSpec& spec, const std::vector<double>& edges, double v) {
  const std::int64_t bins = static_cast<std::int64_t>(edges.size()) - 1;
  if (!(v >= edges.front() && v <= edges.back())) return -1;  // NaN included
  if (!spec.uniform) {
    const auto upper = std::upper_bound(edges.begin(), edges.end(), v);
    return std::min<std::int64_t>(upper - edges.begin() - 1, bins - 1);
  }
  const double norm = static_cast<double>(bins) / (edges.back() - edges.front());
  std::int64_t i = static_cast<std::int64_t>((v - edges.front()) * norm);
  if (i == bins) --i;
  if (v < edges[i]) --i;
  else if (v >= edges[i + 1] && i != bins - 1) ++i;
  return i;
}

Shape counts_shape(const NDArray& block, std::int64_t bins) {
  Shape shape(block.ndim() + 1, 1);
  shape.push_back(bins);
  return shape;
}

}  // namespace

NDArray histogram_partial(const HistogramSpec& spec, const std::vector<double>& edges, const NDArray& block) {
  const std::int64_t bins = static_cast<std::int64_t>(edges.size()) - 1;
  NDArray out(DType::int64, counts_shape(block, bins), Scalar(std::int64_t{0}));
  std::int64_t* counts = out.data<std::int64_t>();
  const NDArray values = block.astype(DType::float64);
  const double* v = values.data<double>();
  for (std::int64_t i = 0; i < values.size(); ++i) {
    const std::int64_t b = bin_of(spec, edges, v[i]);
    if (b >= 0) ++counts[b];
  }
  return out;
}

NDArray histogram_weighted_partial(const HistogramSpec& spec, const std::vector<double>& edges,
                                   const NDArray& block, const NDArray& weights) {
  const std::int64_t bins = static_cast<std::int64_t>(edges.size()) - 1;
  NDArray out(weights.dtype(), counts_shape(block, bins), Scalar(0));
  const NDArray values = block.astype(DType::float64);
  const NDArray w = weights.contiguous();
  const double* v = values.data<double>();
  dispatch(weights.dtype(), [&](auto tag) {
    using W = typename decltype(tag)::type;
    W* sums = out.data<W>();
    const W* wt = w.data<W>();
    for (std::int64_t i = 0; i < values.size(); ++i) {
      const std::int64_t b = bin_of(spec, edges, v[i]);
      if (b >= 0) sums[b] = static_cast<W>(sums[b] + wt[i]);
    }
  });
  return out;
}

NDArray histogram_density(const std::vector<double>& edges, const NDArray& counts) {
  const NDArray n = counts.astype(DType::float64);
  const double* c = n.data<double>();
  double total = 0;
  for (std::int64_t i = 0; i < n.size(); ++i) total += c[i];
  NDArray out(DType::float64, n.shape());
  double* o = out.data<double>();
  for (std::int64_t i = 0; i < n.size(); ++i) o[i] = c[i] / (edges[i + 1] - edges[i]) / total;
  return out;
}

}  // namespace weft::array::kernels
