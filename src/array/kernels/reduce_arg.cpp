// reduce_arg.cpp - argmin/argmax kernels: per output position the best
// value so far and its index in the result's terms (along the axis, or into
// the flattened array). Ties go to the smaller index, so the result does not
// depend on the order partials merge in; NaN beats numbers (argmin/argmax)
// or never counts (nanargmin/nanargmax, whose "none yet" index is -1).
#include <cstring>

#include "reduce.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {

namespace {

// A partial's fields: index (field 0), then the value's bytes in int64 words.
template <class T, class Word = std::int64_t>
struct ArgFields {
  Word* data;      // int64 or const int64
  std::int64_t m;  // positions
  Word& index(std::int64_t o) const { return data[o]; }
  T value(std::int64_t o) const {
    std::int64_t words[(sizeof(T) + 7) / 8];
    for (std::size_t w = 0; w < std::size(words); ++w) words[w] = data[(1 + w) * m + o];
    T v;
    std::memcpy(&v, words, sizeof(T));
    return v;
  }
  void set(std::int64_t o, const T& v, std::int64_t i) const {
    std::int64_t words[(sizeof(T) + 7) / 8] = {};
    std::memcpy(words, &v, sizeof(T));
    for (std::size_t w = 0; w < std::size(words); ++w) data[(1 + w) * m + o] = words[w];
    data[o] = i;
  }
};

// Offers value v at index i to position o.
template <class T>
void offer(ReduceOp op, const ArgFields<T>& f, std::int64_t o, const T& v, std::int64_t i) {
  const bool skip_nan = op == ReduceOp::nanargmin || op == ReduceOp::nanargmax;
  const bool maximum = op == ReduceOp::argmax || op == ReduceOp::nanargmax;
  const bool v_nan = is_nan(v);
  if (skip_nan && v_nan) return;
  const std::int64_t held = f.index(o);
  if (held < 0) return f.set(o, v, i);
  const T best = f.value(o);
  const bool best_nan = is_nan(best);
  bool better;
  bool tie;
  if (v_nan || best_nan) {
    better = v_nan && !best_nan;
    tie = v_nan && best_nan;
  } else {
    better = maximum ? less(best, v) : less(v, best);
    tie = !less(v, best) && !less(best, v);
  }
  if (better || (tie && i < held)) f.set(o, v, i);
}

}  // namespace

NDArray reduce_arg_partial(const ReduceSpec& spec, const std::vector<std::int64_t>& placement,
                           const NDArray& block) {
  const PartialLayout layout = partial_layout(spec);
  Shape shape = kept_shape(block.shape(), spec.reduced);
  shape.insert(shape.begin(), layout.fields);
  NDArray out(layout.dtype, shape);
  std::int64_t* data = out.data<std::int64_t>();
  const std::int64_t m = positions(out);
  std::fill(data, data + out.size(), std::int64_t{0});
  std::fill(data, data + m, std::int64_t{-1});
  const std::size_t nd = block.shape().size();
  if (placement.size() != 2 * nd)
    throw ValueError("bad-partial", "arg reduction placement has " + std::to_string(placement.size()) +
                                        " entries for a " + std::to_string(nd) + "-d block");
  const std::span<const std::int64_t> index_strides(placement.data() + nd, nd);
  std::int64_t base = 0;
  for (std::size_t d = 0; d < nd; ++d) base += placement[d] * index_strides[d];
  dispatch(block.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const ArgFields<T> fields{data, m};
    const T* p = block.data<T>();
    const LineLoop lines(block.shape(), block.strides(), position_strides(block.shape(), spec.reduced),
                         index_strides);
    const std::int64_t n = lines.length();
    lines.for_each([&](std::int64_t in, std::int64_t o, std::int64_t i) {
      for (std::int64_t k = 0; k < n; ++k)
        offer(spec.op, fields, o + k * lines.step(1), p[in + k * lines.step(0)], base + i + k * lines.step(2));
    });
  });
  return out;
}

void merge_args(const ReduceSpec& spec, NDArray& into, const NDArray& from) {
  const NDArray src = from.contiguous();
  const std::int64_t m = positions(into);
  dispatch(spec.input, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const ArgFields<T> a{into.data<std::int64_t>(), m};
    const ArgFields<T, const std::int64_t> b{src.data<std::int64_t>(), m};
    for (std::int64_t o = 0; o < m; ++o)
      if (b.index(o) >= 0) offer(spec.op, a, o, b.value(o), b.index(o));
  });
}

NDArray finish_args(const ReduceSpec& spec, const NDArray& partial) {
  const std::int64_t m = positions(partial);
  const std::int64_t* p = partial.data<std::int64_t>();
  NDArray out(DType::int64, result_shape(spec, partial));
  std::int64_t* o = out.data<std::int64_t>();
  for (std::int64_t i = 0; i < m; ++i) {
    if (p[i] < 0)
      throw ValueError("all-nan-slice", std::string(spec.op == ReduceOp::nanargmin ? "nanargmin" : "nanargmax") +
                                            ": all-NaN slice encountered");
    o[i] = p[i];
  }
  return out;
}

}  // namespace weft::array::kernels
