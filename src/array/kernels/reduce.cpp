// reduce.cpp - reduction kernels: partials, merging and finishing of the
// one-field reductions (sum, prod, min, max, any, all, count_nonzero), ptp,
// and the dispatch to the moment and arg kernels (reduce_moments.cpp,
// reduce_arg.cpp).
#include "reduce.hpp"

#include <limits>
#include <string>

#include "weft/error.hpp"

namespace weft::array::kernels {

LineLoop::LineLoop(std::span<const std::int64_t> shape, std::span<const std::int64_t> strides0,
                   std::span<const std::int64_t> strides1, std::span<const std::int64_t> strides2) {
  const std::span<const std::int64_t> in[kOffsets] = {strides0, strides1, strides2};
  std::vector<std::int64_t> extents;
  std::vector<std::int64_t> strides[kOffsets];
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) return;  // no elements: length_ stays 0
    if (shape[d] == 1) continue;
    bool merges = !extents.empty();
    for (int k = 0; k < kOffsets && merges; ++k) merges = strides[k].back() == in[k][d] * shape[d];
    if (merges) {
      extents.back() *= shape[d];
      for (int k = 0; k < kOffsets; ++k) strides[k].back() = in[k][d];
    } else {
      extents.push_back(shape[d]);
      for (int k = 0; k < kOffsets; ++k) strides[k].push_back(in[k][d]);
    }
  }
  if (extents.empty()) {  // one element
    length_ = 1;
    return;
  }
  length_ = extents.back();
  extents.pop_back();
  outer_ = std::move(extents);
  for (int k = 0; k < kOffsets; ++k) {
    step_[k] = strides[k].back();
    strides[k].pop_back();
    strides_[k] = std::move(strides[k]);
  }
}

std::vector<std::int64_t> position_strides(std::span<const std::int64_t> shape, std::uint64_t reduced) {
  std::vector<std::int64_t> strides(shape.size(), 0);
  std::int64_t stride = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    if (reduced >> d & 1) continue;
    strides[d] = stride;
    stride *= shape[d];
  }
  return strides;
}

Shape kept_shape(std::span<const std::int64_t> shape, std::uint64_t reduced) {
  Shape out(shape.begin(), shape.end());
  for (std::size_t d = 0; d < out.size(); ++d)
    if (reduced >> d & 1) out[d] = 1;
  return out;
}

DType moment_dtype(DType input) { return is_complex(input) ? DType::complex128 : DType::float64; }

PartialLayout partial_layout(const ReduceSpec& spec) {
  switch (spec.op) {
    case ReduceOp::sum:
    case ReduceOp::prod:
    case ReduceOp::nansum:
    case ReduceOp::nanprod: return {1, spec.out};
    case ReduceOp::min:
    case ReduceOp::max:
    case ReduceOp::nanmin:
    case ReduceOp::nanmax: return {1, spec.input};
    case ReduceOp::ptp: return {2, spec.input};
    case ReduceOp::any:
    case ReduceOp::all: return {1, DType::bool_};
    case ReduceOp::count_nonzero: return {1, DType::int64};
    case ReduceOp::mean:
    case ReduceOp::nanmean:
    case ReduceOp::average_weights: return {2, moment_dtype(spec.input)};
    case ReduceOp::var:
    case ReduceOp::nanvar:
    case ReduceOp::std:
    case ReduceOp::nanstd:
    case ReduceOp::moment: return {std::max(spec.order, 1) + 1, moment_dtype(spec.input)};
    case ReduceOp::argmin:
    case ReduceOp::argmax:
    case ReduceOp::nanargmin:
    case ReduceOp::nanargmax: return {1 + arg_value_words(spec.input), DType::int64};
  }
  return {1, spec.out};
}

std::int64_t positions(const NDArray& partial) { return partial.size() / partial.shape()[0]; }

Shape result_shape(const ReduceSpec& spec, const NDArray& partial) {
  Shape out;
  for (int d = 0; d < spec.ndim; ++d)
    if (spec.keepdims || !(spec.reduced >> d & 1)) out.push_back(partial.shape()[d + 1]);
  return out;
}

