// src/array/creation.cpp - the creation functions' layers (weft/array/creation.hpp).
#include "weft/array/creation.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "kernels/creation.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace {


using kernels::all_block_offsets;
using kernels::block_start;
using kernels::check_shape;

// NumPy's dtype for a number written in C++: its kind's default (Python's
// int, float, complex), or the Scalar's own dtype when it is not weak.
DType default_dtype(const Scalar& value) {
  if (!value.weak()) return value.dtype();
  switch (dtype_kind(value.dtype())) {
    case DTypeKind::boolean: return DType::bool_;
    case DTypeKind::signed_integer: return DType::int64;
    case DTypeKind::unsigned_integer:
      return value.as<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                 ? DType::uint64
                 : DType::int64;
    case DTypeKind::floating: return DType::float64;
    case DTypeKind::complex: break;
  }
  return DType::complex128;
}

// Blocks of `shape` filled as `spec` says (zeros, ones, full, empty).
Array filled(std::string_view op, Shape shape, const ChunkSpec& chunk_spec, const kernels::FillSpec& spec) {
  check_shape(shape, op);
  Chunks chunks = normalize_chunks(chunk_spec, shape, spec.dtype);
  const Token token = detail::op_token(op, shape, chunks, spec.dtype, spec.initialise,
                                       std::string_view(reinterpret_cast<const char*>(spec.value.bytes.data()),
                                                        spec.value.bytes.size()));
  return make_array(detail::ArrayMeta{std::string(op), token, std::move(shape), chunks, spec.dtype},
                    [spec, chunks](std::span<const std::int64_t> index, Key key) {
                      return weft::detail::make_call_task(std::move(key), false, &kernels::fill_block, spec,
                                                          block_shape(chunks, index));
                    });
}

kernels::FillSpec fill_spec(DType dtype, const Scalar& value) { return {dtype, true, kernels::ElementBytes::of(value, dtype)}; }

// What a *_like function makes: x's shape, dtype and chunks unless given.
struct Like {
  Shape shape;
  DType dtype;
  ChunkSpec chunks;
};
Like resolve_like(const Array& x, std::optional<DType> dtype, std::optional<ChunkSpec> chunks,
                  std::optional<Shape> shape) {
  Like like{shape.value_or(x.shape()), dtype.value_or(x.dtype()), ChunkSpec()};
  if (chunks) like.chunks = *chunks;
  else if (like.shape == x.shape()) like.chunks = ChunkSpec(x.chunks());
  return like;
}

}  // namespace

Array empty(Shape shape, DType dtype, const ChunkSpec& chunks) {
  return filled("empty", std::move(shape), chunks, kernels::FillSpec{dtype, false, {}});
}

Array zeros(Shape shape, DType dtype, const ChunkSpec& chunks) {
  return filled("zeros", std::move(shape), chunks, fill_spec(dtype, 0));
}

Array ones(Shape shape, DType dtype, const ChunkSpec& chunks) {
  return filled("ones", std::move(shape), chunks, fill_spec(dtype, 1));
}

Array full(Shape shape, const Scalar& fill_value, std::optional<DType> dtype, const ChunkSpec& chunks) {
  return filled("full", std::move(shape), chunks, fill_spec(dtype.value_or(default_dtype(fill_value)), fill_value));
}

Array empty_like(const Array& x, std::optional<DType> dtype, std::optional<ChunkSpec> chunks,
                 std::optional<Shape> shape) {
  Like like = resolve_like(x, dtype, std::move(chunks), std::move(shape));
  return empty(std::move(like.shape), like.dtype, like.chunks);
}

Array zeros_like(const Array& x, std::optional<DType> dtype, std::optional<ChunkSpec> chunks,
                 std::optional<Shape> shape) {
  Like like = resolve_like(x, dtype, std::move(chunks), std::move(shape));
  return zeros(std::move(like.shape), like.dtype, like.chunks);
}

Array ones_like(const Array& x, std::optional<DType> dtype, std::optional<ChunkSpec> chunks,
                std::optional<Shape> shape) {
  Like like = resolve_like(x, dtype, std::move(chunks), std::move(shape));
  return ones(std::move(like.shape), like.dtype, like.chunks);
}

Array full_like(const Array& x, const Scalar& fill_value, std::optional<DType> dtype,
                std::optional<ChunkSpec> chunks, std::optional<Shape> shape) {
  Like like = resolve_like(x, dtype, std::move(chunks), std::move(shape));
  return full(std::move(like.shape), fill_value, like.dtype, like.chunks);
}

