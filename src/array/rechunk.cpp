// src/array/rechunk.cpp - rechunk and its plan (dask.array.rechunk).
//
// A direct rechunk makes each output block from the pieces of the input
// blocks it overlaps (one task per output block). plan_rechunk, a port of
// dask's, decides when to go through intermediate chunkings instead: when
// the pieces would be many, it first merges blocks along axes where the
// target has fewer blocks (as far as block_size_limit allows), so that the
// later steps cut fewer, larger blocks.
#include "weft/array/rechunk.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <utility>

#include "kernels/rechunk.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace {

using AxisChunkSizes = std::vector<std::int64_t>;

// A part of one input block that an output block takes along one axis.
struct AxisPiece {
  std::int64_t block;
  std::int64_t start;
  std::int64_t length;
};

// For each block of `new_axis`, the pieces of the blocks of `old_axis` that
// it covers, in order. An empty block takes an empty piece of the block
// where it lies.
std::vector<std::vector<AxisPiece>> intersect_axis(const AxisChunkSizes& old_axis, const AxisChunkSizes& new_axis) {
  const std::vector<std::int64_t> old_offsets = block_offsets(old_axis);
  const auto last_old = static_cast<std::int64_t>(old_axis.size()) - 1;
  std::vector<std::vector<AxisPiece>> out(new_axis.size());
  std::int64_t j = 0;
  std::int64_t at = 0;
  for (std::size_t i = 0; i < new_axis.size(); ++i) {
    const std::int64_t stop = at + new_axis[i];
    // Move to the old block holding `at`, past empty ones.
    while (j < last_old && old_offsets[static_cast<std::size_t>(j + 1)] <= at) ++j;
    if (stop == at) out[i].push_back({j, at - old_offsets[static_cast<std::size_t>(j)], 0});
    for (std::int64_t pos = at; pos < stop; ++j) {
      const std::int64_t end = std::min(stop, old_offsets[static_cast<std::size_t>(j + 1)]);
      if (end > pos) {
        out[i].push_back({j, pos - old_offsets[static_cast<std::size_t>(j)], end - pos});
        pos = end;
      }
      if (pos == stop) break;
    }
    at = stop;
  }
  return out;
}

// The task of one output block of a direct rechunk of x.
TaskPtr rechunk_block_task(const Array& x, const std::vector<std::vector<std::vector<AxisPiece>>>& pieces,
                           std::span<const std::int64_t> index, Key key) {
  const std::size_t ndim = index.size();
  std::vector<const std::vector<AxisPiece>*> axis_pieces(ndim);
  std::vector<std::int64_t> counts(ndim);
  for (std::size_t a = 0; a < ndim; ++a) {
    axis_pieces[a] = &pieces[a][static_cast<std::size_t>(index[a])];
    counts[a] = static_cast<std::int64_t>(axis_pieces[a]->size());
  }
  std::vector<std::int64_t> in_index(ndim);
  if (shape_size(counts) == 1) {
    kernels::BlockRegion region{Shape(ndim), Shape(ndim)};
    bool whole = true;
    for (std::size_t a = 0; a < ndim; ++a) {
      const AxisPiece& p = axis_pieces[a]->front();
      in_index[a] = p.block;
      region.offset[a] = p.start;
      region.shape[a] = p.length;
      whole = whole && p.start == 0 && p.length == x.chunks()[a][static_cast<std::size_t>(p.block)];
    }
    if (whole) return weft::detail::make_call_task(std::move(key), true, &kernels::same_block, x.block(in_index));
    return weft::detail::make_call_task(std::move(key), true, &kernels::block_region, std::move(region),
                                        x.block(in_index));
  }
  kernels::PieceGrid grid{counts, {}, {}};
  for (const auto* axis : axis_pieces)
    for (const AxisPiece& p : *axis) {
      grid.starts.push_back(p.start);
      grid.lengths.push_back(p.length);
    }
  std::vector<Delayed<NDArray>> inputs;
  inputs.reserve(static_cast<std::size_t>(shape_size(counts)));
  kernels::for_each_index(counts, [&](std::span<const std::int64_t> at) {
    for (std::size_t a = 0; a < ndim; ++a) in_index[a] = (*axis_pieces[a])[static_cast<std::size_t>(at[a])].block;
    inputs.push_back(x.block(in_index));
  });
  return weft::detail::make_call_task(std::move(key), false, &kernels::merge_pieces, std::move(grid),
                                      std::move(inputs));
}

