// The contraction kernel: per block pair, a matrix view of each operand
// (no copy when its axes collapse to BLAS's layouts, transposed included),
// then gemm accumulating into the output block.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <complex>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "../../core/task_help.hpp"
#include "linalg.hpp"

namespace weft::array::kernels {
namespace {

/// BLAS runs single-threaded inside a block: on the threads scheduler's pool
/// its threads would compete with weft's for the same cores (and OpenBLAS's
/// spin), and on the sync scheduler too, because OpenBLAS's threaded gemm
/// rounds differently from its single-threaded one, and a block must come
/// out the same on every scheduler. The thread count is process-wide, so the
/// first kernel of a burst sets it and the last one restores it.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded() {
    std::lock_guard lock(mutex_);
    if (running_++ == 0) {
      saved_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~BlasSingleThreaded() {
    std::lock_guard lock(mutex_);
    if (--running_ == 0) openblas_set_num_threads(saved_);
  }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  static inline std::mutex mutex_;
  static inline int running_ = 0;
  static inline int saved_ = 1;
};

/// A group of axes seen as one: `extent` elements `stride` apart.
struct Collapsed {
  std::int64_t extent = 1;
  std::int64_t stride = 1;
};

/// The axes (outermost first) as one axis, when their strides allow it.
bool collapse(const NDArray& x, std::span<const int> axes, Collapsed& out) {
  out = {};
  bool started = false;
  for (auto it = axes.rbegin(); it != axes.rend(); ++it) {
    const std::int64_t n = x.shape()[*it];
    const std::int64_t s = x.strides()[*it];
    if (n == 0) {
      out = {0, 1};
      return true;
    }
    if (n == 1) continue;
    if (!started) {
      out = {n, s};
      started = true;
    } else if (s == out.stride * out.extent) {
      out.extent *= n;
    } else {
      return false;
    }
  }
  return true;
}

/// A rows x cols matrix in an operand block, per batch element.
template <class T>
struct MatrixOperand {
  NDArray holder;                      ///< keeps a converted or copied block alive
  const T* base = nullptr;
  std::vector<std::int64_t> batch_strides;  ///< per output batch axis (0: absent or broadcast)
  Collapsed rows, cols;
};

/// The matrix view of `block` with `row_axes` x `col_axes`, after converting
/// to T (and conjugating); a C-order copy when the axes do not collapse to a
/// layout gemm takes (`blas_layout`).
template <class T>
MatrixOperand<T> matrix_operand(NDArray block, const std::vector<int>& batch, const std::vector<int>& row_axes,
                                const std::vector<int>& col_axes, bool conj, bool blas_layout) {
  if (block.dtype() != dtype_of<T>) block = block.astype(dtype_of<T>);
  if constexpr (requires { typename T::value_type; }) {
    if (conj) {
      block = block.copy();
      T* p = block.data<T>();
      const std::int64_t n = block.size();
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) p[i] = std::conj(p[i]);
    }
  }
  auto fits = [&](const NDArray& x, MatrixOperand<T>& m) {
    if (!collapse(x, row_axes, m.rows) || !collapse(x, col_axes, m.cols)) return false;
    if (!blas_layout) return true;
    // A vector needs a positive stride (the leading dimension), a matrix a
    // row- or column-major layout.
    if (m.rows.extent <= 1) return m.cols.extent <= 1 || m.cols.stride >= 1;
    if (m.cols.extent <= 1) return m.rows.stride >= 1;
    const bool row_major = m.cols.stride == 1 && m.rows.stride >= m.cols.extent;
    const bool col_major = m.rows.stride == 1 && m.cols.stride >= m.rows.extent;
    return row_major || col_major;
  };
  MatrixOperand<T> m;
  if (!fits(block, m)) {
    // Batch axes first, so that the copy keeps their strides meaningful.
    std::vector<int> order;
    for (int axis : batch)
      if (axis >= 0) order.push_back(axis);
    order.insert(order.end(), row_axes.begin(), row_axes.end());
    order.insert(order.end(), col_axes.begin(), col_axes.end());
    std::vector<int> inverse(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) inverse[static_cast<std::size_t>(order[i])] = static_cast<int>(i);
    const NDArray copied = block.transpose(order).copy();
    // Read the copy through the original axis numbers.
    block = copied.transpose(inverse);
    fits(block, m);
  }
  m.batch_strides.reserve(batch.size());
  for (int axis : batch)
    m.batch_strides.push_back(axis < 0 || block.shape()[axis] == 1 ? 0 : block.strides()[axis]);
  m.base = block.template data<T>();
  m.holder = std::move(block);
  return m;
}

/// How gemm reads a collapsed matrix: transposed or not, and its leading dimension.
struct BlasMatrix {
  CBLAS_TRANSPOSE trans;
  int ld;
};

int blas_int(std::int64_t n) {
  if (n > INT_MAX)
    throw ValueError("value.too-large", "matmul: a block extent of " + std::to_string(n) +
                                            " exceeds what BLAS takes (2^31 - 1); use smaller chunks");
  return static_cast<int>(n);
}

BlasMatrix blas_matrix(const Collapsed& rows, const Collapsed& cols) {
  if (rows.extent <= 1) return {CblasNoTrans, blas_int(std::max<std::int64_t>(1, cols.extent))};
  if (cols.extent <= 1) return {CblasTrans, blas_int(std::max<std::int64_t>(1, rows.extent))};
  if (cols.stride == 1) return {CblasNoTrans, blas_int(rows.stride)};
  return {CblasTrans, blas_int(cols.stride)};
}

/// c (m x n, C order) = a @ b, or c += a @ b when accumulating.
template <class T>
void gemm(const T* a, const Collapsed& ar, const Collapsed& ac, const T* b, const Collapsed& br, const Collapsed& bc,
          T* c, bool accumulate) {
  const std::int64_t m = ar.extent, n = bc.extent, k = ac.extent;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) std::fill(c, c + m * n, T{});
    return;
  }
  if constexpr (std::is_floating_point_v<T> || requires { typename T::value_type; }) {
    // A vector whose elements are not adjacent goes to BLAS as the one row or
    // column it is, with the stride as the leading dimension.
    auto layout = [](const Collapsed& r, const Collapsed& cl) {
      if (r.extent <= 1 && cl.extent > 1 && cl.stride != 1) return BlasMatrix{CblasTrans, blas_int(cl.stride)};
      if (cl.extent <= 1 && r.extent > 1 && r.stride != 1) return BlasMatrix{CblasNoTrans, blas_int(r.stride)};
      return blas_matrix(r, cl);
    };
    const BlasMatrix la = layout(ar, ac), lb = layout(br, bc);
    const int M = blas_int(m), N = blas_int(n), K = blas_int(k);
    if constexpr (std::is_same_v<T, double>) {
      cblas_dgemm(CblasRowMajor, la.trans, lb.trans, M, N, K, 1.0, a, la.ld, b, lb.ld, accumulate ? 1.0 : 0.0, c, N);
    } else if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, la.trans, lb.trans, M, N, K, 1.0f, a, la.ld, b, lb.ld, accumulate ? 1.0f : 0.0f, c, N);
    } else {
      const T one(1), beta(accumulate ? 1 : 0);
      if constexpr (std::is_same_v<T, std::complex<double>>)
        cblas_zgemm(CblasRowMajor, la.trans, lb.trans, M, N, K, &one, a, la.ld, b, lb.ld, &beta, c, N);
      else
        cblas_cgemm(CblasRowMajor, la.trans, lb.trans, M, N, K, &one, a, la.ld, b, lb.ld, &beta, c, N);
    }
  } else {
    // Integers wrap as in NumPy: unsigned arithmetic, wide enough that the
    // product of two elements does not overflow the promoted type.
    using Wide = std::conditional_t<std::is_same_v<T, bool>, bool,
                                    std::conditional_t<(sizeof(T) <= 4), std::uint32_t, std::uint64_t>>;
    if (!accumulate) std::fill(c, c + m * n, T{});
    for (std::int64_t i = 0; i < m; ++i) {
      T* ci = c + i * n;
      for (std::int64_t p = 0; p < k; ++p) {
        const Wide aip = static_cast<Wide>(a[i * ar.stride + p * ac.stride]);
        const T* bp = b + p * br.stride;
        if constexpr (std::is_same_v<T, bool>) {
          if (!aip) continue;
          for (std::int64_t j = 0; j < n; ++j) ci[j] = ci[j] || bp[j * bc.stride];
        } else {
#pragma omp simd
          for (std::int64_t j = 0; j < n; ++j)
            ci[j] = static_cast<T>(static_cast<Wide>(ci[j]) + aip * static_cast<Wide>(bp[j * bc.stride]));
        }
      }
    }
  }
}