Array arange(const Scalar& start, const Scalar& stop, const Scalar& step, std::optional<DType> dtype,
             const ChunkSpec& chunk_spec) {
  for (const Scalar* s : {&start, &stop, &step})
    if (is_complex(s->dtype()))
      throw TypeError("arange-complex", "arange: start, stop and step must be real numbers, not " +
                                            to_string(*s));
  const bool integer_math = !is_inexact(start.dtype()) && !is_inexact(stop.dtype()) && !is_inexact(step.dtype());
  const DType out_dtype = dtype.value_or(integer_math ? DType::int64 : DType::float64);
  std::int64_t length = 0;
  Scalar second;
  if (integer_math) {
    // In 128 bits, so that no difference or sum of two int64 overflows.
    const __int128 a = start.as<std::int64_t>();
    const __int128 b = stop.as<std::int64_t>();
    const __int128 s = step.as<std::int64_t>();
    if (s == 0) throw ValueError("zero-step", "arange: step cannot be zero");
    const __int128 span = b - a;
    const __int128 quotient = span / s + ((span % s != 0) && ((span > 0) == (s > 0)) ? 1 : 0);
    length = quotient > 0 ? static_cast<std::int64_t>(quotient) : 0;
    second = Scalar(static_cast<std::int64_t>(a + s));
  } else {
    const double a = start.as<double>();
    const double s = step.as<double>();
    if (s == 0) throw ValueError("zero-step", "arange: step cannot be zero");
    const double count = std::ceil((stop.as<double>() - a) / s);
    if (!std::isfinite(count) || count >= 0x1p63)
      throw ValueError("arange-length", "arange: cannot compute a length from start " + to_string(start) +
                                            ", stop " + to_string(stop) + " and step " + to_string(step));
    length = count > 0 ? static_cast<std::int64_t>(count) : 0;
    second = Scalar(a + s);
  }
  if (out_dtype == DType::bool_ && length > 2)
    throw TypeError("arange-dtype", "arange: a bool result can hold at most 2 values, not " +
                                        std::to_string(length));
  const kernels::ElementBytes first_bytes = kernels::ElementBytes::of(start, out_dtype);
  const kernels::ElementBytes second_bytes = kernels::ElementBytes::of(second, out_dtype);
  Shape shape{length};
  Chunks chunks = normalize_chunks(chunk_spec, shape, out_dtype);
  const auto bytes = [](const kernels::ElementBytes& e) {
    return std::string_view(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  };
  const Token token = detail::op_token("arange", length, chunks, out_dtype, bytes(first_bytes), bytes(second_bytes));
  std::vector<std::int64_t> offsets = block_offsets(chunks[0]);
  return make_array(detail::ArrayMeta{"arange", token, std::move(shape), chunks, out_dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const auto i = static_cast<std::size_t>(index[0]);
                      const kernels::ArangeSpec spec{out_dtype, offsets[i], chunks[0][i], first_bytes, second_bytes};
                      return weft::detail::make_call_task(std::move(key), false, &kernels::arange_block, spec);
                    });
}

Array arange(const Scalar& stop) { return arange(Scalar(std::int64_t{0}), stop); }

Array linspace(const Scalar& start, const Scalar& stop, std::int64_t num, bool endpoint, std::optional<DType> dtype,
               const ChunkSpec& chunk_spec) {
  if (num < 0) throw ValueError("bad-num", "linspace: number of samples, " + std::to_string(num) +
                                               ", must be non-negative");
  kernels::LinspaceSpec base{};
  base.complex_math = is_complex(start.dtype()) || is_complex(stop.dtype());
  base.dtype = dtype.value_or(base.complex_math ? DType::complex128 : DType::float64);
  base.num = num;
  base.start = start.as<std::complex<double>>();
  base.stop = stop.as<std::complex<double>>();
  base.delta = base.stop - base.start;
  const std::int64_t div = endpoint ? num - 1 : num;
  base.has_step = div > 0;
  base.div = static_cast<double>(div);
  if (base.has_step) {
    base.step = base.delta / base.div;
    base.step_is_zero = base.step == std::complex<double>(0.0, 0.0);
  }
  base.last_is_stop = endpoint && num > 1;
  Shape shape{num};
  Chunks chunks = normalize_chunks(chunk_spec, shape, base.dtype);
  const Token token = detail::op_token("linspace", base.start.real(), base.start.imag(), base.stop.real(),
                                       base.stop.imag(), num, endpoint, base.dtype, base.complex_math, chunks);
  std::vector<std::int64_t> offsets = block_offsets(chunks[0]);
  return make_array(detail::ArrayMeta{"linspace", token, std::move(shape), chunks, base.dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const auto i = static_cast<std::size_t>(index[0]);
                      kernels::LinspaceSpec spec = base;
                      spec.offset = offsets[i];
                      spec.length = chunks[0][i];
                      return weft::detail::make_call_task(std::move(key), false, &kernels::linspace_block, spec);
                    });
}

Array eye(std::int64_t N, std::optional<std::int64_t> M, std::int64_t k, DType dtype, const ChunkSpec& chunk_spec) {
  Shape shape{N, M.value_or(N)};
  check_shape(shape, "eye");
  Chunks chunks = normalize_chunks(chunk_spec, shape, dtype);
  const Token token = detail::op_token("eye", shape, k, dtype, chunks);
  const auto offsets = all_block_offsets(chunks);
  const kernels::FillSpec zero = fill_spec(dtype, 0);
  return make_array(detail::ArrayMeta{"eye", token, std::move(shape), chunks, dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const Shape start = block_start(offsets, index);
                      const Shape extent = block_shape(chunks, index);
                      // Columns row + k of the block's rows, against its columns.
                      const bool has_diagonal = start[0] + k < start[1] + extent[1] &&
                                                start[1] < start[0] + extent[0] + k;
                      if (!has_diagonal)
                        return weft::detail::make_call_task(std::move(key), false, &kernels::fill_block, zero, extent);
                      return weft::detail::make_call_task(std::move(key), false, &kernels::eye_block,
                                                          kernels::EyeSpec{dtype, start[0], start[1], k}, extent);
                    });
}

namespace {

// Splits `length` into blocks of at most `size` (one empty block for 0).
std::vector<std::int64_t> split_length(std::int64_t length, std::int64_t size) {
  std::vector<std::int64_t> out;
  for (std::int64_t done = 0; done < length; done += size) out.push_back(std::min(size, length - done));
  return out;
}

Array diag_embed(const Array& v, std::int64_t k) {
  const std::vector<std::int64_t>& v_chunks = v.chunks()[0];
  const std::int64_t n = v.shape()[0];
  const std::int64_t pad = k < 0 ? -k : k;
  const std::int64_t largest = std::max<std::int64_t>(1, *std::max_element(v_chunks.begin(), v_chunks.end()));
  const std::vector<std::int64_t> pad_chunks = split_length(pad, largest);
  // Diagonal k runs through v's blocks laid after (rows) or before (columns)
  // the |k| zero rows or columns: v's block i is block (i, i + pad blocks)
  // for k > 0 and (i + pad blocks, i) for k < 0.
  std::vector<std::int64_t> leading = pad_chunks;
  leading.insert(leading.end(), v_chunks.begin(), v_chunks.end());
  std::vector<std::int64_t> trailing = v_chunks;
  trailing.insert(trailing.end(), pad_chunks.begin(), pad_chunks.end());
  Chunks chunks = k >= 0 ? Chunks{trailing, leading} : Chunks{leading, trailing};
  const auto pad_blocks = static_cast<std::int64_t>(pad_chunks.size());
  const auto v_blocks = static_cast<std::int64_t>(v_chunks.size());
  const kernels::FillSpec zero = fill_spec(v.dtype(), 0);
  return make_array(detail::ArrayMeta{"diag", detail::op_token("diag", v, k), Shape{n + pad, n + pad}, chunks, v.dtype()},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const std::int64_t i = k >= 0 ? index[0] : index[1];
                      const std::int64_t j = k >= 0 ? index[1] : index[0];
                      if (i < v_blocks && j == i + pad_blocks)
                        return weft::detail::make_call_task(std::move(key), false, &kernels::diag_embed_block,
                                                            v.block({i}));
                      return weft::detail::make_call_task(std::move(key), false, &kernels::fill_block, zero,
                                                          block_shape(chunks, index));
                    });
}

Array diag_extract(const Array& v, std::int64_t k) {
  const std::int64_t row0 = std::max<std::int64_t>(0, -k);
  const std::int64_t col0 = std::max<std::int64_t>(0, k);
  const std::int64_t length =
      std::max<std::int64_t>(0, std::min(v.shape()[0] - row0, v.shape()[1] - col0));
  const std::vector<std::int64_t> row_offsets = block_offsets(v.chunks()[0]);
  const std::vector<std::int64_t> col_offsets = block_offsets(v.chunks()[1]);
  // Output blocks end wherever the diagonal crosses into another input block.
  std::vector<std::int64_t> cuts{0, length};
  for (std::int64_t o : row_offsets)
    if (o - row0 > 0 && o - row0 < length) cuts.push_back(o - row0);
  for (std::int64_t o : col_offsets)
    if (o - col0 > 0 && o - col0 < length) cuts.push_back(o - col0);
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<std::int64_t> sizes;
  // The input block and the start within it of each output block.
  struct Piece {
    std::int64_t row_block, col_block;
    kernels::DiagExtractSpec spec;
  };
  std::vector<Piece> pieces;
  const auto block_of = [](const std::vector<std::int64_t>& offsets, std::int64_t at) {
    return static_cast<std::int64_t>(std::upper_bound(offsets.begin(), offsets.end() - 1, at) - offsets.begin()) - 1;
  };
  for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
    const std::int64_t r = row0 + cuts[c];
    const std::int64_t col = col0 + cuts[c];
    const std::int64_t rb = block_of(row_offsets, r);
    const std::int64_t cb = block_of(col_offsets, col);
    sizes.push_back(cuts[c + 1] - cuts[c]);
    pieces.push_back({rb, cb, {r - row_offsets[static_cast<std::size_t>(rb)],
                               col - col_offsets[static_cast<std::size_t>(cb)], sizes.back()}});
  }
  if (sizes.empty()) sizes.push_back(0);
  const kernels::FillSpec zero = fill_spec(v.dtype(), 0);
  return make_array(detail::ArrayMeta{"diag", detail::op_token("diag", v, k), Shape{length}, Chunks{sizes}, v.dtype()},
                    [=](std::span<const std::int64_t> index, Key key) {
                      if (pieces.empty())
                        return weft::detail::make_call_task(std::move(key), false, &kernels::fill_block, zero,
                                                            Shape{0});
                      const Piece& p = pieces[static_cast<std::size_t>(index[0])];
                      return weft::detail::make_call_task(std::move(key), false, &kernels::diag_extract_block, p.spec,
                                                          v.block({p.row_block, p.col_block}));
                    });
}

}  // namespace

