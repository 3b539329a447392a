// src/array/kernels/elementwise.cpp - evaluating a fused elementwise
// program over a block, tile by tile (see elementwise.hpp).
#include "elementwise.hpp"

#include <algorithm>
#include <complex>
#include <cstring>
#include <memory>
#include <string>

#include "random.hpp"
#include "weft/error.hpp"

namespace weft::array::kernels {

const char* op_name(Op op) noexcept {
  static constexpr const char* kNames[] = {
      "load", "constant", "astype", "random",
      "negative", "positive", "absolute", "fabs", "sign", "reciprocal", "square", "sqrt", "cbrt",
      "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
      "arctanh", "deg2rad", "rad2deg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
      "floor", "ceil", "trunc", "rint", "spacing", "conjugate", "invert", "logical_not",
      "isnan", "isinf", "isfinite", "signbit", "real", "imag",
      "frexp", "frexp", "modf",
      "add", "subtract", "multiply", "true_divide", "floor_divide", "remainder", "fmod", "power",
      "arctan2", "hypot", "logaddexp", "logaddexp2", "maximum", "minimum", "fmax", "fmin",
      "copysign", "nextafter", "ldexp",
      "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift",
      "logical_and", "logical_or", "logical_xor",
      "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
      "complex", "where"};
  static_assert(std::size(kNames) == static_cast<std::size_t>(Op::where) + 1);
  return kNames[static_cast<std::size_t>(op)];
}

OpKernel op_kernel(Op op, DType arg) {
  OpKernel k = arithmetic_kernel(op, arg);
  if (!k) k = math_kernel(op, arg);
  if (!k)
    throw TypeError("ufunc-dtype", std::string("no kernel of '") + op_name(op) + "' for " +
                                       std::string(dtype_name(arg)));
  return k;
}

Instr RandomLeaf::instruction(std::uint64_t key, int ndim) {
  RandomLeaf leaf;
  leaf.key = key;
  for (int a = 0; a < ndim; ++a) leaf.axes[static_cast<std::size_t>(a)] = static_cast<std::uint8_t>(a);
  Instr ins;
  ins.op = Op::random;
  ins.dtype = ins.arg_dtype = DType::float64;
  leaf.store(ins);
  return ins;
}

RandomLeaf RandomLeaf::of(const Instr& ins) {
  RandomLeaf leaf;
  std::memcpy(&leaf.key, ins.value.data(), 8);
  std::memcpy(&leaf.block, ins.value.data() + 8, 8);
  std::memcpy(leaf.axes.data(), ins.args.data(), kMaxAxes);
  return leaf;
}

void RandomLeaf::store(Instr& ins) const {
  static_assert(sizeof(Instr::args) == kMaxAxes);
  std::memcpy(ins.value.data(), &key, 8);
  std::memcpy(ins.value.data() + 8, &block, 8);
  std::memcpy(ins.args.data(), axes.data(), kMaxAxes);
}

namespace {

/// Elements per tile: a few tiles of the widest dtype stay in L1/L2.
constexpr std::int64_t kTileElements = 2048;
/// Bytes of a tile buffer: room for the widest dtype (complex128).
constexpr std::size_t kTileBytes = kTileElements * sizeof(std::complex<double>);
/// Rows this long make a tile alone when a leaf can be read in place only
/// one row at a time (TileEvaluator::tile_rows).
constexpr std::int64_t kLongRow = kTileElements / 4;

/// The block's index space with size-1 axes dropped and adjacent axes
/// merged where every leaf's strides allow: a C-contiguous expression
/// becomes one axis, so most tiles are single strided runs.
struct Layout {
  Shape extent;                       ///< at least one axis
  std::vector<Strides> leaf_strides;  ///< per leaf, per axis of `extent`
};

Layout coalesce(const Shape& block_shape, const std::vector<NDArray>& views) {
  Layout out;
  out.leaf_strides.resize(views.size());
  for (std::size_t axis = 0; axis < block_shape.size(); ++axis) {
    const std::int64_t n = block_shape[axis];
    if (n == 1) continue;
    out.extent.push_back(n);
    for (std::size_t k = 0; k < views.size(); ++k) out.leaf_strides[k].push_back(views[k].strides()[axis]);
  }
  // Merge from the inside out: axis a joins a+1 when, for every leaf, a
  // step along a equals a full run of a+1.
  for (std::size_t a = out.extent.size(); a-- > 1;) {
    const std::int64_t inner = out.extent[a];
    const bool mergeable = std::all_of(out.leaf_strides.begin(), out.leaf_strides.end(), [&](const Strides& s) {
      return s[a - 1] == s[a] * inner;
    });
    if (!mergeable) continue;
    out.extent[a - 1] *= inner;
    out.extent.erase(out.extent.begin() + static_cast<std::ptrdiff_t>(a));
    for (Strides& s : out.leaf_strides) s.erase(s.begin() + static_cast<std::ptrdiff_t>(a - 1));
  }
  if (out.extent.empty()) {
    out.extent.push_back(1);
    for (Strides& s : out.leaf_strides) s.push_back(0);
  }
  return out;
}

/// One block's evaluation: kernels looked up and tile buffers assigned
/// once, then the program runs tile after tile.
class TileEvaluator {
 public:
  TileEvaluator(const Program& program, std::span<const NDArray> leaves, const Shape& block_shape)
      : program_(program), block_shape_(block_shape), total_(shape_size(block_shape)) {
    if (program.empty()) throw ValueError("bad-program", "elementwise: an empty program");
    views_.reserve(leaves.size());
    for (const NDArray& leaf : leaves) views_.push_back(leaf.broadcast_to(block_shape));
    layout_ = coalesce(block_shape, views_);
    plan();
    rows_per_tile_ = tile_rows();
  }

