// chunks.cpp - normalize_chunks and auto-chunking, ported from
// dask.array.core.normalize_chunks / auto_chunks (dask 2022.12) so that the
// same arguments give the same blocks; tests compare with dask itself.
#include "weft/array/chunks.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace {

[[noreturn]] void bad_chunks(const std::string& problem) {
  throw ValueError("bad-chunks", "normalize_chunks: " + problem);
}

AxisChunks parse_auto(const char* text) {
  if (std::string_view(text) != "auto")
    bad_chunks("'" + std::string(text) + "' is not a chunk size; the only text allowed is \"auto\"");
  return AxisChunks::automatic();
}

std::string axis_str(const AxisChunks& a) {
  switch (a.kind) {
    case AxisChunks::Kind::size: return std::to_string(a.size);
    case AxisChunks::Kind::whole: return "-1";
    case AxisChunks::Kind::sizes: return shape_str(a.sizes);
    case AxisChunks::Kind::automatic: break;
  }
  return "'auto'";
}

std::string spec_str(const std::vector<AxisChunks>& axes) {
  std::string out = "(";
  for (std::size_t i = 0; i < axes.size(); ++i) out += (i > 0 ? ", " : "") + axis_str(axes[i]);
  return out + (axes.size() == 1 ? ",)" : ")");
}

// dask's round_to: c rounded to a size that fits s nicely, at most s when c
// is below it, else a multiple of s.
double round_to(double c, double s) {
  if (c <= s) return std::max(1.0, std::trunc(c));
  return std::floor(c / s) * s;
}

double median(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? static_cast<double>(v[n / 2])
                    : (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2.0;
}

// The block size an axis of previous chunks was mostly cut in (dask's
// ideal_shape): the most frequent size when it is above 1 and covers at
// least half the blocks, else the whole axis.
double ideal_block(const std::vector<std::int64_t>& previous, std::int64_t extent) {
  std::map<std::int64_t, std::size_t> counts;
  std::vector<std::int64_t> order;  // first occurrences: dask's max() keeps the first of ties
  for (std::int64_t c : previous)
    if (counts[c]++ == 0) order.push_back(c);
  std::int64_t mode = 0;
  std::size_t count = 0;
  for (std::int64_t c : order)
    if (counts[c] > count) mode = c, count = counts[c];
  const bool mostly_mode = mode > 1 && 2 * count >= previous.size();
  return static_cast<double>(mostly_mode ? mode : extent);
}

// One axis while auto-chunking: a block size, explicit sizes or still "auto".
struct WorkAxis {
  bool automatic = false;
  bool explicit_sizes = false;
  double size = 0;
  std::vector<std::int64_t> sizes;

  double largest() const {
    return explicit_sizes ? static_cast<double>(*std::max_element(sizes.begin(), sizes.end())) : size;
  }
};

// Product of the largest block of every axis that is not auto. dask divides
// by it; an empty axis counts as 1 here so that auto axes next to it still
// get sizes (dask raises ZeroDivisionError there).
double largest_block(const std::vector<WorkAxis>& axes) {
  double product = 1;
  for (const WorkAxis& a : axes)
    if (!a.automatic) product *= std::max(1.0, a.largest());
  return product;
}

// dask's auto_chunks without previous chunks: blocks as square as the shape allows.
void auto_square(std::vector<WorkAxis>& axes, const Shape& shape, double limit, double item) {
  for (;;) {
    std::vector<std::size_t> autos;
    for (std::size_t i = 0; i < axes.size(); ++i)
      if (axes[i].automatic) autos.push_back(i);
    if (autos.empty()) return;
    const double size = std::pow(limit / item / largest_block(axes), 1.0 / static_cast<double>(autos.size()));
    bool small = false;
    for (std::size_t i : autos)
      if (static_cast<double>(shape[i]) < size) {
        axes[i] = WorkAxis{false, true, 0, {shape[i]}};
        small = true;
      }
    if (small) continue;  // the other axes may now grow
    for (std::size_t i : autos) axes[i] = WorkAxis{false, false, round_to(size, static_cast<double>(shape[i])), {}};
    return;
  }
}

// dask's auto_chunks with previous chunks: grow or shrink each auto axis
// from its previous median block until the product fits `limit`, keeping
// multiples of the previous block size.
void auto_from_previous(std::vector<WorkAxis>& axes, const Shape& shape, double limit, double item,
                        const Chunks& previous) {
  std::set<std::size_t> autos;
  std::map<std::size_t, double> result;
  for (std::size_t i = 0; i < axes.size(); ++i)
    if (axes[i].automatic) {
      autos.insert(i);
      result[i] = median(previous[i]);
    }
  std::vector<double> ideal(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) ideal[i] = ideal_block(previous[i], shape[i]);

  double largest = largest_block(axes);
  const auto multiplier_now = [&] {
    double product = 1;
    for (const auto& [axis, r] : result)
      if (r != 0) product *= r;
    return limit / item / largest / product;
  };
  double multiplier = multiplier_now();
  double last_multiplier = 0;
  std::set<std::size_t> last_autos;
  while (multiplier != last_multiplier || autos != last_autos) {
    last_multiplier = multiplier;
    last_autos = autos;
    for (std::size_t a : last_autos) {
      if (ideal[a] == 0) {
        result[a] = 0;
        continue;
      }
      const double proposed = result[a] * std::pow(multiplier, 1.0 / static_cast<double>(autos.size()));
      if (proposed > static_cast<double>(shape[a])) {  // the whole axis fits
        autos.erase(a);
        largest *= static_cast<double>(shape[a]);
        axes[a] = WorkAxis{false, false, static_cast<double>(shape[a]), {}};
        result.erase(a);
      } else {
        result[a] = round_to(proposed, ideal[a]);
      }
    }
    multiplier = multiplier_now();
  }
  for (const auto& [axis, r] : result) axes[axis] = WorkAxis{false, false, r, {}};
}

// dask's blockdims_from_blockshape for one axis.
std::vector<std::int64_t> blocks_of(std::int64_t extent, std::int64_t block, std::size_t axis) {
  if (extent == 0) return {0};
  if (block <= 0)
    bad_chunks("a block size of " + std::to_string(block) + " for axis " + std::to_string(axis) + " of extent " +
               std::to_string(extent) + "; block sizes must be positive");
  std::vector<std::int64_t> out(static_cast<std::size_t>(extent / block), block);
  if (extent % block != 0) out.push_back(extent % block);
  return out;
}

}  // namespace