Array diag(const Array& v, std::int64_t k) {
  if (v.ndim() == 1) return diag_embed(v, k);
  if (v.ndim() == 2) return diag_extract(v, k);
  throw ValueError("bad-ndim", "diag: the input must be 1-d or 2-d, not " + std::to_string(v.ndim()) + "-d");
}

Array indices(Shape dimensions, DType dtype, const ChunkSpec& chunk_spec) {
  check_shape(dimensions, "indices");
  const auto n = static_cast<std::int64_t>(dimensions.size());
  if (n == 0) return zeros(Shape{0}, dtype, chunk_spec);
  Chunks body = normalize_chunks(chunk_spec, dimensions, dtype);
  const auto offsets = all_block_offsets(body);
  Chunks chunks{std::vector<std::int64_t>(static_cast<std::size_t>(n), 1)};
  chunks.insert(chunks.end(), body.begin(), body.end());
  Shape shape{n};
  shape.insert(shape.end(), dimensions.begin(), dimensions.end());
  const Token token = detail::op_token("indices", shape, dtype, chunks);
  return make_array(detail::ArrayMeta{"indices", token, std::move(shape), chunks, dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      const auto axis = static_cast<std::size_t>(index[0]);
                      const std::int64_t start = offsets[axis][static_cast<std::size_t>(index[axis + 1])];
                      return weft::detail::make_call_task(std::move(key), false, &kernels::indices_block,
                                                          kernels::IndicesSpec{dtype, static_cast<int>(axis), start},
                                                          block_shape(chunks, index));
                    });
}