  std::int64_t total() const noexcept { return total_; }

  /// Runs every tile. The result of the last instruction goes to
  /// `out_base` (C order, the program's dtype) when it is not null, else to
  /// a tile buffer; on_tile(offset, result, count) follows each tile.
  template <class OnTile>
  void run(std::byte* out_base, OnTile&& on_tile) {
    if (total_ == 0) return;
    const std::size_t naxes = layout_.extent.size();
    const std::int64_t inner = layout_.extent.back();
    std::vector<std::int64_t> row(naxes - 1, 0);        // outer index of the current row
    std::vector<std::int64_t> row_offset(views_.size(), 0);  // per leaf, of the current row
    std::vector<const void*> reg(program_.size(), nullptr);
    const std::size_t last = program_.size() - 1;
    const std::size_t out_size = itemsize(program_.back().dtype);

    std::int64_t column = 0, offset = 0;
    while (offset < total_) {
      // A tile of several rows stays within one run of the second-to-last
      // axis, so that a leaf whose rows follow each other is read in place.
      const std::int64_t rows = (naxes == 1 || inner >= kTileElements)
                                    ? 1
                                    : std::min(rows_per_tile_, layout_.extent[naxes - 2] - row.back());
      const std::int64_t run = inner >= kTileElements ? std::min(kTileElements, inner - column) : inner;
      const std::int64_t count = rows * run;
      for (std::size_t i = 0; i <= last; ++i) {
        const Instr& ins = program_[i];
        void* dst = (i == last && out_base) ? out_base + offset * static_cast<std::int64_t>(out_size) : slot_[i];
        if (ins.op == Op::constant) {
          reg[i] = slot_[i];
        } else if (ins.op == Op::random) {
          reg[i] = generate(i, ins, offset, count, static_cast<double*>(dst));
        } else if (ins.op == Op::load) {
          reg[i] = load(ins, rows, run, column, row, row_offset, dst);
        } else {
          const void* args[3];
          for (int a = 0; a < op_arity(ins.op); ++a) args[a] = reg[static_cast<std::size_t>(ins.args[a])];
          if (ins.op == Op::cast) convert_[i](args[0], 1, dst, count);
          else kernel_[i](args, dst, count);
          reg[i] = dst;
        }
      }
      if (out_base && reg[last] != out_base + offset * static_cast<std::int64_t>(out_size))
        std::memcpy(out_base + offset * static_cast<std::int64_t>(out_size), reg[last],
                    static_cast<std::size_t>(count) * out_size);
      on_tile(offset, reg[last], count);
      offset += count;
      column += run;
      if (column == inner) {
        column = 0;
        for (std::int64_t r = 0; r < rows; ++r) next_row(row, row_offset);
      }
    }
  }

