// ndarray.cpp - NDArray: memory, views, strided copies and conversions.
//
// Every elementwise walk (copy, astype, assign, fill, equals) goes through
// one strided loop: axes are coalesced first (a contiguous array is one run,
// a transposed one two nested runs), so the inner loop is as long as
// possible and contiguous runs become memcpy or a SIMD conversion loop.
#include "weft/array/ndarray.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <type_traits>
#include <utility>

#include "large_memory.hpp"

namespace weft::array {

namespace {

constexpr std::size_t kAlignment = 64;
// Arrays of a huge page or more get kept huge-page memory (large_memory.cpp);
// smaller ones come from the heap.
std::shared_ptr<void> allocate(std::size_t bytes) {
  if (bytes >= detail::kHugePage) return detail::allocate_large(bytes);
  const std::size_t rounded = std::max(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
  void* p = ::operator new(rounded, std::align_val_t{kAlignment});
  return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, std::align_val_t{kAlignment}); });
}

// Bytes of an array of `shape` and `dtype`; ValueError "value.bad-shape" for
// a negative extent or a size that does not fit in memory.
std::size_t checked_nbytes(std::span<const std::int64_t> shape, DType dtype) {
  std::size_t bytes = itemsize(dtype);
  for (std::int64_t extent : shape)
    if (extent < 0)
      throw ValueError("bad-shape", "negative dimensions are not allowed: shape " + shape_str(shape));
  for (std::int64_t extent : shape)
    if (__builtin_mul_overflow(bytes, static_cast<std::size_t>(extent), &bytes))
      throw ValueError("bad-shape", "an array of shape " + shape_str(shape) + " and dtype " +
                                        std::string(dtype_name(dtype)) + " is too big");
  return bytes;
}

// One element converted as NumPy's astype does (complex -> real drops the
// imaginary part; anything -> bool is "nonzero").
template <class To, class From>
inline To cast_element(From v) {
  constexpr bool from_complex = requires { typename From::value_type; };
  constexpr bool to_complex = requires { typename To::value_type; };
  if constexpr (std::is_same_v<To, From>) return v;
  else if constexpr (std::is_same_v<To, bool>) return v != From(0);
  else if constexpr (from_complex && to_complex)
    return To(static_cast<typename To::value_type>(v.real()), static_cast<typename To::value_type>(v.imag()));
  else if constexpr (from_complex) return static_cast<To>(v.real());
  else if constexpr (to_complex) return To(static_cast<typename To::value_type>(v), 0);
  else return static_cast<To>(v);
}

// A loop over N arrays of one shape: the shape with size-1 axes dropped and
// neighbouring axes merged where every operand's strides allow, and each
// operand's strides for it.
template <std::size_t N>
struct StridedLoop {
  Shape shape;
  std::array<Strides, N> strides;
};

// The loop over `shape` with size-1 axes dropped and axes merged (at least
// one axis: a single element is one run of length 1).
template <std::size_t N>
StridedLoop<N> make_loop(const Shape& shape, const std::array<const Strides*, N>& strides) {
  StridedLoop<N> loop;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] == 1) continue;
    bool mergeable = !loop.shape.empty();
    for (std::size_t k = 0; k < N && mergeable; ++k)
      mergeable = loop.strides[k].back() == (*strides[k])[axis] * shape[axis];
    if (mergeable) {
      loop.shape.back() *= shape[axis];
      for (std::size_t k = 0; k < N; ++k) loop.strides[k].back() = (*strides[k])[axis];
    } else {
      loop.shape.push_back(shape[axis]);
      for (std::size_t k = 0; k < N; ++k) loop.strides[k].push_back((*strides[k])[axis]);
    }
  }
  if (loop.shape.empty()) {
    loop.shape.push_back(1);
    for (std::size_t k = 0; k < N; ++k) loop.strides[k].push_back(0);
  }
  return loop;
}

// Calls visit(offsets) for every index of the loop's first `outer` axes,
// with each operand's element offset there (once when outer is 0; never
// when the loop has no elements).
template <std::size_t N, class Visit>
void for_each_outer(const StridedLoop<N>& loop, std::size_t outer, Visit&& visit) {
  if (std::find(loop.shape.begin(), loop.shape.end(), 0) != loop.shape.end()) return;
  std::array<std::int64_t, N> offsets{};
  std::vector<std::int64_t> counter(outer, 0);
  for (;;) {
    visit(offsets);
    // Odometer, updating offsets incrementally.
    std::size_t axis = outer;
    for (;;) {
      if (axis == 0) return;
      --axis;
      if (++counter[axis] < loop.shape[axis]) {
        for (std::size_t k = 0; k < N; ++k) offsets[k] += loop.strides[k][axis];
        break;
      }
      counter[axis] = 0;
      for (std::size_t k = 0; k < N; ++k) offsets[k] -= loop.strides[k][axis] * (loop.shape[axis] - 1);
    }
  }
}

