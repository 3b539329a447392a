// src/array/kernels/creation.cpp - block kernels of the creation functions.
#include "creation.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "weft/error.hpp"

namespace weft::array::kernels {

namespace {

template <class T>
struct IsComplex : std::false_type {
  using real = T;
};
template <class R>
struct IsComplex<std::complex<R>> : std::true_type {
  using real = R;
};

// W (double or std::complex<double>) as T, as NumPy's astype converts.
template <class T, class W>
T convert(const W& w) {
  if constexpr (IsComplex<T>::value) {
    using R = typename T::value_type;
    if constexpr (IsComplex<W>::value) return T(static_cast<R>(w.real()), static_cast<R>(w.imag()));
    else return T(static_cast<R>(w), R(0));
  } else if constexpr (IsComplex<W>::value) {
    if constexpr (std::is_same_v<T, bool>) return w != W(0);
    else return static_cast<T>(w.real());
  } else if constexpr (std::is_same_v<T, bool>) {
    return w != W(0);
  } else {
    return static_cast<T>(w);
  }
}

// Fills contiguous `out` with offset + the coordinate of each element along `dim`.
void fill_axis_positions(NDArray& out, int dim, std::int64_t offset) {
  const Shape& shape = out.shape();
  const std::int64_t extent = shape[static_cast<std::size_t>(dim)];
  const std::int64_t outer = shape_size(std::span(shape).first(static_cast<std::size_t>(dim)));
  const std::int64_t inner = shape_size(std::span(shape).subspan(static_cast<std::size_t>(dim) + 1));
  dispatch(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t e = 0; e < extent; ++e) {
        const T value = convert<T>(offset + e);
#pragma omp simd
        for (std::int64_t i = 0; i < inner; ++i) p[i] = value;
        p += inner;
      }
  });
}

// A block result as the caller declared it: the same shape, converted to dtype.
NDArray conform(NDArray result, const Shape& shape, DType dtype, std::string_view op) {
  if (result.shape() != shape)
    throw ValueError("block-mismatch", std::string(op) + ": the function returned an array of shape " +
                                           shape_str(result.shape()) + " for a block of shape " +
                                           shape_str(shape));
  return result.dtype() == dtype ? result : result.astype(dtype);
}

}  // namespace

void check_shape(const Shape& shape, std::string_view op) {
  for (std::int64_t extent : shape)
    if (extent < 0)
      throw ValueError("bad-shape", std::string(op) + ": negative dimensions are not allowed: shape " +
                                        shape_str(shape));
}

std::vector<std::vector<std::int64_t>> all_block_offsets(const Chunks& chunks) {
  std::vector<std::vector<std::int64_t>> out;
  out.reserve(chunks.size());
  for (const auto& axis : chunks) out.push_back(block_offsets(axis));
  return out;
}

Shape block_start(const std::vector<std::vector<std::int64_t>>& offsets, std::span<const std::int64_t> index) {
  Shape start(index.size());
  for (std::size_t a = 0; a < index.size(); ++a) start[a] = offsets[a][static_cast<std::size_t>(index[a])];
  return start;
}

std::int64_t flat_block_index(std::span<const std::int64_t> grid, std::span<const std::int64_t> index) {
  std::int64_t flat = 0;
  for (std::size_t a = 0; a < grid.size(); ++a) flat = flat * grid[a] + index[a];
  return flat;
}

ElementBytes ElementBytes::of(const Scalar& value, DType dtype) {
  ElementBytes out;
  dispatch(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    static_assert(sizeof(T) <= sizeof out.bytes);
    const T v = value.as<T>();
    std::memcpy(out.bytes.data(), &v, sizeof v);
  });
  return out;
}

NDArray fill_block(const FillSpec& spec, const Shape& shape) {
  NDArray out(spec.dtype, shape);
  if (!spec.initialise) return out;
  dispatch(spec.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::fill_n(out.data<T>(), out.size(), spec.value.get<T>());
  });
  return out;
}

NDArray arange_block(const ArangeSpec& spec) {
  NDArray out(spec.dtype, Shape{spec.length});
  dispatch(spec.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    const T first = spec.first.get<T>();
    const T second = spec.second.get<T>();
    // NumPy stores the first two values, then fills from them (its dtype's `fill`).
    std::int64_t i = 0;
    for (; i < spec.length && spec.offset + i < 2; ++i) p[i] = spec.offset + i == 0 ? first : second;
    if constexpr (std::is_same_v<T, bool>) {
      // arange checks that a bool result has at most two values.
    } else if constexpr (std::is_integral_v<T>) {
      // Modulo 2^64, as NumPy's C arithmetic wraps, without signed overflow.
      const std::uint64_t start = static_cast<std::uint64_t>(first);
      const std::uint64_t delta = static_cast<std::uint64_t>(second) - start;
#pragma omp simd
      for (std::int64_t j = i; j < spec.length; ++j)
        p[j] = static_cast<T>(start + static_cast<std::uint64_t>(spec.offset + j) * delta);
    } else {
      const T delta = second - first;
      using R = typename IsComplex<T>::real;
#pragma omp simd
      for (std::int64_t j = i; j < spec.length; ++j)
        p[j] = first + static_cast<R>(spec.offset + j) * delta;
    }
  });
  return out;
}

