// weft/array/ndarray.hpp - an n-dimensional buffer in local memory.
//
// NDArray is what a chunk task returns and what compute() of an Array gives
// back: a dtype, a shape, strides (in elements, as NumPy's strides divided by
// the itemsize; 0 for a broadcast axis, negative for a reversed one) and a
// pointer into memory that it shares ownership of. Views (slice, transpose,
// broadcast_to) share the memory; copy() makes a contiguous C-order one.
// It wraps caller memory without copying (wrap()), so results can go
// straight into a simulation's own buffers, and it travels between ranks as
// one buffer (a contiguous array is sent from its own memory).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/error.hpp"
#include "weft/serialize.hpp"

namespace weft::array {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

/// Elements in an array of this shape (1 for a 0-d shape).
std::int64_t shape_size(std::span<const std::int64_t> shape) noexcept;
/// "(3, 4)", as NumPy prints shapes.
std::string shape_str(std::span<const std::int64_t> shape);
/// C-order strides in elements.
Strides c_strides(std::span<const std::int64_t> shape);

class NDArray {
 public:
  /// A 0-d float64 holding 0.
  NDArray();
  /// Uninitialised, C-contiguous, 64-byte aligned memory. ValueError
  /// "value.bad-shape" for a negative extent.
  NDArray(DType dtype, Shape shape);
  /// Filled with `fill` (converted to dtype).
  NDArray(DType dtype, Shape shape, const Scalar& fill);

  /// Copies `data` (size must equal the shape's; ValueError otherwise).
  template <Element T>
  static NDArray from(std::span<const T> data, Shape shape) {
    NDArray out(dtype_of<T>, std::move(shape));
    out.check_size(data.size());
    std::copy(data.begin(), data.end(), out.data<T>());
    return out;
  }
  template <Element T>
  static NDArray from(const std::vector<T>& data, Shape shape) {
    return from(std::span<const T>(data), std::move(shape));
  }
  /// A 1-d copy of `data`.
  template <Element T>
  static NDArray from(std::initializer_list<T> data) {
    return from(std::span<const T>(data.begin(), data.size()), Shape{static_cast<std::int64_t>(data.size())});
  }
  /// A 0-d array holding `value`.
  static NDArray scalar(const Scalar& value);
  /// A view of caller memory, without a copy. `owner` keeps it alive (may be
  /// null when the caller guarantees that). Strides default to C order.
  static NDArray wrap(void* data, DType dtype, Shape shape, Strides strides = {},
                      std::shared_ptr<void> owner = nullptr);
  template <Element T>
  static NDArray wrap(T* data, Shape shape, Strides strides = {}, std::shared_ptr<void> owner = nullptr) {
    return wrap(static_cast<void*>(const_cast<std::remove_cv_t<T>*>(data)), dtype_of<T>,
                std::move(shape), std::move(strides), std::move(owner));
  }

  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  const Strides& strides() const noexcept { return strides_; }
  int ndim() const noexcept { return static_cast<int>(shape_.size()); }
  std::int64_t size() const noexcept { return shape_size(shape_); }
  std::size_t itemsize() const noexcept { return array::itemsize(dtype_); }
  /// Bytes of the elements (size * itemsize): what a chunk costs (dask.sizeof).
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(size()) * itemsize(); }
  /// C-order contiguous (strides of size-1 axes do not matter).
  bool is_contiguous() const noexcept;

  /// The first element. TypeError "type.dtype-mismatch" when T is not the dtype.
  template <Element T>
  T* data() {
    check_dtype(dtype_of<T>);
    return static_cast<T*>(data_);
  }
  template <Element T>
  const T* data() const {
    check_dtype(dtype_of<T>);
    return static_cast<const T*>(data_);
  }
  void* raw_data() noexcept { return data_; }
  const void* raw_data() const noexcept { return data_; }

  /// Element at `index` (one per axis; ValueError "value.bad-index" out of range).
  template <Element T>
  const T& at(std::initializer_list<std::int64_t> index) const {
    return data<T>()[offset_of(std::span<const std::int64_t>(index.begin(), index.size()))];
  }
  template <Element T>
  T& at(std::initializer_list<std::int64_t> index) {
    return data<T>()[offset_of(std::span<const std::int64_t>(index.begin(), index.size()))];
  }
  /// The only element of a size-1 array as T (converted as astype would);
  /// ValueError "value.not-scalar" otherwise.
  template <Element T>
  T item() const {
    return item().as<T>();
  }
  Scalar item() const;
  /// All elements in C order, converted to T.
  template <Element T>
  std::vector<T> to_vector() const {
    NDArray c = astype(dtype_of<T>);
    const T* p = c.data<T>();
    return std::vector<T>(p, p + c.size());
  }

  /// A C-contiguous copy with its own memory.
  NDArray copy() const;
  /// This array when it is C-contiguous, else copy().
  NDArray contiguous() const;
  /// A contiguous copy converted to `dtype` (NumPy's astype, unsafe casting);
  /// this array itself when it already is contiguous and of that dtype.
  NDArray astype(DType dtype) const;
  /// Copies src into this array elementwise, converting dtype and broadcasting
  /// src's shape to this one (ValueError "value.shape-mismatch" if it cannot).
  void assign(const NDArray& src);
  /// Sets every element to `value`.
  void fill(const Scalar& value);

  /// View of [start, stop) with `step` along `axis` (step may be negative;
  /// start/stop already resolved by the caller as for Python's slice.indices).
  NDArray slice(int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1) const;
  /// View of the sub-block starting at `offset` with `shape`.
  NDArray block(std::span<const std::int64_t> offset, std::span<const std::int64_t> shape) const;
  /// View with axes permuted (axes[i] is the source axis of axis i).
  NDArray transpose(std::span<const int> axes) const;
  /// View with the given shape via stride 0 (NumPy broadcasting rules).
  NDArray broadcast_to(const Shape& shape) const;
  /// Same elements in another shape: a view when contiguous, else a copy.
  NDArray reshape(Shape shape) const;

  /// Same dtype, shape and elements (NaNs compare unequal, as in NumPy).
  bool equals(const NDArray& other) const;

 private:
  void check_dtype(DType wanted) const;
  void check_size(std::size_t n) const;
  std::int64_t offset_of(std::span<const std::int64_t> index) const;

  DType dtype_;
  Shape shape_;
  Strides strides_;
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
};

}  // namespace weft::array

namespace weft {
/// NDArray travels as its dtype and shape in the header and its elements as
/// one buffer, sent from the array's memory when it is contiguous, else from
/// a packed copy that Encoded::keep_alive holds.
template <>
struct CustomCodec<array::NDArray> {
  static void encode(const array::NDArray& a, Encoded& out);
  static array::NDArray decode(detail::EncodingReader& in);
};
}  // namespace weft