 private:
  /// Rows per tile: enough to fill one when rows are short, but one when
  /// some leaf is read in place one row at a time and not several (its rows
  /// do not follow each other: a row broadcast down the block, a slice),
  /// which several rows would copy, and rows are long enough alone.
  std::int64_t tile_rows() const {
    const std::size_t naxes = layout_.extent.size();
    const std::int64_t inner = layout_.extent.back();
    if (naxes == 1 || inner >= kTileElements) return 1;
    if (inner >= kLongRow) {
      for (const Instr& ins : program_)
        if (ins.op == Op::load && reads_in_place(ins, 1, inner) && !reads_in_place(ins, 2, inner)) return 1;
    }
    return kTileElements / inner;
  }

  /// Whether load() reads leaf instruction `ins` in place for a tile of
  /// `rows` rows of `run` elements (else it copies the tile).
  bool reads_in_place(const Instr& ins, std::int64_t rows, std::int64_t run) const {
    const auto leaf = static_cast<std::size_t>(ins.args[0]);
    const Strides& strides = layout_.leaf_strides[leaf];
    const bool rows_adjacent = rows == 1 || strides[strides.size() - 2] == run;
    return strides.back() == 1 && rows_adjacent && views_[leaf].dtype() == ins.dtype;
  }

  void plan() {
    const std::size_t n = program_.size();
    kernel_.assign(n, nullptr);
    convert_.assign(n, nullptr);
    slot_.assign(n, nullptr);
    std::vector<std::size_t> last_use(n, 0);
    for (std::size_t i = 0; i < n; ++i) {
      const Instr& ins = program_[i];
      for (int a = 0; a < op_arity(ins.op); ++a) last_use[static_cast<std::size_t>(ins.args[a])] = i;
    }
    last_use[n - 1] = n;  // the result outlives the tile's instructions
    std::vector<std::byte*> free_slots;
    for (std::size_t i = 0; i < n; ++i) {
      const Instr& ins = program_[i];
      if (ins.op == Op::load) {
        const auto leaf = static_cast<std::size_t>(ins.args[0]);
        if (leaf >= views_.size()) throw ValueError("bad-program", "elementwise: a load of a missing leaf");
        convert_[i] = convert_kernel(views_[leaf].dtype(), ins.dtype);
      } else if (ins.op == Op::cast) {
        convert_[i] = convert_kernel(ins.arg_dtype, ins.dtype);
      } else if (ins.op == Op::random) {
        check_random(ins);
      } else if (ins.op != Op::constant) {
        kernel_[i] = op_kernel(ins.op, ins.arg_dtype);
      }
      // A result gets a buffer no live register holds (never its own
      // operand's: dtypes of different sizes cannot share one in place).
      if (!free_slots.empty() && ins.op != Op::constant) {
        slot_[i] = free_slots.back();
        free_slots.pop_back();
      } else {
        buffers_.emplace_back(new std::byte[kTileBytes]);
        slot_[i] = buffers_.back().get();
      }
      if (ins.op == Op::constant) fill_constant(ins, slot_[i], std::min(total_, kTileElements));
      for (int a = 0; a < op_arity(ins.op); ++a) {
        const auto arg = static_cast<std::size_t>(ins.args[a]);
        if (last_use[arg] == i && program_[arg].op != Op::constant &&
            std::find(free_slots.begin(), free_slots.end(), slot_[arg]) == free_slots.end())
          free_slots.push_back(slot_[arg]);
      }
    }
  }