namespace {

template <class T>
T highest() {
  if constexpr (std::is_same_v<T, bool>) return true;
  else if constexpr (requires { typename T::value_type; })
    return T(std::numeric_limits<typename T::value_type>::infinity(),
             std::numeric_limits<typename T::value_type>::infinity());
  else if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
  else return std::numeric_limits<T>::max();
}
template <class T>
T lowest() {
  if constexpr (std::is_same_v<T, bool>) return false;
  else if constexpr (requires { typename T::value_type; })
    return T(-std::numeric_limits<typename T::value_type>::infinity(),
             -std::numeric_limits<typename T::value_type>::infinity());
  else if constexpr (std::numeric_limits<T>::has_infinity) return -std::numeric_limits<T>::infinity();
  else return std::numeric_limits<T>::lowest();
}
template <class T>
T quiet_nan() {
  if constexpr (requires { typename T::value_type; })
    return T(std::numeric_limits<typename T::value_type>::quiet_NaN(), 0);
  else return std::numeric_limits<T>::quiet_NaN();
}

// One-field reductions (Add, Multiply, SkipNan in reduce.hpp). `Max` flips
// min to max.
template <class T, bool Max>
struct Extreme {
  static T identity() { return Max ? lowest<T>() : highest<T>(); }
  static T lift(T v) { return v; }
  static bool better(const T& a, const T& b) { return Max ? less(b, a) : less(a, b); }
  // NaN wins (propagates), as in NumPy.
  static T combine(T a, T b) {
    if (is_nan(a)) return a;
    if (is_nan(b) || better(b, a)) return b;
    return a;
  }
};
// NaN is "no value yet": it loses to any number, and an all-NaN slice stays NaN.
template <class T, bool Max>
struct NanExtreme : Extreme<T, Max> {
  static T identity() {
    if constexpr (std::is_floating_point_v<T> || requires { typename T::value_type; }) return quiet_nan<T>();
    else return Extreme<T, Max>::identity();
  }
  static T combine(T a, T b) {
    if (is_nan(a)) return b;
    if (is_nan(b) || !Extreme<T, Max>::better(b, a)) return a;
    return b;
  }
};
template <class T, bool All>
struct Truth {
  static bool identity() { return All; }
  static bool lift(T v) { return v != T(0); }
  static bool combine(bool a, bool b) { return All ? (a && b) : (a || b); }
};
template <class T>
struct CountNonzero {
  static std::int64_t identity() { return 0; }
  static std::int64_t lift(T v) { return v != T(0) ? 1 : 0; }
  static std::int64_t combine(std::int64_t a, std::int64_t b) { return a + b; }
};

// Calls f(Op{}) with the one-field operation of `op` on element type T (for
// sum/prod: T is the accumulation type); false when op has several fields.
template <class T, class F>
bool with_simple_op(ReduceOp op, F&& f) {
  switch (op) {
    case ReduceOp::sum: f(Add<T>{}); return true;
    case ReduceOp::prod: f(Multiply<T>{}); return true;
    case ReduceOp::nansum: f(SkipNan<Add<T>, T>{}); return true;
    case ReduceOp::nanprod: f(SkipNan<Multiply<T>, T>{}); return true;
    case ReduceOp::min: f(Extreme<T, false>{}); return true;
    case ReduceOp::max: f(Extreme<T, true>{}); return true;
    case ReduceOp::nanmin: f(NanExtreme<T, false>{}); return true;
    case ReduceOp::nanmax: f(NanExtreme<T, true>{}); return true;
    case ReduceOp::any: f(Truth<T, false>{}); return true;
    case ReduceOp::all: f(Truth<T, true>{}); return true;
    case ReduceOp::count_nonzero: f(CountNonzero<T>{}); return true;
    default: return false;
  }
}

bool accumulates_in_result(ReduceOp op) {
  return op == ReduceOp::sum || op == ReduceOp::prod || op == ReduceOp::nansum || op == ReduceOp::nanprod;
}

template <class Op, class A, class T, class Source>
void fold_simple(const Source& source, std::uint64_t reduced, A* acc) {
  source.template fold<A, T>(reduced, acc, [](const T& v, std::int64_t) { return Op::lift(v); },
                             [](const A& a, const A& b) { return Op::combine(a, b); });
}

template <class Op, class A>
void fill_identity(A* acc, std::int64_t n) {
  std::fill(acc, acc + n, static_cast<A>(Op::identity()));
}

template <class Op, class A>
void merge_simple(A* into, const A* from, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) into[i] = Op::combine(into[i], from[i]);
}

// Merges `from` into `into` (a partial this kernel owns).
void merge_partial(const ReduceSpec& spec, NDArray& into, const NDArray& from) {
  if (into.shape() != from.shape() || into.dtype() != from.dtype())
    throw ValueError("bad-partial", "reduction partials of shape " + shape_str(into.shape()) + " and " +
                                        shape_str(from.shape()) + " cannot be merged");
  if (is_moment_op(spec.op)) return merge_moments(spec, into, from);
  if (is_arg_op(spec.op)) return merge_args(spec, into, from);
  const NDArray src = from.contiguous();
  dispatch(into.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* a = into.data<T>();
    const T* b = src.data<T>();
    if (spec.op == ReduceOp::ptp) {
      const std::int64_t m = positions(into);
      merge_simple<Extreme<T, false>>(a, b, m);
      merge_simple<Extreme<T, true>>(a + m, b + m, m);
      return;
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (spec.op == ReduceOp::any || spec.op == ReduceOp::all) {
        if (spec.op == ReduceOp::any) merge_simple<Truth<bool, false>>(a, b, into.size());
        else merge_simple<Truth<bool, true>>(a, b, into.size());
        return;
      }
    }
    // count_nonzero: int64 sums. Other ops: the partial's dtype is the op's.
    const ReduceOp op = spec.op == ReduceOp::count_nonzero ? ReduceOp::sum : spec.op;
    with_simple_op<T>(op, [&](auto o) {
      using Op = decltype(o);
      if constexpr (std::is_same_v<std::remove_cvref_t<decltype(Op::identity())>, T>)
        merge_simple<Op>(a, b, into.size());
    });
  });
}