AxisChunks::AxisChunks(const char* text) : AxisChunks(parse_auto(text)) {}

ChunkSpec::ChunkSpec(const char* text) : axes_{AxisChunks(text)} {}
ChunkSpec::ChunkSpec(std::int64_t every_axis) : axes_{AxisChunks(every_axis)} {}
ChunkSpec::ChunkSpec(std::initializer_list<AxisChunks> per_axis) : every_axis_(false), axes_(per_axis) {}
ChunkSpec::ChunkSpec(std::vector<AxisChunks> per_axis) : every_axis_(false), axes_(std::move(per_axis)) {}
ChunkSpec::ChunkSpec(const Chunks& explicit_chunks) : every_axis_(false), axes_() {
  for (const auto& sizes : explicit_chunks) axes_.emplace_back(sizes);
}

Chunks normalize_chunks(const ChunkSpec& spec, const Shape& shape, DType dtype,
                        std::optional<std::size_t> limit_bytes, const Chunks* previous) {
  const std::size_t ndim = shape.size();
  std::vector<AxisChunks> axes = spec.every_axis() ? std::vector<AxisChunks>(ndim, spec.axes().front()) : spec.axes();
  if (axes.empty() && ndim > 0 && std::all_of(shape.begin(), shape.end(), [](std::int64_t s) { return s == 0; }))
    axes.assign(ndim, AxisChunks(std::vector<std::int64_t>{0}));
  // dask reads several numbers for a 1-d shape as that axis's block sizes.
  if (ndim == 1 && axes.size() > 1 &&
      std::all_of(axes.begin(), axes.end(), [](const AxisChunks& a) { return a.kind == AxisChunks::Kind::size; })) {
    std::vector<std::int64_t> sizes;
    for (const AxisChunks& a : axes) sizes.push_back(a.size);
    axes = {AxisChunks(std::move(sizes))};
  }
  if (axes.size() != ndim)
    bad_chunks("chunks " + spec_str(axes) + " and shape " + shape_str(shape) + " must have the same length");

  bool any_auto = false;
  for (std::size_t i = 0; i < ndim; ++i) {
    AxisChunks& a = axes[i];
    if (a.kind == AxisChunks::Kind::sizes) {
      if (a.sizes.empty()) bad_chunks("an empty list of block sizes for axis " + std::to_string(i) +
                                      "; a zero-length axis has chunks (0,)");
      continue;
    }
    if (shape[i] == kUnknown)
      bad_chunks("axis " + std::to_string(i) + " has an unknown length; only explicit block sizes fit it");
    if (a.kind == AxisChunks::Kind::whole) a = AxisChunks(shape[i]);
    any_auto = any_auto || a.kind == AxisChunks::Kind::automatic;
  }

  if (any_auto) {
    std::vector<WorkAxis> work(ndim);
    for (std::size_t i = 0; i < ndim; ++i) {
      const AxisChunks& a = axes[i];
      if (a.kind == AxisChunks::Kind::automatic) work[i].automatic = true;
      else if (a.kind == AxisChunks::Kind::sizes) {
        if (has_unknown(Chunks{a.sizes}))
          bad_chunks("cannot choose automatic chunks next to unknown block sizes " + shape_str(a.sizes));
        work[i].explicit_sizes = true;
        work[i].sizes = a.sizes;
      } else {
        work[i].size = static_cast<double>(a.size);
      }
    }
    const double limit = static_cast<double>(std::max<std::size_t>(1, limit_bytes.value_or(configured_chunk_bytes())));
    const double item = static_cast<double>(itemsize(dtype));
    if (previous != nullptr && !previous->empty()) {
      if (previous->size() != ndim)
        bad_chunks("previous chunks " + chunks_str(*previous) + " do not match shape " + shape_str(shape));
      if (has_unknown(*previous)) bad_chunks("previous chunks " + chunks_str(*previous) + " are unknown");
      auto_from_previous(work, shape, limit, item, *previous);
    } else {
      auto_square(work, shape, limit, item);
    }
    for (std::size_t i = 0; i < ndim; ++i)
      axes[i] = work[i].explicit_sizes ? AxisChunks(work[i].sizes) : AxisChunks(static_cast<std::int64_t>(work[i].size));
  }

  Chunks chunks(ndim);
  for (std::size_t i = 0; i < ndim; ++i) {
    const AxisChunks& a = axes[i];
    if (a.kind != AxisChunks::Kind::sizes) {
      chunks[i] = blocks_of(shape[i], a.size, i);
      continue;
    }
    bool unknown = shape[i] == kUnknown;
    std::int64_t sum = 0;
    for (std::int64_t c : a.sizes) {
      if (c == kUnknown) unknown = true;
      else if (c < 0)
        bad_chunks("a negative block size " + std::to_string(c) + " in " + shape_str(a.sizes) + " for axis " +
                   std::to_string(i));
      else sum += c;
    }
    if (!unknown && sum != shape[i])
      bad_chunks("block sizes " + shape_str(a.sizes) + " of axis " + std::to_string(i) + " add up to " +
                 std::to_string(sum) + ", not to its length " + std::to_string(shape[i]));
    chunks[i] = a.sizes;
  }
  return chunks;
}