/// The contracted length of one gemm call. Slicing K costs no extra packing
/// (each call packs only its own panels), and the slice boundaries are where
/// idle threads may join a long contraction.
constexpr std::int64_t kSliceLength = 256;
/// Idle threads join only where a part would have at least this many rows
/// and the work left is at least kHelpWorthMadds multiply-adds (about a
/// millisecond): less would not pay for waking them.
constexpr std::int64_t kMinPartRows = 64;
constexpr double kHelpWorthMadds = 1 << 24;

/// One gemm call of a contraction: a block pair and a slice of its contracted length.
struct ContractStep {
  std::size_t pair;
  std::int64_t k0, k1;
};

template <class T>
void contract_typed(const ContractSpec& spec, const std::vector<NDArray>& as, const std::vector<NDArray>& bs,
                    NDArray& out, std::span<const std::int64_t> batch_shape) {
  constexpr bool blas = std::is_floating_point_v<T> || requires { typename T::value_type; };
  T* c = out.data<T>();
  const std::int64_t batch_count = shape_size(batch_shape);
  if (batch_count == 0 || out.size() == 0) return;
  const std::int64_t matrix_size = out.size() / batch_count;
  std::vector<MatrixOperand<T>> a_ops, b_ops;
  std::vector<ContractStep> steps;
  double madds_per_row = 0;  // over all steps (a double: block sizes multiplied may pass 2^63)
  for (std::size_t pair = 0; pair < as.size(); ++pair) {
    a_ops.push_back(matrix_operand<T>(as[pair], spec.a_batch, spec.a_rows, spec.a_sum, spec.conj_a, blas));
    b_ops.push_back(matrix_operand<T>(bs[pair], spec.b_batch, spec.b_sum, spec.b_cols, false, blas));
    const std::int64_t k = a_ops.back().cols.extent;
    const std::int64_t slices = std::max<std::int64_t>(1, (k + kSliceLength - 1) / kSliceLength);
    for (std::int64_t s = 0; s < slices; ++s) steps.push_back({pair, k * s / slices, k * (s + 1) / slices});
    madds_per_row += static_cast<double>(k) * static_cast<double>(b_ops.back().cols.extent * batch_count);
  }
  const std::int64_t m = a_ops.front().rows.extent, n = matrix_size / m;

  // Step `s` on output rows [r0, r1) of every batch element.
  auto run_step = [&](std::size_t s, std::int64_t r0, std::int64_t r1) {
    const ContractStep& step = steps[s];
    const MatrixOperand<T>& a = a_ops[step.pair];
    const MatrixOperand<T>& b = b_ops[step.pair];
    const Collapsed a_rows{r1 - r0, a.rows.stride}, a_cols{step.k1 - step.k0, a.cols.stride};
    const Collapsed b_rows{step.k1 - step.k0, b.rows.stride};
    const T* a_slice = a.base + r0 * a.rows.stride + step.k0 * a.cols.stride;
    const T* b_slice = b.base + step.k0 * b.rows.stride;
    std::vector<std::int64_t> index(batch_shape.size(), 0);
    std::int64_t a_offset = 0, b_offset = 0;
    for (std::int64_t e = 0; e < batch_count; ++e) {
      gemm<T>(a_slice + a_offset, a_rows, a_cols, b_slice + b_offset, b_rows, b.cols, c + e * matrix_size + r0 * n,
              s > 0);
      // Next batch element in C order, moving both operands' offsets along.
      for (std::size_t d = index.size(); d-- > 0;) {
        a_offset += a.batch_strides[d];
        b_offset += b.batch_strides[d];
        if (++index[d] < batch_shape[d]) break;
        a_offset -= a.batch_strides[d] * batch_shape[d];
        b_offset -= b.batch_strides[d] * batch_shape[d];
        index[d] = 0;
      }
    }
  };
  for (std::size_t s = 0; s < steps.size(); ++s) {
    const double madds_left = static_cast<double>(m) * madds_per_row * static_cast<double>(steps.size() - s) /
                              static_cast<double>(steps.size());
    const unsigned idle = m >= 2 * kMinPartRows && madds_left >= kHelpWorthMadds ? weft::detail::idle_helpers() : 0;
    if (idle > 0) {
      // The rows left are split among the idle threads and this one; each
      // part runs the remaining steps on its rows, so every element gets the
      // same gemm updates as without help.
      const auto parts = static_cast<unsigned>(std::min<std::int64_t>(idle + 1, m / kMinPartRows));
      weft::detail::run_parts(parts, [&](unsigned p) {
        const std::int64_t r0 = m * p / parts, r1 = m * (p + 1) / parts;
        for (std::size_t rest = s; rest < steps.size(); ++rest) run_step(rest, r0, r1);
      });
      return;
    }
    run_step(s, 0, m);
  }
}

}  // namespace

NDArray contract_blocks(const ContractSpec& spec, const std::vector<NDArray>& a, const std::vector<NDArray>& b) {
  const NDArray& a0 = a.front();
  const NDArray& b0 = b.front();
  Shape shape;
  for (std::size_t d = 0; d < spec.a_batch.size(); ++d) {
    const std::int64_t na = spec.a_batch[d] < 0 ? 1 : a0.shape()[spec.a_batch[d]];
    const std::int64_t nb = spec.b_batch[d] < 0 ? 1 : b0.shape()[spec.b_batch[d]];
    shape.push_back(na == 1 ? nb : na);
  }
  const Shape batch_shape = shape;
  for (int axis : spec.a_rows) shape.push_back(a0.shape()[axis]);
  for (int axis : spec.b_cols) shape.push_back(b0.shape()[axis]);
  NDArray out(spec.dtype, std::move(shape));
  BlasSingleThreaded blas_threads;
  dispatch(spec.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    contract_typed<T>(spec, a, b, out, batch_shape);
  });
  return out;
}

}  // namespace weft::array::kernels