// Calls run(offsets, n, inner_strides) for every innermost run of the
// loop: each operand's element offset of the run's first element
// and its stride along the run.
template <std::size_t N, class Run>
void for_each_run(const StridedLoop<N>& loop, Run&& run) {
  const std::size_t last = loop.shape.size() - 1;
  std::array<std::int64_t, N> inner{};
  for (std::size_t k = 0; k < N; ++k) inner[k] = loop.strides[k][last];
  for_each_outer(loop, last, [&](const auto& offsets) { run(offsets, loop.shape[last], inner); });
}

template <class To, class From>
void convert_run(To* dst, std::int64_t dst_stride, const From* src, std::int64_t src_stride, std::int64_t n) {
  if (dst_stride == 1 && src_stride == 1) {
    if constexpr (std::is_same_v<To, From>) {
      std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(To));
    } else {
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) dst[i] = cast_element<To>(src[i]);
    }
  } else if (src_stride == 0) {
    const To v = cast_element<To>(src[0]);
    for (std::int64_t i = 0; i < n; ++i) dst[i * dst_stride] = v;
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i * dst_stride] = cast_element<To>(src[i * src_stride]);
  }
}

// Whether a copy reads across the source's fastest axis (a transpose):
// then it goes tile by tile, so that the rows read and written stay in cache.
bool transposing(const StridedLoop<2>& loop) {
  if (loop.shape.size() < 2) return false;
  const std::size_t last = loop.shape.size() - 1;
  const std::int64_t along = std::abs(loop.strides[1][last]);
  const std::int64_t across = std::abs(loop.strides[1][last - 1]);
  return across != 0 && along > across;
}

template <class To, class From>
void convert_tiles(To* dst, const From* src, const StridedLoop<2>& loop) {
  constexpr std::int64_t kTile = 32;
  const std::size_t last = loop.shape.size() - 1;
  const std::int64_t rows = loop.shape[last - 1], cols = loop.shape[last];
  const std::int64_t dst_row = loop.strides[0][last - 1], dst_col = loop.strides[0][last];
  const std::int64_t src_row = loop.strides[1][last - 1], src_col = loop.strides[1][last];
  for_each_outer(loop, last - 1, [&](const auto& offsets) {
    for (std::int64_t r0 = 0; r0 < rows; r0 += kTile)
      for (std::int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const std::int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
        for (std::int64_t r = r0; r < r1; ++r) {
          To* d = dst + offsets[0] + r * dst_row;
          const From* s = src + offsets[1] + r * src_row;
          for (std::int64_t c = c0; c < c1; ++c) d[c * dst_col] = cast_element<To>(s[c * src_col]);
        }
      }
  });
}

// [lowest, highest] byte address an array's elements touch.
std::pair<const std::byte*, const std::byte*> byte_range(const void* data, const Shape& shape,
                                                         const Strides& strides, std::size_t itemsize) {
  const auto* base = static_cast<const std::byte*>(data);
  std::int64_t low = 0;
  std::int64_t high = 0;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    const std::int64_t reach = strides[axis] * (shape[axis] - 1);
    (reach < 0 ? low : high) += reach;
  }
  const auto bytes = static_cast<std::int64_t>(itemsize);
  return {base + low * bytes, base + high * bytes + bytes};
}

int normalize_axis(int axis, int ndim, const char* what) {
  if (axis < -ndim || axis >= ndim)
    throw ValueError("bad-axis", std::string(what) + ": axis " + std::to_string(axis) +
                                     " is out of bounds for an array of dimension " + std::to_string(ndim));
  return axis < 0 ? axis + ndim : axis;
}

}  // namespace

std::int64_t shape_size(std::span<const std::int64_t> shape) noexcept {
  std::int64_t n = 1;
  for (std::int64_t extent : shape) n *= extent;
  return n;
}

std::string shape_str(std::span<const std::int64_t> shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + (shape.size() == 1 ? ",)" : ")");
}

Strides c_strides(std::span<const std::int64_t> shape) {
  Strides strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    strides[axis] = stride;
    stride *= std::max<std::int64_t>(shape[axis], 1);
  }
  return strides;
}

