// reduce_moments.cpp - mean, var, std, moment and weighted-average kernels.
//
// Per block: the count, then the mean (from a pairwise sum), then the sums
// of the powers of the deviations from it (two passes, as NumPy's var).
// Partials of two blocks merge with Pebay's formula for central power sums
// (Chan's for order 2): M_p = Ma_p + Mb_p + sum_{k=1}^{p-2} C(p,k) d^k
// [(-nb/n)^k Ma_{p-k} + (na/n)^k Mb_{p-k}] + (na nb d / n)^p [1/nb^{p-1} -
// (-1/na)^{p-1}], d = mean_b - mean_a, so no order of merging loses
// precision. Complex var uses |x - mean|^2 and d's squared modulus.
#include <cmath>
#include <complex>

#include "reduce.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {

namespace {

bool skips_nan(ReduceOp op) {
  return op == ReduceOp::nanmean || op == ReduceOp::nanvar || op == ReduceOp::nanstd;
}
bool is_mean_like(ReduceOp op) {
  return op == ReduceOp::mean || op == ReduceOp::nanmean || op == ReduceOp::average_weights;
}

template <class A, class T>
A to_acc(const T& v) {
  if constexpr (requires { v.imag(); }) return A(v.real(), v.imag());
  else return A(static_cast<double>(v));
}

// (x - mean)^k; for complex numbers (var only) |x - mean|^2.
template <class A>
A deviation_power(A d, int k) {
  if constexpr (requires { d.imag(); }) {
    return A(std::norm(d), 0.0);
  } else {
    A r = d;
    for (int i = 1; i < k; ++i) r *= d;
    return r;
  }
}

// Two loops rather than one testing skip_nan per element: the test kept the
// plain sum from vectorising into bare adds (a NaN mask per element).
template <class A, class T, class Source>
void fold_sum(const Source& source, std::uint64_t reduced, A* acc, bool skip_nan) {
  const auto add = [](const A& a, const A& b) { return a + b; };
  if (skip_nan)
    source.template fold<A, T>(
        reduced, acc, [](const T& v, std::int64_t) { return is_nan(v) ? A(0) : to_acc<A>(v); }, add);
  else
    source.template fold<A, T>(reduced, acc, [](const T& v, std::int64_t) { return to_acc<A>(v); }, add);
}

template <class A, class T, class Source>
void block_moments(const ReduceSpec& spec, const Source& source, NDArray& out) {
  A* acc = out.data<A>();
  const std::int64_t m = positions(out);
  const int fields = static_cast<int>(out.shape()[0]);
  const bool skip_nan = skips_nan(spec.op);
  std::fill(acc, acc + out.size(), A(0));
  A* count = acc;
  A* second = acc + m;  // mean-like: the sum; else the mean
  if (skip_nan) {
    source.template fold<A, T>(
        spec.reduced, count, [](const T& v, std::int64_t) { return A(is_nan(v) ? 0.0 : 1.0); },
        [](const A& a, const A& b) { return a + b; });
  } else {
    double n = 1;
    for (std::size_t d = 0; d < source.shape().size(); ++d)
      if (spec.reduced >> d & 1) n *= static_cast<double>(source.shape()[d]);
    std::fill(count, count + m, A(n));
  }
  fold_sum<A, T>(source, spec.reduced, second, skip_nan);
  if (is_mean_like(spec.op)) return;
  for (std::int64_t o = 0; o < m; ++o) second[o] = count[o] == A(0) ? A(0) : second[o] / count[o];
  const A* mean = second;
  for (int k = 2; k < fields; ++k)
    source.template fold<A, T>(
        spec.reduced, acc + k * m,
        [skip_nan, mean, k](const T& v, std::int64_t o) {
          return skip_nan && is_nan(v) ? A(0) : deviation_power(to_acc<A>(v) - mean[o], k);
        },
        [](const A& a, const A& b) { return a + b; });
}

double binomial(int n, int k) {
  double r = 1;
  for (int i = 1; i <= k; ++i) r = r * (n - k + i) / i;
  return r;
}

// Merges position o of b into a (fields of `fields` entries, `m` apart).
template <class A>
void merge_position(A* a, const A* b, std::int64_t m, int fields) {
  const double na = std::real(a[0]);
  const double nb = std::real(b[0]);
  if (nb == 0) return;
  if (na == 0) {
    for (int f = 0; f < fields; ++f) a[f * m] = b[f * m];
    return;
  }
  const double n = na + nb;
  const A d = b[m] - a[m];
  if constexpr (requires { d.imag(); }) {
    a[2 * m] += b[2 * m] + A(std::norm(d) * na * nb / n, 0.0);
  } else {
    // Highest power first: each uses the lower sums before they change.
    for (int p = fields - 1; p >= 2; --p) {
      A mp = a[p * m] + b[p * m];
      for (int k = 1; k <= p - 2; ++k)
        mp += binomial(p, k) * std::pow(d, k) *
              (std::pow(-nb / n, k) * a[(p - k) * m] + std::pow(na / n, k) * b[(p - k) * m]);
      mp += std::pow(na * nb * d / n, p) * (1.0 / std::pow(nb, p - 1) - std::pow(-1.0 / na, p - 1));
      a[p * m] = mp;
    }
  }
  a[m] += d * (nb / n);
  a[0] = A(n);
}

}  // namespace