  /// A random instruction's axes must be a permutation of the block's.
  void check_random(const Instr& ins) const {
    const RandomLeaf leaf = RandomLeaf::of(ins);
    const std::size_t ndim = block_shape_.size();
    std::array<bool, RandomLeaf::kMaxAxes> seen{};
    bool valid = ndim <= RandomLeaf::kMaxAxes;
    for (std::size_t a = 0; valid && a < ndim; ++a) {
      valid = leaf.axes[a] < ndim && !seen[leaf.axes[a]];
      if (valid) seen[leaf.axes[a]] = true;
    }
    if (!valid) throw ValueError("bad-program", "elementwise: a random leaf whose axes do not match its block");
  }

  /// Elements [offset, offset + count) of the block from random instruction
  /// `ins` (the program's instruction-th): a run of its random block's stream when the
  /// axes are in order, else each element's position in the random block,
  /// walked in C order. Written to dst, or where the tile before put them.
  const double* generate(std::size_t instruction, const Instr& ins, std::int64_t offset, std::int64_t count, double* dst) {
    const RandomLeaf leaf = RandomLeaf::of(ins);
    const std::size_t ndim = block_shape_.size();
    bool in_order = true;
    for (std::size_t a = 0; a < ndim; ++a) in_order = in_order && leaf.axes[a] == a;
    if (in_order) {
      uniform_doubles(leaf.key, leaf.block, static_cast<std::uint64_t>(offset), dst, count);
      return dst;
    }
    // The random block's shape is this block's with the axes permuted back.
    Shape source(ndim);
    for (std::size_t a = 0; a < ndim; ++a) source[leaf.axes[a]] = block_shape_[a];
    const Strides source_strides = c_strides(source);
    Strides step(ndim);  // along this block's axis a, in the random block
    for (std::size_t a = 0; a < ndim; ++a) step[a] = source_strides[leaf.axes[a]];
    // The axis along which the random block's elements are consecutive: an
    // element there with an even position and its successor along that axis
    // (`partner` elements further) are one ARS group, made once.
    std::size_t unit_axis = 0;
    while (step[unit_axis] != 1) ++unit_axis;
    const std::int64_t partner = c_strides(block_shape_)[unit_axis];
    std::vector<std::int64_t> index(ndim);
    std::int64_t rest = offset, at = 0;
    for (std::size_t a = ndim; a-- > 0;) {
      index[a] = rest % block_shape_[a];
      rest /= block_shape_[a];
      at += index[a] * step[a];
    }
    // Walked row by row along the last axis (an element's partner is never
    // in its own row unless the unit axis is the last, which the first
    // branch makes a run of the stream).
    const std::size_t last = ndim - 1;
    const std::int64_t length = block_shape_[last], stride = step[last];
    // When the unit axis is the one before the last (a transposed matrix),
    // an even row and the next are, column by column, the two halves of
    // groups `stride / 2` apart: a tile of whole such row pairs is made
    // straight into its rows, without the walk below.
    if (unit_axis + 1 == last && index[last] == 0 && count % (2 * length) == 0 && index[unit_axis] % 2 == 0 &&
        index[unit_axis] + count / length <= block_shape_[unit_axis] && at % 2 == 0 && stride % 2 == 0) {
      for (std::int64_t r = 0; r < count; r += 2 * length, at += 2)
        uniform_halves_strided(leaf.key, leaf.block, static_cast<std::uint64_t>(at / 2),
                               static_cast<std::uint64_t>(stride / 2), dst + r, dst + r + length, length);
      return dst;
    }
    // The same for tiles of one row: an even row's tile makes the next row
    // too, which the next tile then reads where it was put.
    if (pending_.size() > instruction && pending_[instruction].offset == offset && count == length)
      return pending_[instruction].values.data();
    if (unit_axis + 1 == last && index[last] == 0 && count == length && index[unit_axis] % 2 == 0 &&
        index[unit_axis] + 1 < block_shape_[unit_axis] && at % 2 == 0 && stride % 2 == 0) {
      if (pending_.size() <= instruction) pending_.resize(program_.size());
      PendingRow& next = pending_[instruction];
      next.values.resize(static_cast<std::size_t>(length));
      next.offset = offset + length;
      uniform_halves_strided(leaf.key, leaf.block, static_cast<std::uint64_t>(at / 2),
                             static_cast<std::uint64_t>(stride / 2), dst, next.values.data(), length);
      return dst;
    }
    // Sized for the largest tile once (growing only), so no tile fills them.
    const auto most = static_cast<std::size_t>(count);
    if (pair_groups_.size() < most) {
      pair_groups_.resize(most);
      pair_first_.resize(most);
      single_elements_.resize(most);
      single_first_.resize(most);
      values_.resize(2 * most);
    }
    done_.assign(most, 0);
    std::size_t pairs_made = 0, singles_made = 0;
    for (std::int64_t i = 0; i < count;) {
      const std::int64_t run = std::min(length - index[last], count - i);
      if (unit_axis == last) {
        uniform_doubles(leaf.key, leaf.block, static_cast<std::uint64_t>(at), dst + i, run);
      } else {
        const bool pairable = index[unit_axis] + 1 < block_shape_[unit_axis] && i + run - 1 + partner < count;
        for (std::int64_t j = 0; j < run; ++j) {
          if (done_[static_cast<std::size_t>(i + j)]) continue;
          const std::int64_t element = at + j * stride;
          if (pairable && element % 2 == 0) {
            pair_groups_[pairs_made] = static_cast<std::uint64_t>(element) / 2;
            pair_first_[pairs_made++] = i + j;
            done_[static_cast<std::size_t>(i + j + partner)] = 1;
          } else {
            single_elements_[singles_made] = static_cast<std::uint64_t>(element);
            single_first_[singles_made++] = i + j;
          }
        }
      }
      i += run;
      at += run * stride;
      index[last] += run;
      for (std::size_t a = last; a > 0 && index[a] == block_shape_[a]; --a) {  // carry to the next row
        at -= step[a] * block_shape_[a];
        index[a] = 0;
        at += step[a - 1];
        ++index[a - 1];
      }
    }
    const auto pairs = static_cast<std::int64_t>(pairs_made);
    uniform_pairs_at(leaf.key, leaf.block, pair_groups_.data(), values_.data(), pairs);
    for (std::int64_t p = 0; p < pairs; ++p) {
      dst[pair_first_[static_cast<std::size_t>(p)]] = values_[static_cast<std::size_t>(2 * p)];
      dst[pair_first_[static_cast<std::size_t>(p)] + partner] = values_[static_cast<std::size_t>(2 * p + 1)];
    }
    const auto singles = static_cast<std::int64_t>(singles_made);
    uniform_doubles_at(leaf.key, leaf.block, single_elements_.data(), values_.data(), singles);
    for (std::int64_t k = 0; k < singles; ++k)
      dst[single_first_[static_cast<std::size_t>(k)]] = values_[static_cast<std::size_t>(k)];
    return dst;
  }