std::vector<Array> meshgrid(const std::vector<Array>& arrays, std::string_view indexing) {
  if (indexing != "xy" && indexing != "ij")
    throw ValueError("bad-indexing", "meshgrid: indexing must be \"xy\" or \"ij\", not \"" +
                                         std::string(indexing) + "\"");
  for (std::size_t i = 0; i < arrays.size(); ++i)
    if (arrays[i].ndim() != 1)
      throw ValueError("bad-ndim", "meshgrid: input " + std::to_string(i) + " is " +
                                       std::to_string(arrays[i].ndim()) + "-d; every input must be 1-d");
  // The output axis each input lies along: "xy" swaps the first two.
  std::vector<int> axis_of(arrays.size());
  for (std::size_t i = 0; i < arrays.size(); ++i) axis_of[i] = static_cast<int>(i);
  if (indexing == "xy" && arrays.size() >= 2) std::swap(axis_of[0], axis_of[1]);
  Shape shape(arrays.size());
  Chunks chunks(arrays.size());
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    shape[static_cast<std::size_t>(axis_of[i])] = arrays[i].shape()[0];
    chunks[static_cast<std::size_t>(axis_of[i])] = arrays[i].chunks()[0];
  }
  std::vector<Array> out;
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const Array x = arrays[i];
    const int axis = axis_of[i];
    const Token token = detail::op_token("meshgrid", x, axis, arrays, indexing);
    out.push_back(make_array(detail::ArrayMeta{"meshgrid", token, shape, chunks, x.dtype()},
                             [=](std::span<const std::int64_t> index, Key key) {
                               return weft::detail::make_call_task(
                                   std::move(key), false, &kernels::broadcast_along_block, axis,
                                   block_shape(chunks, index), x.block({index[static_cast<std::size_t>(axis)]}));
                             }));
  }
  return out;
}

