// src/array/kernels/reduce.hpp - per-block kernels of reductions, scans and
// histograms (private to src/array), and the loops they share.
//
// A reduction's partial of a block is an NDArray of shape
// [fields, block shape with the reduced axes set to 1] (C order): field f of
// output position o is at data[f * positions + o]. reduce_combine merges
// partials of the same positions; reduce_aggregate merges the last ones and
// turns them into the result. Field layouts (partial_layout()):
//   sum, prod, min, max, any, all, count_nonzero: the running value;
//   mean (and average): count (the sum of the weights), sum;
//   var, std, moment: count, mean, then sum((x - mean)^k) for k = 2..order
//                     (for complex var: |x - mean|^2);
//   ptp: min, max;
//   argmin/argmax: index, then the value's bytes in int64 words.
#pragma once

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "avx2_clone.hpp"
#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"
#include "elementwise.hpp"

namespace weft::array::kernels {

enum class ReduceOp : std::uint8_t {
  sum,
  prod,
  nansum,
  nanprod,
  min,
  max,
  nanmin,
  nanmax,
  ptp,
  any,
  all,
  count_nonzero,
  mean,
  nanmean,
  average_weights,  ///< mean's partials, finished as their count (sum of the weights)
  var,
  nanvar,
  std,
  nanstd,
  moment,
  argmin,
  argmax,
  nanargmin,
  nanargmax,
};

/// What every reduction task needs; travels as its bytes.
struct ReduceSpec {
  ReduceOp op = ReduceOp::sum;
  DType input = DType::float64;  ///< the dtype of the input blocks
  DType out = DType::float64;    ///< the result's dtype
  std::uint64_t reduced = 0;     ///< bit a: input axis a is reduced
  int ndim = 0;                  ///< the input's ndim
  int order = 0;                 ///< var/std: 2; moment: its order
  int ddof = 0;
  bool keepdims = false;
};

struct PartialLayout {
  int fields;
  DType dtype;
};
PartialLayout partial_layout(const ReduceSpec& spec);

/// The partial of one block.
NDArray reduce_partial(const ReduceSpec& spec, const NDArray& block);
/// argmin/argmax partial: `placement` is the block's offset per axis followed
/// by the global index stride per axis (an element's index in the result is
/// sum((offset + local) * stride)).
NDArray reduce_arg_partial(const ReduceSpec& spec, const std::vector<std::int64_t>& placement,
                           const NDArray& block);
/// Weighted average partial (mean's layout: sum of weights, sum of x * w) of
/// a block and its weights: of the block's shape, or 1-d along `weights_axis`
/// (>= 0) of the block.
NDArray reduce_weighted_partial(const ReduceSpec& spec, const NDArray& block, const NDArray& weights,
                                int weights_axis);
/// The partial of a block of a fused elementwise expression (see
/// elementwise.hpp's for_each_tile): not for arg reductions.
NDArray reduce_fused_partial(const ReduceSpec& spec, const Program& program, const Shape& block_shape,
                             const std::vector<NDArray>& leaves);
/// Whether reduce_fused_partial computes `op`.
inline bool fusable(ReduceOp op) {
  return !(op == ReduceOp::argmin || op == ReduceOp::argmax || op == ReduceOp::nanargmin || op == ReduceOp::nanargmax);
}
/// Partials merged into one.
NDArray reduce_combine(const ReduceSpec& spec, const std::vector<NDArray>& partials);
/// Partials merged and finished: the result block.
NDArray reduce_aggregate(const ReduceSpec& spec, const std::vector<NDArray>& partials);

// --- scans (cumsum and friends) ---------------------------------------------

enum class ScanOp : std::uint8_t { sum, prod, nansum, nanprod };

struct ScanSpec {
  ScanOp op = ScanOp::sum;
  DType out = DType::float64;
  int axis = 0;
};
/// The block reduced along the axis (kept as size 1), in the result dtype.
NDArray scan_total(const ScanSpec& spec, const NDArray& block);
/// previous ⊕ total: the running total up to and including this block.
NDArray scan_carry(const ScanSpec& spec, const NDArray& previous, const NDArray& total);
/// The block's own scan (the first block along the axis).
NDArray scan_first(const ScanSpec& spec, const NDArray& block);
/// The block's scan started from `carry` (the total of the blocks before it).
NDArray scan_after(const ScanSpec& spec, const NDArray& block, const NDArray& carry);

// --- histogram --------------------------------------------------------------

struct HistogramSpec {
  bool uniform = true;  ///< equal bins: index computed, not searched (as NumPy)
};
/// Counts of one block, as a partial for a sum over a [1, 1, ..., bins]
/// shaped grid (one leading size-1 axis per input axis): int64, or the
/// weights' dtype when weights are given.
NDArray histogram_partial(const HistogramSpec& spec, const std::vector<double>& edges, const NDArray& block);
NDArray histogram_weighted_partial(const HistogramSpec& spec, const std::vector<double>& edges,
                                   const NDArray& block, const NDArray& weights);
/// counts / (sum(counts) * bin widths), as float64.
NDArray histogram_density(const std::vector<double>& edges, const NDArray& counts);

// --- parts of the reduction kernels, shared between their files ----------------

inline bool is_moment_op(ReduceOp op) {
  return op == ReduceOp::mean || op == ReduceOp::nanmean || op == ReduceOp::average_weights ||
         op == ReduceOp::var || op == ReduceOp::nanvar || op == ReduceOp::std || op == ReduceOp::nanstd ||
         op == ReduceOp::moment;
}
inline bool is_arg_op(ReduceOp op) {
  return op == ReduceOp::argmin || op == ReduceOp::argmax || op == ReduceOp::nanargmin ||
         op == ReduceOp::nanargmax;
}
/// Where mean/var/moment partials accumulate: complex128 for complex input, else float64.
DType moment_dtype(DType input);
/// int64 words holding one value of `input` in an arg partial.
inline int arg_value_words(DType input) { return static_cast<int>((itemsize(input) + 7) / 8); }
/// Output positions of a partial (its size over its fields).
std::int64_t positions(const NDArray& partial);
/// The result block's shape for a merged partial (fields dropped; reduced
/// axes dropped unless keepdims).
Shape result_shape(const ReduceSpec& spec, const NDArray& partial);

void merge_moments(const ReduceSpec& spec, NDArray& into, const NDArray& from);
NDArray finish_moments(const ReduceSpec& spec, const NDArray& partial);
void merge_args(const ReduceSpec& spec, NDArray& into, const NDArray& from);
NDArray finish_args(const ReduceSpec& spec, const NDArray& partial);

// --- shared loops -------------------------------------------------------------

/// Complex numbers order by real part, then imaginary part (as NumPy's).
template <class T>
bool less(const T& a, const T& b) {
  if constexpr (requires { a.imag(); })
    return a.real() < b.real() || (a.real() == b.real() && a.imag() < b.imag());
  else
    return a < b;
}

template <class T>
bool is_nan(const T& v) {
  if constexpr (requires { v.imag(); }) return std::isnan(v.real()) || std::isnan(v.imag());
  else if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// One-field reductions: how an element enters (lift), how two values merge
// (combine), and the value of no elements (identity).
template <class T>
struct Add {
  static T identity() { return T(0); }
  static T lift(T v) { return v; }
  static T combine(T a, T b) { return static_cast<T>(a + b); }
};
template <class T>
struct Multiply {
  static T identity() { return T(1); }
  static T lift(T v) { return v; }
  static T combine(T a, T b) { return static_cast<T>(a * b); }
};
/// NaNs count as the identity (nansum, nancumprod, ...).
template <class Op, class T>
struct SkipNan : Op {
  static T lift(T v) { return is_nan(v) ? Op::identity() : v; }
};

/// A block walked as lines along its last (merged) axis, with up to three
/// element offsets per step: the input, the output position, and an index
/// (argmin's global index). Axes of size 1 are dropped and axes that are
/// contiguous for all three merged, so a contiguous block reduced whole is
/// one line.
class LineLoop {
 public:
  static constexpr int kOffsets = 3;
  LineLoop(std::span<const std::int64_t> shape, std::span<const std::int64_t> strides0,
           std::span<const std::int64_t> strides1, std::span<const std::int64_t> strides2);

  /// Elements per line (0: nothing to do).
  std::int64_t length() const noexcept { return length_; }
  /// Step of offset k along a line.
  std::int64_t step(int k) const noexcept { return step_[k]; }
  /// Calls f(offset0, offset1, offset2) for the start of every line.
  template <class F>
  void for_each(F&& f) const {
    if (length_ == 0) return;
    const std::size_t nd = outer_.size();
    std::vector<std::int64_t> index(nd, 0);
    std::int64_t off[kOffsets] = {0, 0, 0};
    while (true) {
      f(off[0], off[1], off[2]);
      std::size_t d = nd;
      while (d > 0) {
        --d;
        if (++index[d] < outer_[d]) {
          for (int k = 0; k < kOffsets; ++k) off[k] += strides_[k][d];
          break;
        }
        for (int k = 0; k < kOffsets; ++k) off[k] -= strides_[k][d] * (outer_[d] - 1);
        index[d] = 0;
        if (d == 0) return;
      }
      if (nd == 0) return;
    }
  }

 private:
  std::vector<std::int64_t> outer_;
  std::vector<std::int64_t> strides_[kOffsets];
  std::int64_t length_ = 0;
  std::int64_t step_[kOffsets] = {0, 0, 0};
};

/// C-order strides of the partial's positions for a block of `shape`, 0
/// along reduced axes.
std::vector<std::int64_t> position_strides(std::span<const std::int64_t> shape, std::uint64_t reduced);
/// The block's shape with reduced axes set to 1.
Shape kept_shape(std::span<const std::int64_t> shape, std::uint64_t reduced);

namespace detail {
template <bool Unit, class A, class P, class Lift, class Combine>
A pairwise(const P* p, std::int64_t n, std::int64_t stride_arg, const Lift& lift, const Combine& combine) {
  const std::int64_t stride = Unit ? 1 : stride_arg;  // a constant in the contiguous case
  if (n < 8) {
    A r = lift(p[0]);
    for (std::int64_t i = 1; i < n; ++i) r = combine(r, lift(p[i * stride]));
    return r;
  }
  if (n <= 128) {
    // The running values stay in registers (unrolled), as in NumPy's loop.
    A r0 = lift(p[0]), r1 = lift(p[stride]), r2 = lift(p[2 * stride]), r3 = lift(p[3 * stride]);
    A r4 = lift(p[4 * stride]), r5 = lift(p[5 * stride]), r6 = lift(p[6 * stride]), r7 = lift(p[7 * stride]);
    std::int64_t i = 8;
    for (; i + 8 <= n; i += 8) {
      const P* q = p + i * stride;
      r0 = combine(r0, lift(q[0]));
      r1 = combine(r1, lift(q[stride]));
      r2 = combine(r2, lift(q[2 * stride]));
      r3 = combine(r3, lift(q[3 * stride]));
      r4 = combine(r4, lift(q[4 * stride]));
      r5 = combine(r5, lift(q[5 * stride]));
      r6 = combine(r6, lift(q[6 * stride]));
      r7 = combine(r7, lift(q[7 * stride]));
    }
    A s = combine(combine(combine(r0, r1), combine(r2, r3)), combine(combine(r4, r5), combine(r6, r7)));
    for (; i < n; ++i) s = combine(s, lift(p[i * stride]));
    return s;
  }
  std::int64_t half = n / 2;
  half -= half % 8;
  // The first half first: memory is read in ascending order, which the
  // hardware prefetcher follows (the order of a call's arguments is not).
  const A first = pairwise<Unit, A>(p, half, stride, lift, combine);
  return combine(first, pairwise<Unit, A>(p + half * stride, n - half, stride, lift, combine));
}

/// pairwise() of kLines lines at once, line k at p[k] folded with lift(v, k):
/// the same tree per line, so each result is bit for bit pairwise()'s, while
/// the lines are read side by side. Reading several rows of a strided block
/// (rows of 8 KB, 80 KB apart, in a 1000 x 1000 block of a 10000-wide array)
/// as one sequential row at a time stalls at each row's start, where the
/// hardware prefetcher has not caught on; interleaved, the loads of the
/// other rows are in flight meanwhile (1.5-2x faster, docs/benchmarks.md).
inline constexpr int kLines = 8;
template <bool Unit, class A, class P, class Lift, class Combine>
void pairwise_lines(const P* const* p, std::int64_t n, std::int64_t stride_arg, const Lift& lift,
                    const Combine& combine, A* out) {
  const std::int64_t stride = Unit ? 1 : stride_arg;
  if (n < 8) {
    for (int k = 0; k < kLines; ++k)
      out[k] = pairwise<Unit, A>(p[k], n, stride, [&](const P& v) { return lift(v, k); }, combine);
    return;
  }
  if (n <= 128) {
    A r[kLines][8];
    for (int k = 0; k < kLines; ++k)
      for (int j = 0; j < 8; ++j) r[k][j] = lift(p[k][j * stride], k);
    std::int64_t i = 8;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < kLines; ++k) {
        const P* q = p[k] + i * stride;
        for (int j = 0; j < 8; ++j) r[k][j] = combine(r[k][j], lift(q[j * stride], k));
      }
    for (int k = 0; k < kLines; ++k) {
      const A* a = r[k];
      A s = combine(combine(combine(a[0], a[1]), combine(a[2], a[3])), combine(combine(a[4], a[5]), combine(a[6], a[7])));
      for (std::int64_t j = i; j < n; ++j) s = combine(s, lift(p[k][j * stride], k));
      out[k] = s;
    }
    return;
  }
  std::int64_t half = n / 2;
  half -= half % 8;
  A first[kLines], second[kLines];
  pairwise_lines<Unit, A>(p, half, stride, lift, combine, first);
  const P* rest[kLines];
  for (int k = 0; k < kLines; ++k) rest[k] = p[k] + half * stride;
  pairwise_lines<Unit, A>(rest, n - half, stride, lift, combine, second);
  for (int k = 0; k < kLines; ++k) out[k] = combine(first[k], second[k]);
}
}  // namespace detail

/// NumPy's pairwise reduction of lift(p[i * stride]) (its pairwise_sum: 8
/// running values up to 128 elements, halves above), for any associative
/// combine. n >= 1.
template <class A, class P, class Lift, class Combine>
A fold_line(const P* p, std::int64_t n, std::int64_t stride, const Lift& lift, const Combine& combine) {
  return stride == 1 ? detail::pairwise<true, A>(p, n, 1, lift, combine)
                     : detail::pairwise<false, A>(p, n, stride, lift, combine);
}

/// acc[out + i * out_step] = combine(..., lift(p[i * in_step], that position))
/// for i < n: a reduced run (out_step 0) is folded pairwise into one
/// position, a kept one accumulated elementwise (SIMD when contiguous).
template <class A, class T, class Lift, class Combine>
WEFT_AVX2_CLONE void fold_run(const T* p, std::int64_t n, std::int64_t in_step, A* acc, std::int64_t out,
                              std::int64_t out_step, const Lift& lift, const Combine& combine) {
  if (out_step == 0) {
    acc[out] = combine(acc[out], fold_line<A>(p, n, in_step, [&](const T& v) { return lift(v, out); }, combine));
    return;
  }
  A* a = acc + out;
  if (in_step == 1 && out_step == 1) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) a[i] = combine(a[i], lift(p[i], out + i));
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      a[i * out_step] = combine(a[i * out_step], lift(p[i * in_step], out + i * out_step));
  }
}