  /// The first n elements of the slot (no tile of this block is longer).
  static void fill_constant(const Instr& ins, std::byte* slot, std::int64_t n) {
    const std::size_t size = itemsize(ins.dtype);
    for (std::int64_t k = 0; k < n; ++k)
      std::memcpy(slot + static_cast<std::size_t>(k) * size, ins.value.data(), size);
  }

  /// Leaf `ins` over the tile: in place when its run is contiguous and of
  /// the wanted dtype, else gathered (and converted) into `dst`.
  const void* load(const Instr& ins, std::int64_t rows, std::int64_t run, std::int64_t column,
                   const std::vector<std::int64_t>& first_row, const std::vector<std::int64_t>& first_offset,
                   void* dst) {
    const auto leaf = static_cast<std::size_t>(ins.args[0]);
    const NDArray& view = views_[leaf];
    const std::int64_t stride = layout_.leaf_strides[leaf].back();
    const auto* base = static_cast<const std::byte*>(view.raw_data());
    const auto src_size = static_cast<std::int64_t>(view.itemsize());
    const std::size_t dst_size = itemsize(ins.dtype);
    if (reads_in_place(ins, rows, run)) return base + (first_offset[leaf] + column) * src_size;
    const ConvertKernel convert = convert_[static_cast<std::size_t>(&ins - program_.data())];
    // A tile of several rows walks a copy of the cursor.
    row_ = first_row;
    row_offset_ = first_offset;
    for (std::int64_t r = 0; r < rows; ++r) {
      convert(base + (row_offset_[leaf] + column * stride) * src_size, stride,
              static_cast<std::byte*>(dst) + static_cast<std::size_t>(r * run) * dst_size, run);
      if (r + 1 < rows) next_row(row_, row_offset_);
    }
    return dst;
  }