NDArray::NDArray() : NDArray(DType::float64, Shape{}, Scalar(0.0)) {}

NDArray::NDArray(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), strides_(c_strides(shape_)),
      owner_(allocate(checked_nbytes(shape_, dtype))), data_(owner_.get()) {}

NDArray::NDArray(DType dtype, Shape shape, const Scalar& fill) : NDArray(dtype, std::move(shape)) {
  this->fill(fill);
}

NDArray NDArray::scalar(const Scalar& value) { return NDArray(value.dtype(), Shape{}, value); }

NDArray NDArray::wrap(void* data, DType dtype, Shape shape, Strides strides, std::shared_ptr<void> owner) {
  checked_nbytes(shape, dtype);
  if (strides.empty()) strides = c_strides(shape);
  if (strides.size() != shape.size())
    throw ValueError("bad-strides", "NDArray::wrap: " + std::to_string(strides.size()) +
                                        " strides given for shape " + shape_str(shape));
  NDArray out;
  out.dtype_ = dtype;
  out.shape_ = std::move(shape);
  out.strides_ = std::move(strides);
  out.owner_ = std::move(owner);
  out.data_ = data;
  return out;
}

bool NDArray::is_contiguous() const noexcept {
  if (size() == 0) return true;
  std::int64_t expected = 1;
  for (std::size_t axis = shape_.size(); axis-- > 0;) {
    if (shape_[axis] != 1 && strides_[axis] != expected) return false;
    expected *= shape_[axis];
  }
  return true;
}

Scalar NDArray::item() const {
  if (size() != 1)
    throw ValueError("not-scalar", "only an array of size 1 has one item; this one has shape " +
                                       shape_str(shape_));
  return dispatch(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return Scalar(*static_cast<const T*>(data_), /*weak=*/false);
  });
}

NDArray NDArray::copy() const {
  NDArray out(dtype_, shape_);
  out.assign(*this);
  return out;
}

NDArray NDArray::contiguous() const { return is_contiguous() ? *this : copy(); }

NDArray NDArray::astype(DType dtype) const {
  if (dtype == dtype_ && is_contiguous()) return *this;
  NDArray out(dtype, shape_);
  out.assign(*this);
  return out;
}

void NDArray::assign(const NDArray& src) {
  NDArray from = src.broadcast_to(shape_);
  if (size() == 0) return;
  const auto [dst_low, dst_high] = byte_range(data_, shape_, strides_, itemsize());
  const auto [src_low, src_high] = byte_range(from.data_, from.shape_, from.strides_, from.itemsize());
  if (src_low < dst_high && dst_low < src_high) from = from.copy();  // overlapping memory
  if (dtype_ == from.dtype_ && is_contiguous() && from.is_contiguous()) {
    std::memcpy(data_, from.data_, nbytes());
    return;
  }
  dispatch(dtype_, [&](auto to_tag) {
    using To = typename decltype(to_tag)::type;
    dispatch(from.dtype_, [&](auto from_tag) {
      using From = typename decltype(from_tag)::type;
      To* dst = static_cast<To*>(data_);
      const From* s = static_cast<const From*>(from.data_);
      const StridedLoop<2> loop = make_loop<2>(shape_, {&strides_, &from.strides_});
      if (transposing(loop)) {
        convert_tiles(dst, s, loop);
        return;
      }
      for_each_run(loop, [&](const auto& offsets, std::int64_t n, const auto& inner) {
        convert_run(dst + offsets[0], inner[0], s + offsets[1], inner[1], n);
      });
    });
  });
}

void NDArray::fill(const Scalar& value) {
  dispatch(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T v = value.as<T>();
    T* dst = static_cast<T*>(data_);
    for_each_run(make_loop<1>(shape_, {&strides_}), [&](const auto& offsets, std::int64_t n, const auto& inner) {
      T* p = dst + offsets[0];
      if (inner[0] == 1) std::fill(p, p + n, v);
      else
        for (std::int64_t i = 0; i < n; ++i) p[i * inner[0]] = v;
    });
  });
}