NDArray merged(const ReduceSpec& spec, const std::vector<NDArray>& partials) {
  if (partials.empty()) throw ValueError("bad-partial", "a reduction step was given no partials");
  NDArray into = partials[0].copy();
  for (std::size_t i = 1; i < partials.size(); ++i) merge_partial(spec, into, partials[i]);
  return into;
}

NDArray finish_simple(const ReduceSpec& spec, const NDArray& partial) {
  const Shape shape = result_shape(spec, partial);
  if (spec.op != ReduceOp::ptp) return partial.reshape(shape).astype(spec.out);
  NDArray out(partial.dtype(), shape);
  dispatch(partial.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      const std::int64_t m = positions(partial);
      const T* p = partial.data<T>();
      T* o = out.data<T>();
      for (std::int64_t i = 0; i < m; ++i) o[i] = static_cast<T>(p[m + i] - p[i]);
    }
  });
  return out.astype(spec.out);
}

}  // namespace

template <class Source>
NDArray simple_partial(const ReduceSpec& spec, const Source& source) {
  const Source in = accumulates_in_result(spec.op) ? source.as(spec.out) : source;
  const PartialLayout layout = partial_layout(spec);
  Shape shape = kept_shape(in.shape(), spec.reduced);
  shape.insert(shape.begin(), layout.fields);
  NDArray out(layout.dtype, shape);
  dispatch(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (spec.op == ReduceOp::ptp) {
      T* acc = out.data<T>();
      const std::int64_t m = positions(out);
      fill_identity<Extreme<T, false>>(acc, m);
      fill_identity<Extreme<T, true>>(acc + m, m);
      fold_simple<Extreme<T, false>, T, T>(in, spec.reduced, acc);
      fold_simple<Extreme<T, true>, T, T>(in, spec.reduced, acc + m);
      return;
    }
    with_simple_op<T>(spec.op, [&](auto op) {
      using Op = decltype(op);
      using A = std::remove_cvref_t<decltype(Op::identity())>;
      A* acc = out.data<A>();
      fill_identity<Op>(acc, out.size());
      fold_simple<Op, A, T>(in, spec.reduced, acc);
    });
  });
  return out;
}

template NDArray simple_partial(const ReduceSpec&, const BlockSource&);
template NDArray simple_partial(const ReduceSpec&, const TileSource&);

Runs::Runs(std::span<const std::int64_t> shape, std::uint64_t reduced) {
  const std::vector<std::int64_t> out = position_strides(shape, reduced);
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!extents_.empty() && out_strides_.back() == out[d] * shape[d]) {
      extents_.back() *= shape[d];
      out_strides_.back() = out[d];
    } else {
      extents_.push_back(shape[d]);
      out_strides_.push_back(out[d]);
    }
  }
  if (extents_.empty()) {
    extents_.push_back(1);
    out_strides_.push_back(0);
  }
}

TileSource TileSource::as(DType t) const {
  if (t == dtype()) return *this;
  Program program = program_;
  Instr cast;
  cast.op = Op::cast;
  cast.dtype = t;
  cast.arg_dtype = dtype();
  cast.args[0] = static_cast<std::int32_t>(program.size() - 1);
  program.push_back(cast);
  return TileSource(std::move(program), leaves_, shape_);
}

NDArray reduce_partial(const ReduceSpec& spec, const NDArray& block) {
  const BlockSource source(block);
  return is_moment_op(spec.op) ? moments_partial(spec, source) : simple_partial(spec, source);
}

NDArray reduce_fused_partial(const ReduceSpec& spec, const Program& program, const Shape& block_shape,
                             const std::vector<NDArray>& leaves) {
  if (!fusable(spec.op))
    throw ValueError("bad-partial", "arg reductions do not evaluate fused expressions in their partials");
  const TileSource source(program, leaves, block_shape);
  return is_moment_op(spec.op) ? moments_partial(spec, source) : simple_partial(spec, source);
}

NDArray reduce_combine(const ReduceSpec& spec, const std::vector<NDArray>& partials) {
  return merged(spec, partials);
}

NDArray reduce_aggregate(const ReduceSpec& spec, const std::vector<NDArray>& partials) {
  const NDArray all = merged(spec, partials);
  if (is_moment_op(spec.op)) return finish_moments(spec, all);
  if (is_arg_op(spec.op)) return finish_args(spec, all);
  return finish_simple(spec, all);
}

}  // namespace weft::array::kernels