template <class Source>
NDArray moments_partial(const ReduceSpec& spec, const Source& source) {
  const PartialLayout layout = partial_layout(spec);
  Shape shape = kept_shape(source.shape(), spec.reduced);
  shape.insert(shape.begin(), layout.fields);
  NDArray out(layout.dtype, shape);
  dispatch(source.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (requires { std::declval<T>().imag(); }) block_moments<std::complex<double>, T>(spec, source, out);
    else block_moments<double, T>(spec, source, out);
  });
  return out;
}
template NDArray moments_partial(const ReduceSpec&, const BlockSource&);
template NDArray moments_partial(const ReduceSpec&, const TileSource&);

void merge_moments(const ReduceSpec& spec, NDArray& into, const NDArray& from) {
  const NDArray src = from.contiguous();
  const std::int64_t m = positions(into);
  const int fields = static_cast<int>(into.shape()[0]);
  dispatch(into.dtype(), [&](auto tag) {
    using A = typename decltype(tag)::type;
    if constexpr (std::is_same_v<A, double> || std::is_same_v<A, std::complex<double>>) {
      A* a = into.data<A>();
      const A* b = src.data<A>();
      if (is_mean_like(spec.op)) {
#pragma omp simd
        for (std::int64_t i = 0; i < into.size(); ++i) a[i] += b[i];
      } else {
        for (std::int64_t o = 0; o < m; ++o) merge_position(a + o, b + o, m, fields);
      }
    }
  });
}

NDArray finish_moments(const ReduceSpec& spec, const NDArray& partial) {
  const std::int64_t m = positions(partial);
  const Shape shape = result_shape(spec, partial);
  return dispatch(partial.dtype(), [&](auto tag) -> NDArray {
    using A = typename decltype(tag)::type;
    if constexpr (std::is_same_v<A, double> || std::is_same_v<A, std::complex<double>>) {
      const A* p = partial.data<A>();
      if (is_mean_like(spec.op)) {
        NDArray out(partial.dtype(), shape);
        A* o = out.data<A>();
        for (std::int64_t i = 0; i < m; ++i) o[i] = spec.op == ReduceOp::average_weights ? p[i] : p[m + i] / p[i];
        return out.astype(spec.out);
      }
      NDArray out(DType::float64, shape);
      double* o = out.data<double>();
      const int order = spec.order;
      for (std::int64_t i = 0; i < m; ++i) {
        const double dof = std::real(p[i]) - spec.ddof;
        const double sums = order >= 2 ? std::real(p[order * m + i]) : 0.0;
        if (spec.op == ReduceOp::moment) {
          o[i] = order == 0 ? 1.0 : order == 1 ? 0.0 : dof < 0 ? std::nan("") : sums / dof;
        } else if (spec.op == ReduceOp::nanvar || spec.op == ReduceOp::nanstd) {
          o[i] = dof <= 0 ? std::nan("") : sums / dof;
        } else {
          o[i] = sums / std::max(dof, 0.0);
        }
        if (spec.op == ReduceOp::std || spec.op == ReduceOp::nanstd) o[i] = std::sqrt(o[i]);
      }
      return out.astype(spec.out);
    }
    throw ValueError("bad-partial", "mean/var partials must be float64 or complex128");
  });
}

NDArray reduce_weighted_partial(const ReduceSpec& spec, const NDArray& block, const NDArray& weights,
                                int weights_axis) {
  const DType acc = moment_dtype(spec.input);
  NDArray w = weights.astype(acc);
  if (weights_axis >= 0) {
    Shape line(block.shape().size(), 1);
    line[weights_axis] = w.size();
    w = w.reshape(line);
  }
  NDArray full_weights(acc, block.shape());
  full_weights.assign(w);  // broadcasts 1-d weights along their axis
  NDArray products(acc, block.shape());
  products.assign(block);
  Shape shape = kept_shape(block.shape(), spec.reduced);
  shape.insert(shape.begin(), 2);
  NDArray out(acc, shape);
  dispatch(acc, [&](auto tag) {
    using A = typename decltype(tag)::type;
    if constexpr (std::is_same_v<A, double> || std::is_same_v<A, std::complex<double>>) {
      A* prod = products.data<A>();
      const A* wt = full_weights.data<A>();
#pragma omp simd
      for (std::int64_t i = 0; i < products.size(); ++i) prod[i] *= wt[i];
      A* o = out.data<A>();
      std::fill(o, o + out.size(), A(0));
      fold_sum<A, A>(BlockSource(full_weights), spec.reduced, o, false);
      fold_sum<A, A>(BlockSource(products), spec.reduced, o + positions(out), false);
    }
  });
  return out;
}

}  // namespace weft::array::kernels