NDArray NDArray::slice(int axis, std::int64_t start, std::int64_t stop, std::int64_t step) const {
  axis = normalize_axis(axis, ndim(), "NDArray::slice");
  if (step == 0) throw ValueError("bad-slice", "NDArray::slice: slice step cannot be zero");
  const auto a = static_cast<std::size_t>(axis);
  const std::int64_t length = step > 0 ? std::max<std::int64_t>(0, (stop - start + step - 1) / step)
                                       : std::max<std::int64_t>(0, (start - stop - step - 1) / -step);
  NDArray out = *this;
  if (length > 0) {
    const std::int64_t last = start + (length - 1) * step;
    if (start < 0 || start >= shape_[a] || last < 0 || last >= shape_[a])
      throw ValueError("bad-index", "NDArray::slice: elements " + std::to_string(start) + " to " +
                                        std::to_string(last) + " of axis " + std::to_string(axis) +
                                        " are outside its extent " + std::to_string(shape_[a]));
    out.data_ = static_cast<std::byte*>(data_) + start * strides_[a] * static_cast<std::int64_t>(itemsize());
  }
  out.shape_[a] = length;
  out.strides_[a] = strides_[a] * step;
  return out;
}

NDArray NDArray::block(std::span<const std::int64_t> offset, std::span<const std::int64_t> shape) const {
  if (offset.size() != shape_.size() || shape.size() != shape_.size())
    throw ValueError("bad-index", "NDArray::block: offset " + shape_str(offset) + " and shape " +
                                      shape_str(shape) + " do not match an array of shape " + shape_str(shape_));
  std::int64_t element = 0;
  for (std::size_t axis = 0; axis < shape_.size(); ++axis) {
    if (offset[axis] < 0 || shape[axis] < 0 || offset[axis] + shape[axis] > shape_[axis])
      throw ValueError("bad-index", "NDArray::block: a block of shape " + shape_str(shape) + " at " +
                                        shape_str(offset) + " does not fit in an array of shape " +
                                        shape_str(shape_));
    element += offset[axis] * strides_[axis];
  }
  NDArray out = *this;
  out.shape_.assign(shape.begin(), shape.end());
  if (out.size() > 0) out.data_ = static_cast<std::byte*>(data_) + element * static_cast<std::int64_t>(itemsize());
  return out;
}

NDArray NDArray::transpose(std::span<const int> axes) const {
  std::vector<int> order(axes.begin(), axes.end());
  if (order.empty()) {
    order.resize(shape_.size());
    std::iota(order.rbegin(), order.rend(), 0);
  }
  if (order.size() != shape_.size())
    throw ValueError("bad-axes", "NDArray::transpose: " + std::to_string(order.size()) +
                                     " axes given for an array of dimension " + std::to_string(ndim()));
  std::vector<bool> seen(shape_.size(), false);
  NDArray out = *this;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto source = static_cast<std::size_t>(normalize_axis(order[i], ndim(), "NDArray::transpose"));
    if (seen[source]) throw ValueError("bad-axes", "NDArray::transpose: repeated axis in transpose");
    seen[source] = true;
    out.shape_[i] = shape_[source];
    out.strides_[i] = strides_[source];
  }
  return out;
}

NDArray NDArray::broadcast_to(const Shape& shape) const {
  checked_nbytes(shape, dtype_);
  const auto fail = [&] {
    throw ValueError("shape-mismatch", "cannot broadcast an array of shape " + shape_str(shape_) +
                                           " to shape " + shape_str(shape));
  };
  if (shape.size() < shape_.size()) fail();
  const std::size_t lead = shape.size() - shape_.size();
  NDArray out = *this;
  out.shape_ = shape;
  out.strides_.assign(shape.size(), 0);
  for (std::size_t axis = 0; axis < shape_.size(); ++axis) {
    const std::int64_t from = shape_[axis];
    const std::int64_t to = shape[lead + axis];
    if (from == to) out.strides_[lead + axis] = strides_[axis];
    else if (from != 1) fail();
  }
  return out;
}

NDArray NDArray::reshape(Shape shape) const {
  auto unknown = std::find(shape.begin(), shape.end(), -1);
  if (unknown != shape.end()) {  // NumPy's -1: the extent that keeps the size
    *unknown = 1;
    const std::int64_t rest = shape_size(shape);
    *unknown = (rest > 0 && size() % rest == 0) ? size() / rest : -1;
    if (*unknown == -1)
      throw ValueError("bad-shape", "cannot reshape an array of size " + std::to_string(size()) +
                                        " into shape " + shape_str(shape) + " with one extent unknown");
  }
  checked_nbytes(shape, dtype_);
  if (shape_size(shape) != size())
    throw ValueError("bad-shape", "cannot reshape an array of size " + std::to_string(size()) +
                                      " into shape " + shape_str(shape));
  if (!is_contiguous()) return copy().reshape(std::move(shape));
  NDArray out = *this;
  out.strides_ = c_strides(shape);
  out.shape_ = std::move(shape);
  return out;
}