/// acc[o] = combine(acc[o], lift(x, o)) over a block, o being the element's
/// output position (reduced axes collapsed).
template <class A, class T, class Lift, class Combine>
void fold_block(const NDArray& block, std::uint64_t reduced, A* acc, const Lift& lift, const Combine& combine) {
  const T* base = block.data<T>();
  const std::vector<std::int64_t> none(block.shape().size(), 0);
  const LineLoop lines(block.shape(), block.strides(), position_strides(block.shape(), reduced), none);
  const std::int64_t n = lines.length(), step = lines.step(0);
  if (lines.step(1) != 0) {  // kept runs: accumulated elementwise
    lines.for_each([&](std::int64_t in, std::int64_t out, std::int64_t) {
      fold_run<A, T>(base + in, n, step, acc, out, lines.step(1), lift, combine);
    });
    return;
  }
  // Reduced runs: folded detail::kLines at a time, then merged into their
  // positions in line order, so every position sees what one line at a
  // time gives.
  const T* line[detail::kLines];
  std::int64_t out_of[detail::kLines];
  int pending = 0;
  lines.for_each([&](std::int64_t in, std::int64_t out, std::int64_t) {
    line[pending] = base + in;
    out_of[pending++] = out;
    if (pending < detail::kLines) return;
    A folded[detail::kLines];
    const auto lift_line = [&](const T& v, int k) { return lift(v, out_of[k]); };
    if (step == 1) detail::pairwise_lines<true, A>(line, n, 1, lift_line, combine, folded);
    else detail::pairwise_lines<false, A>(line, n, step, lift_line, combine, folded);
    for (int k = 0; k < detail::kLines; ++k) acc[out_of[k]] = combine(acc[out_of[k]], folded[k]);
    pending = 0;
  });
  for (int k = 0; k < pending; ++k) fold_run<A, T>(line[k], n, step, acc, out_of[k], 0, lift, combine);
}