namespace {

template <class W, class T>
void linspace_fill(const LinspaceSpec& spec, T* p) {
  auto as_w = [](const std::complex<double>& z) {
    if constexpr (IsComplex<W>::value) return z;
    else return z.real();
  };
  const W start = as_w(spec.start);
  const W stop = as_w(spec.stop);
  const W delta = as_w(spec.delta);
  const W step = as_w(spec.step);
  const bool floor_integers = std::is_integral_v<T> && !std::is_same_v<T, bool>;
  for (std::int64_t i = 0; i < spec.length; ++i) {
    const std::int64_t g = spec.offset + i;
    const double position = static_cast<double>(g);
    // NumPy: y = arange(num); y /= div; y *= delta (step 0) or y *= step; y += start.
    W y;
    if (spec.last_is_stop && g == spec.num - 1) y = stop;
    else if (!spec.has_step) y = W(position) * delta + start;
    else if (spec.step_is_zero) y = W(position / spec.div) * delta + start;
    else y = W(position) * step + start;
    if constexpr (!IsComplex<W>::value)
      if (floor_integers) y = std::floor(y);
    p[i] = convert<T>(y);
  }
}

}  // namespace

NDArray linspace_block(const LinspaceSpec& spec) {
  NDArray out(spec.dtype, Shape{spec.length});
  dispatch(spec.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (spec.complex_math) linspace_fill<std::complex<double>>(spec, out.data<T>());
    else linspace_fill<double>(spec, out.data<T>());
  });
  return out;
}

NDArray eye_block(const EyeSpec& spec, const Shape& shape) {
  NDArray out(spec.dtype, shape, Scalar(0));
  const std::int64_t rows = shape[0];
  const std::int64_t cols = shape[1];
  dispatch(spec.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t c = spec.row0 + r + spec.k - spec.col0;
      if (c >= 0 && c < cols) p[r * cols + c] = convert<T>(1.0);
    }
  });
  return out;
}

NDArray diag_embed_block(const NDArray& v) {
  const std::int64_t n = v.shape()[0];
  NDArray out(v.dtype(), Shape{n, n}, Scalar(0));
  const std::int64_t stride = v.strides()[0];
  dispatch(v.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = v.data<T>();
    T* p = out.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i * (n + 1)] = in[i * stride];
  });
  return out;
}

NDArray diag_extract_block(const DiagExtractSpec& spec, const NDArray& block) {
  NDArray out(block.dtype(), Shape{spec.length});
  const std::int64_t step = block.strides()[0] + block.strides()[1];
  dispatch(block.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = block.data<T>() + spec.row * block.strides()[0] + spec.col * block.strides()[1];
    T* p = out.data<T>();
    for (std::int64_t t = 0; t < spec.length; ++t) p[t] = in[t * step];
  });
  return out;
}

NDArray indices_block(const IndicesSpec& spec, const Shape& shape) {
  NDArray out(spec.dtype, shape);
  fill_axis_positions(out, spec.axis + 1, spec.offset);
  return out;
}

NDArray broadcast_along_block(int axis, const Shape& shape, const NDArray& v) {
  Shape laid(shape.size(), 1);
  laid[static_cast<std::size_t>(axis)] = shape[static_cast<std::size_t>(axis)];
  return v.reshape(std::move(laid)).broadcast_to(shape);
}

std::vector<NDArray> coordinate_arrays(std::span<const std::int64_t> offset, const Shape& shape, DType dtype) {
  std::vector<NDArray> out;
  out.reserve(shape.size());
  for (std::size_t a = 0; a < shape.size(); ++a) {
    NDArray coordinates(dtype, shape);
    fill_axis_positions(coordinates, static_cast<int>(a), offset[a]);
    out.push_back(std::move(coordinates));
  }
  return out;
}

NDArray fromfunction_block(IndexFunction f, const Shape& offset, const Shape& shape, DType coord_dtype,
                           DType dtype) {
  return conform(f(coordinate_arrays(offset, shape, coord_dtype)), shape, dtype, "fromfunction");
}

NDArray block_function_block(BlockFunction f, const std::vector<std::int64_t>& index, const Shape& shape,
                             DType dtype) {
  return conform(f(index, shape), shape, dtype, "from_block_function");
}

}  // namespace weft::array::kernels