bool NDArray::equals(const NDArray& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  bool equal = true;
  dispatch(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* a = static_cast<const T*>(data_);
    const T* b = static_cast<const T*>(other.data_);
    for_each_run(make_loop<2>(shape_, {&strides_, &other.strides_}), [&](const auto& offsets, std::int64_t n, const auto& inner) {
      for (std::int64_t i = 0; i < n && equal; ++i)
        equal = a[offsets[0] + i * inner[0]] == b[offsets[1] + i * inner[1]];
    });
  });
  return equal;
}

void NDArray::check_dtype(DType wanted) const {
  if (wanted != dtype_)
    throw TypeError("dtype-mismatch", "an NDArray of dtype " + std::string(dtype_name(dtype_)) +
                                          " was read as " + std::string(dtype_name(wanted)));
}

void NDArray::check_size(std::size_t n) const {
  if (static_cast<std::int64_t>(n) != size())
    throw ValueError("shape-mismatch", "NDArray::from: " + std::to_string(n) +
                                           " elements given for shape " + shape_str(shape_) + " of " +
                                           std::to_string(size()));
}

std::int64_t NDArray::offset_of(std::span<const std::int64_t> index) const {
  if (index.size() != shape_.size())
    throw ValueError("bad-index", "NDArray::at: " + std::to_string(index.size()) +
                                      " indices given for an array of dimension " + std::to_string(ndim()));
  std::int64_t offset = 0;
  for (std::size_t axis = 0; axis < shape_.size(); ++axis) {
    if (index[axis] < 0 || index[axis] >= shape_[axis])
      throw ValueError("bad-index", "NDArray::at: index " + shape_str(index) +
                                        " is out of bounds for shape " + shape_str(shape_));
    offset += index[axis] * strides_[axis];
  }
  return offset;
}

}  // namespace weft::array

namespace weft {

void CustomCodec<array::NDArray>::encode(const array::NDArray& a, Encoded& out) {
  const std::uint64_t fields[] = {static_cast<std::uint64_t>(a.dtype()), static_cast<std::uint64_t>(a.ndim())};
  detail::append_bytes(out.header, fields, sizeof fields);
  detail::append_bytes(out.header, a.shape().data(), a.shape().size() * sizeof(std::int64_t));
  if (a.is_contiguous()) {
    out.buffers.emplace_back(static_cast<const std::byte*>(a.raw_data()), a.nbytes());
    return;
  }
  // A strided view (a block of a larger array) is packed once into memory of
  // its own, which the buffer points into and keep_alive holds (with what an
  // encoding of several arrays already holds).
  auto packed = std::make_shared<const array::NDArray>(a.copy());
  out.buffers.emplace_back(static_cast<const std::byte*>(packed->raw_data()), packed->nbytes());
  if (out.keep_alive)
    out.keep_alive = std::make_shared<const std::pair<std::shared_ptr<const void>, std::shared_ptr<const void>>>(
        std::move(out.keep_alive), std::move(packed));
  else
    out.keep_alive = std::move(packed);
}

array::NDArray CustomCodec<array::NDArray>::decode(detail::EncodingReader& in) {
  const std::uint64_t dtype = in.u64();
  if (dtype >= static_cast<std::uint64_t>(array::kDTypeCount)) in.fail("dtype " + std::to_string(dtype) + " is unknown");
  const std::uint64_t ndim = in.u64();
  if (ndim > 64) in.fail(std::to_string(ndim) + " dimensions are too many");
  array::Shape shape(ndim);
  if (ndim > 0) std::memcpy(shape.data(), in.bytes(ndim * sizeof(std::int64_t)).data(), ndim * sizeof(std::int64_t));
  std::size_t bytes = array::itemsize(static_cast<array::DType>(dtype));
  for (std::int64_t extent : shape)
    if (extent < 0 || __builtin_mul_overflow(bytes, static_cast<std::size_t>(extent), &bytes))
      in.fail("shape " + array::shape_str(shape) + " is not a valid shape");
  std::span<const std::byte> elements = in.buffer(bytes);
  const auto dt = static_cast<array::DType>(dtype);
  // A bool byte other than 0 or 1 is not a C++ bool.
  if (dt == array::DType::bool_)
    for (std::byte b : elements)
      if (static_cast<unsigned char>(b) > 1) in.fail("a bool element holds a value other than 0 and 1");
  array::NDArray out(dt, std::move(shape));
  if (bytes > 0) std::memcpy(out.raw_data(), elements.data(), bytes);
  return out;
}

}  // namespace weft