/// A C-order block of `shape` seen as runs of consecutive elements that go
/// to consecutive (or one) output positions: axes merged where the output
/// positions allow, so that a block reduced whole is one run per tile.
class Runs {
 public:
  Runs(std::span<const std::int64_t> shape, std::uint64_t reduced);
  /// Calls f(first, n, out, out_step) for the runs of elements [offset,
  /// offset + count): `first` counts from offset.
  template <class F>
  void for_each(std::int64_t offset, std::int64_t count, F&& f) const {
    const std::int64_t last = extents_.back();
    std::int64_t done = 0;
    while (done < count) {
      const std::int64_t flat = offset + done;
      const std::int64_t column = flat % last;
      std::int64_t row = flat / last;
      std::int64_t out = column * out_strides_.back();
      for (std::size_t d = extents_.size() - 1; d-- > 0;) {
        out += row % extents_[d] * out_strides_[d];
        row /= extents_[d];
      }
      const std::int64_t n = std::min(last - column, count - done);
      f(done, n, out, out_strides_.back());
      done += n;
    }
  }

 private:
  std::vector<std::int64_t> extents_;      // merged axes, never empty
  std::vector<std::int64_t> out_strides_;  // output position step per merged axis
};

/// The elements of a reduction's input block, in memory.
class BlockSource {
 public:
  explicit BlockSource(NDArray block) : block_(std::move(block)) {}
  DType dtype() const noexcept { return block_.dtype(); }
  const Shape& shape() const noexcept { return block_.shape(); }
  /// The same elements converted to `t`.
  BlockSource as(DType t) const { return BlockSource(block_.dtype() == t ? block_ : block_.astype(t)); }
  /// fold_block over the elements (T is dtype()'s type).
  template <class A, class T, class Lift, class Combine>
  void fold(std::uint64_t reduced, A* acc, const Lift& lift, const Combine& combine) const {
    fold_block<A, T>(block_, reduced, acc, lift, combine);
  }