// One step: x in blocks of `chunks`, each made from the input blocks it overlaps.
Array rechunk_direct(const Array& x, const Chunks& chunks) {
  using Pieces = std::vector<std::vector<std::vector<AxisPiece>>>;  // per axis, per output block
  Pieces per_axis;
  for (std::size_t a = 0; a < chunks.size(); ++a) per_axis.push_back(intersect_axis(x.chunks()[a], chunks[a]));
  auto pieces = std::make_shared<const Pieces>(std::move(per_axis));
  detail::ArrayMeta meta{"rechunk", detail::op_token("rechunk", x, chunks), x.shape(), chunks, x.dtype()};
  return make_array(std::move(meta), [x, pieces](std::span<const std::int64_t> index, Key key) {
    return rechunk_block_task(x, *pieces, index, std::move(key));
  });
}

// --- dask.array.rechunk's planning helpers, ported function by function ---

std::int64_t number_of_blocks(const Chunks& chunks) {
  std::int64_t n = 1;
  for (const auto& axis : chunks) n *= static_cast<std::int64_t>(axis.size());
  return n;
}

std::int64_t largest_width(const AxisChunkSizes& axis) { return *std::max_element(axis.begin(), axis.end()); }

std::int64_t largest_block_size(const Chunks& chunks) {
  std::int64_t n = 1;
  for (const auto& axis : chunks) n *= largest_width(axis);
  return n;
}

// The chunks minimally divided so that none is wider than max_width.
AxisChunkSizes divide_to_width(const AxisChunkSizes& desired, std::int64_t max_width) {
  AxisChunkSizes out;
  for (std::int64_t c : desired) {
    const std::int64_t divides = (c + max_width - 1) / max_width;
    for (std::int64_t i = 0; i < divides; ++i) {
      const std::int64_t n = c / (divides - i);
      out.push_back(n);
      c -= n;
    }
  }
  return out;
}

// The chunks minimally merged (neighbours, narrowest pairs first) to at most
// max_number of them.
AxisChunkSizes merge_to_number(const AxisChunkSizes& desired, std::int64_t max_number) {
  const auto count = static_cast<std::int64_t>(desired.size());
  if (count <= max_number) return desired;
  if (std::all_of(desired.begin(), desired.end(), [&](std::int64_t c) { return c == desired.front(); })) {
    // Equal chunks: an even result directly.
    const std::int64_t w = desired.front();
    const std::int64_t total = count * w;
    const std::int64_t width = w * (total / max_number / w);
    const std::int64_t adjust = (total - max_number * width) / w;
    AxisChunkSizes out(static_cast<std::size_t>(adjust), width + w);
    out.resize(static_cast<std::size_t>(max_number), width);
    return out;
  }
  using Pair = std::tuple<std::int64_t, std::size_t, std::size_t>;  // (width, i, j)
  std::priority_queue<Pair, std::vector<Pair>, std::greater<>> heap;
  for (std::size_t i = 0; i + 1 < desired.size(); ++i) heap.emplace(desired[i] + desired[i + 1], i, i + 1);
  AxisChunkSizes chunks = desired;
  for (std::int64_t merges = count - max_number; merges > 0;) {
    auto [width, i, j] = heap.top();
    heap.pop();
    // A pair that an earlier merge changed goes back with its new width.
    if (chunks[j] == 0) {
      while (chunks[j] == 0) ++j;
      heap.emplace(chunks[i] + chunks[j], i, j);
    } else if (chunks[i] + chunks[j] != width) {
      heap.emplace(chunks[i] + chunks[j], i, j);
    } else {
      chunks[i] = 0;
      chunks[j] = width;
      --merges;
    }
  }
  std::erase(chunks, 0);
  return chunks;
}