Array fromfunction(IndexFunction f, Shape shape, DType dtype, const ChunkSpec& chunk_spec) {
  check_shape(shape, "fromfunction");
  Chunks chunks = normalize_chunks(chunk_spec, shape, dtype);
  // dask's meta: the dtype f gives on empty coordinate arrays.
  const Shape no_offset(shape.size(), 0);
  const DType result_dtype = f(kernels::coordinate_arrays(no_offset, Shape(shape.size(), 0), dtype)).dtype();
  const Token token =
      detail::op_token("fromfunction", reinterpret_cast<std::uintptr_t>(f), shape, dtype, chunks);
  const auto offsets = all_block_offsets(chunks);
  return make_array(detail::ArrayMeta{"fromfunction", token, std::move(shape), chunks, result_dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      return weft::detail::make_call_task(std::move(key), false, &kernels::fromfunction_block, f,
                                                          block_start(offsets, index), block_shape(chunks, index),
                                                          dtype, result_dtype);
                    });
}

Array from_array(const NDArray& x, const ChunkSpec& chunk_spec) {
  Chunks chunks = normalize_chunks(chunk_spec, x.shape(), x.dtype());
  // Hashing the elements names equal small arrays alike (dask's tokenize);
  // for large ones it would cost a pass over memory, so they get a fresh token.
  constexpr std::size_t kHashedBytes = std::size_t{1} << 20;
  Token token;
  if (x.nbytes() <= kHashedBytes) {
    const NDArray elements = x.contiguous();
    Hasher h;
    tokenize_into(h, std::string_view("array"));
    tokenize_into(h, x.dtype());
    tokenize_into(h, x.shape());
    tokenize_into(h, chunks);
    h.bytes(elements.raw_data(), elements.nbytes());
    token = h.digest();
  } else {
    token = weft::detail::fresh_token();
  }
  const auto offsets = all_block_offsets(chunks);
  return make_array(detail::ArrayMeta{"array", token, x.shape(), chunks, x.dtype()},
                    [x, chunks, offsets](std::span<const std::int64_t> index, Key key) {
                      const Shape start = block_start(offsets, index);
                      const Shape extent = block_shape(chunks, index);
                      return weft::literal(std::move(key), x.block(start, extent));
                    });
}

Array from_block_function(BlockFunction f, Shape shape, DType dtype, const ChunkSpec& chunk_spec) {
  check_shape(shape, "from_block_function");
  Chunks chunks = normalize_chunks(chunk_spec, shape, dtype);
  const Token token =
      detail::op_token("from-block-function", reinterpret_cast<std::uintptr_t>(f), shape, dtype, chunks);
  return make_array(detail::ArrayMeta{"from-block-function", token, std::move(shape), chunks, dtype},
                    [=](std::span<const std::int64_t> index, Key key) {
                      return weft::detail::make_call_task(
                          std::move(key), false, &kernels::block_function_block, f,
                          std::vector<std::int64_t>(index.begin(), index.end()), block_shape(chunks, index), dtype);
                    });
}

namespace detail {

Array from_owned_buffer(std::shared_ptr<void> owner, void* data, std::size_t size, DType dtype, Shape shape,
                        const ChunkSpec& chunks) {
  check_shape(shape, "from_array");
  if (static_cast<std::int64_t>(size) != shape_size(shape))
    throw ValueError("size-mismatch", "from_array: " + std::to_string(size) +
                                          " elements cannot have shape " + shape_str(shape));
  return from_array(NDArray::wrap(data, dtype, std::move(shape), {}, std::move(owner)), chunks);
}

}  // namespace detail

}  // namespace weft::array