std::vector<std::int64_t> numblocks(const Chunks& chunks) {
  std::vector<std::int64_t> out;
  out.reserve(chunks.size());
  for (const auto& axis : chunks) out.push_back(static_cast<std::int64_t>(axis.size()));
  return out;
}

std::vector<std::int64_t> block_offsets(std::span<const std::int64_t> axis_chunks) {
  std::vector<std::int64_t> out(axis_chunks.size() + 1, 0);
  std::partial_sum(axis_chunks.begin(), axis_chunks.end(), out.begin() + 1);
  return out;
}

Shape block_shape(const Chunks& chunks, std::span<const std::int64_t> index) {
  if (index.size() != chunks.size())
    throw ValueError("bad-index", "block_shape: block index " + shape_str(index) + " for an array of " +
                                      std::to_string(chunks.size()) + " dimensions");
  Shape out(chunks.size());
  for (std::size_t axis = 0; axis < chunks.size(); ++axis) {
    if (index[axis] < 0 || index[axis] >= static_cast<std::int64_t>(chunks[axis].size()))
      throw ValueError("bad-index", "block_shape: block index " + shape_str(index) + " is outside the blocks " +
                                        shape_str(numblocks(chunks)));
    out[axis] = chunks[axis][static_cast<std::size_t>(index[axis])];
  }
  return out;
}

bool has_unknown(const Chunks& chunks) noexcept {
  return std::any_of(chunks.begin(), chunks.end(), [](const auto& axis) {
    return std::find(axis.begin(), axis.end(), kUnknown) != axis.end();
  });
}

std::string chunks_str(const Chunks& chunks) {
  std::string out = "(";
  for (std::size_t axis = 0; axis < chunks.size(); ++axis) {
    if (axis > 0) out += ", ";
    out += "(";
    for (std::size_t i = 0; i < chunks[axis].size(); ++i) {
      if (i > 0) out += ", ";
      out += chunks[axis][i] == kUnknown ? "nan" : std::to_string(chunks[axis][i]);
    }
    out += chunks[axis].size() == 1 ? ",)" : ")";
  }
  return out + (chunks.size() == 1 ? ",)" : ")");
}

std::size_t configured_chunk_bytes() { return static_cast<std::size_t>(config::get_bytes("array.chunk-size")); }

}  // namespace weft::array