// Merges neighbouring blocks along the axes where new_chunks has fewer
// blocks, as far as block_size_limit (elements) allows. Returns the chunks
// and whether the limit stopped a merge.
std::pair<Chunks, bool> find_merge_rechunk(const Chunks& old_chunks, const Chunks& new_chunks,
                                           double block_size_limit) {
  const std::size_t ndim = old_chunks.size();
  std::vector<std::int64_t> old_width(ndim), new_width(ndim);
  std::vector<double> graph_size_effect(ndim), block_size_effect(ndim);
  std::vector<std::size_t> candidates;
  for (std::size_t a = 0; a < ndim; ++a) {
    old_width[a] = largest_width(old_chunks[a]);
    new_width[a] = largest_width(new_chunks[a]);
    graph_size_effect[a] = static_cast<double>(new_chunks[a].size()) / static_cast<double>(old_chunks[a].size());
    block_size_effect[a] = static_cast<double>(new_width[a]) / static_cast<double>(std::max<std::int64_t>(old_width[a], 1));
    if (graph_size_effect[a] <= 1.0) candidates.push_back(a);
  }
  // A knapsack with multiplicative values and weights: greedily take the axes
  // that shrink the graph most per growth of the largest block.
  const auto value_per_weight = [&](std::size_t a) {
    const double bse = block_size_effect[a] == 1.0 ? 1.0 + 1e-9 : block_size_effect[a];
    return bse > 0 ? std::log(graph_size_effect[a]) / std::log(bse) : 0.0;
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](std::size_t a, std::size_t b) { return value_per_weight(a) < value_per_weight(b); });
  std::int64_t block_size = largest_block_size(old_chunks);
  Chunks chunks = old_chunks;
  bool limit_hit = false;
  for (std::size_t a : candidates) {
    const std::int64_t grown = block_size * new_width[a] / std::max<std::int64_t>(old_width[a], 1);
    if (static_cast<double>(grown) <= block_size_limit) {
      chunks[a] = new_chunks[a];
      block_size = grown;
    } else {
      // Part of the way: the new chunks cut to the width the limit allows.
      const auto width_limit = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(block_size_limit * static_cast<double>(old_width[a]) /
                                       static_cast<double>(block_size)));
      AxisChunkSizes divided = divide_to_width(new_chunks[a], width_limit);
      if (divided.size() <= old_chunks[a].size()) {
        block_size = block_size * largest_width(divided) / old_width[a];
        chunks[a] = std::move(divided);
      }
      limit_hit = true;
    }
  }
  return {std::move(chunks), limit_hit};
}

// Splits blocks along axes where new_chunks has more blocks, keeping the
// estimated graph size within graph_size_limit.
Chunks find_split_rechunk(const Chunks& old_chunks, const Chunks& new_chunks, double graph_size_limit) {
  Chunks chunks = old_chunks;
  for (std::size_t a = 0; a < old_chunks.size(); ++a) {
    const auto graph_size = static_cast<double>(estimate_graph_size(chunks, new_chunks));
    if (graph_size > graph_size_limit) break;
    if (old_chunks[a].size() > new_chunks[a].size()) continue;  // would be merged anyway
    const auto max_number =
        static_cast<std::int64_t>(static_cast<double>(old_chunks[a].size()) * graph_size_limit / graph_size);
    AxisChunkSizes merged = merge_to_number(new_chunks[a], max_number);
    if (merged.size() >= old_chunks[a].size() && largest_width(merged) <= largest_width(old_chunks[a]))
      chunks[a] = std::move(merged);
  }
  return chunks;
}

}  // namespace

std::int64_t estimate_graph_size(const Chunks& old_chunks, const Chunks& new_chunks) {
  std::int64_t crossed = 1;
  for (std::size_t a = 0; a < old_chunks.size(); ++a)
    crossed *= old_chunks[a] == new_chunks[a]
                   ? static_cast<std::int64_t>(old_chunks[a].size())
                   : static_cast<std::int64_t>(old_chunks[a].size() + new_chunks[a].size()) - 1;
  return crossed;
}

std::vector<Chunks> plan_rechunk(const Chunks& old_chunks, const Chunks& new_chunks, std::size_t itemsize,
                                 double threshold, std::size_t block_size_limit) {
  const bool trivial =
      old_chunks.size() <= 1 || old_chunks == new_chunks || has_unknown(old_chunks) ||
      std::any_of(new_chunks.begin(), new_chunks.end(), [](const AxisChunkSizes& axis) {
        return std::accumulate(axis.begin(), axis.end(), std::int64_t{0}) == 0;
      });
  if (trivial) return {new_chunks};
  // In elements, and never below the blocks that exist before and after.
  const double limit =
      std::max({static_cast<double>(block_size_limit) / static_cast<double>(itemsize),
                static_cast<double>(largest_block_size(old_chunks)), static_cast<double>(largest_block_size(new_chunks))});
  const double graph_size_threshold =
      threshold * static_cast<double>(number_of_blocks(old_chunks) + number_of_blocks(new_chunks));
  std::vector<Chunks> steps;
  Chunks current = old_chunks;
  for (bool first_pass = true;; first_pass = false) {
    const auto graph_size = static_cast<double>(estimate_graph_size(current, new_chunks));
    if (graph_size < graph_size_threshold) break;
    // After a merge pass that hit the limit, accept a larger graph to come
    // nearer the goal and to make the largest block small enough to merge.
    auto [chunks, limit_hit] = find_merge_rechunk(
        first_pass ? current : find_split_rechunk(current, new_chunks, graph_size * threshold), new_chunks, limit);
    if ((chunks == current && !first_pass) || chunks == new_chunks) break;
    if (chunks != current) steps.push_back(chunks);
    current = std::move(chunks);
    if (!limit_hit) break;
  }
  steps.push_back(new_chunks);
  return steps;
}