  /// Advances the outer index by one row, updating each leaf's row offset.
  void next_row(std::vector<std::int64_t>& row, std::vector<std::int64_t>& row_offset) const {
    for (std::size_t a = row.size(); a-- > 0;) {
      for (std::size_t k = 0; k < views_.size(); ++k) row_offset[k] += layout_.leaf_strides[k][a];
      if (++row[a] < layout_.extent[a]) return;
      for (std::size_t k = 0; k < views_.size(); ++k) row_offset[k] -= layout_.leaf_strides[k][a] * row[a];
      row[a] = 0;
    }
  }

  const Program& program_;
  Shape block_shape_;
  std::int64_t total_;
  std::vector<NDArray> views_;
  Layout layout_;
  std::vector<OpKernel> kernel_;
  std::vector<ConvertKernel> convert_;
  std::vector<std::byte*> slot_;
  std::vector<std::unique_ptr<std::byte[]>> buffers_;
  std::vector<std::int64_t> row_, row_offset_;  // load()'s cursor over a tile's rows
  // generate()'s scratch: groups made whole and single elements, with their
  // places in the tile.
  std::vector<std::uint64_t> pair_groups_, single_elements_;
  std::vector<std::int64_t> pair_first_, single_first_;
  std::vector<char> done_;
  std::vector<double> values_;
  // Per random instruction: the row an even row's tile made for the next.
  struct PendingRow {
    std::int64_t offset = -1;
    std::vector<double> values;
  };
  std::vector<PendingRow> pending_;
  std::int64_t rows_per_tile_ = 1;
};

}  // namespace

void for_each_tile(const Program& program, std::span<const NDArray> leaves, const Shape& block_shape,
                   const TileSink& sink) {
  TileEvaluator evaluator(program, leaves, block_shape);
  evaluator.run(nullptr, [&](std::int64_t offset, const void* values, std::int64_t count) {
    sink(offset, values, count);
  });
}

NDArray evaluate_block(const Program& program, const Shape& block_shape, const std::vector<NDArray>& leaves) {
  if (program.size() == 1 && program[0].op == Op::load) {
    const NDArray& leaf = leaves.at(static_cast<std::size_t>(program[0].args[0]));
    if (leaf.dtype() == program[0].dtype) return leaf.broadcast_to(block_shape);
  }
  NDArray out(program_dtype(program), block_shape);
  TileEvaluator evaluator(program, leaves, block_shape);
  evaluator.run(static_cast<std::byte*>(out.raw_data()), [](std::int64_t, const void*, std::int64_t) {});
  return out;
}

}  // namespace weft::array::kernels