 private:
  NDArray block_;
};

/// The elements of a fused elementwise expression's block, evaluated tile by
/// tile as they are folded (never materialised); each fold evaluates it again.
class TileSource {
 public:
  TileSource(Program program, std::span<const NDArray> leaves, Shape shape)
      : program_(std::move(program)), leaves_(leaves), shape_(std::move(shape)) {}
  DType dtype() const noexcept { return program_dtype(program_); }
  const Shape& shape() const noexcept { return shape_; }
  /// The expression with a cast to `t` appended.
  TileSource as(DType t) const;
  template <class A, class T, class Lift, class Combine>
  void fold(std::uint64_t reduced, A* acc, const Lift& lift, const Combine& combine) const {
    const Runs runs(shape_, reduced);
    for_each_tile(program_, leaves_, shape_, [&](std::int64_t offset, const void* values, std::int64_t count) {
      const T* tile = static_cast<const T*>(values);
      runs.for_each(offset, count, [&](std::int64_t first, std::int64_t n, std::int64_t out, std::int64_t out_step) {
        fold_run<A, T>(tile + first, n, 1, acc, out, out_step, lift, combine);
      });
    });
  }

 private:
  Program program_;
  std::span<const NDArray> leaves_;
  Shape shape_;
};

/// Partials of the one-field reductions and ptp (reduce.cpp), and of the
/// moment ones (reduce_moments.cpp), from either source.
template <class Source>
NDArray simple_partial(const ReduceSpec& spec, const Source& source);
template <class Source>
NDArray moments_partial(const ReduceSpec& spec, const Source& source);

}  // namespace weft::array::kernels