namespace {

// A regular chunking of n elements: blocks of `width` and the leftover.
AxisChunkSizes regular_chunks(std::int64_t n, std::int64_t width) {
  AxisChunkSizes out(static_cast<std::size_t>(n / width), width);
  if (n % width != 0) out.push_back(n % width);
  return out;
}

// dask's _balance_chunksizes: of the regular chunkings whose width lies
// within half the median block of `chunks`, the one with as many blocks (one
// fewer when the smallest block is at most half the largest: that leftover
// goes) and the least difference between its largest and smallest block;
// nullopt when there is none.
std::optional<AxisChunkSizes> balanced_axis(AxisChunkSizes chunks) {
  const std::int64_t total = std::accumulate(chunks.begin(), chunks.end(), std::int64_t{0});
  if (total == 0) return chunks;
  std::size_t blocks = chunks.size();
  const auto [smallest, largest] = std::minmax_element(chunks.begin(), chunks.end());
  if (2 * *smallest <= *largest) --blocks;
  std::sort(chunks.begin(), chunks.end());
  const std::size_t mid = chunks.size() / 2;
  const std::int64_t median = chunks.size() % 2 ? chunks[mid] : (chunks[mid - 1] + chunks[mid]) / 2;
  std::optional<AxisChunkSizes> best;
  for (std::int64_t width = std::max<std::int64_t>(1, median - median / 2); width <= median + median / 2; ++width) {
    AxisChunkSizes candidate = regular_chunks(total, width);
    if (candidate.size() != blocks) continue;
    const auto spread = [](const AxisChunkSizes& c) {
      const auto [lo, hi] = std::minmax_element(c.begin(), c.end());
      return *hi - *lo;
    };
    if (!best || spread(candidate) < spread(*best)) best = std::move(candidate);
  }
  return best;
}

}  // namespace

Array rechunk(const Array& x, const ChunkSpec& spec, const RechunkOptions& options) {
  if (has_unknown(x.chunks()))
    throw ValueError("unknown-chunks", "rechunk: the array has chunks of unknown size " + chunks_str(x.chunks()) +
                                           "; compute the chunk sizes first");
  Chunks chunks;
  try {
    chunks = normalize_chunks(spec, x.shape(), x.dtype(), options.block_size_limit, &x.chunks());
  } catch (const ValueError& e) {
    throw ValueError(e.id().substr(std::string_view("value.").size()), "rechunk: " + e.text());
  }
  if (has_unknown(chunks))
    throw ValueError("bad-chunks", "rechunk: the new chunks " + chunks_str(chunks) + " have blocks of unknown size");
  if (options.balance)
    for (std::size_t axis = 0; axis < chunks.size(); ++axis) {
      if (auto balanced = balanced_axis(chunks[axis])) {
        chunks[axis] = std::move(*balanced);
      } else {
        std::fprintf(stderr,
                     "weft: warning: rechunk: cannot balance the chunks %s of axis %zu; try larger chunks "
                     "(kept as they are)\n",
                     chunks_str(Chunks{chunks[axis]}).c_str(), axis);
      }
    }
  if (chunks == x.chunks()) return x;
  Array out = x;
  for (const Chunks& step :
       plan_rechunk(x.chunks(), chunks, x.itemsize(), options.threshold.value_or(kDefaultRechunkThreshold),
                    options.block_size_limit.value_or(configured_chunk_bytes())))
    out = rechunk_direct(out, step);
  return out;
}

Array Array::rechunk(const ChunkSpec& chunks) const { return array::rechunk(*this, chunks); }

}  // namespace weft::array
