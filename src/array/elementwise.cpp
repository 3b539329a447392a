// src/array/elementwise.cpp - elementwise functions as fused layers.
//
// Each function resolves its dtypes as NumPy's ufunc loops do, broadcasts
// and unifies its operands' chunks, then extends an expression program
// (kernels/elementwise.hpp): an operand made by elementwise operations with
// the output's shape and chunks is inlined, any other becomes a leaf. The
// result is one ElementwiseLayer, so a chain is one task per block.
#include "weft/array/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kernels/creation.hpp"
#include "kernels/elementwise.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/error.hpp"

namespace weft::array {

namespace kernels {

ElementwiseLayer::ElementwiseLayer(detail::ArrayMeta meta, Program program, std::vector<Array> leaves)
    : Layer(std::move(meta)), program_(std::move(program)), leaves_(std::move(leaves)) {}

std::vector<Delayed<NDArray>> ElementwiseLayer::leaf_blocks(std::span<const std::int64_t> index) const {
  std::vector<Delayed<NDArray>> blocks;
  blocks.reserve(leaves_.size());
  std::vector<std::int64_t> leaf_index;
  for (const Array& leaf : leaves_) {
    const std::size_t skipped = index.size() - static_cast<std::size_t>(leaf.ndim());
    leaf_index.assign(index.begin() + static_cast<std::ptrdiff_t>(skipped), index.end());
    for (std::size_t a = 0; a < leaf_index.size(); ++a)
      if (leaf.chunks()[a].size() == 1) leaf_index[a] = 0;  // broadcast along this axis
    blocks.push_back(leaf.block(leaf_index));
  }
  return blocks;
}

Program ElementwiseLayer::block_program(std::span<const std::int64_t> index) const {
  Program program = program_;
  const std::vector<std::int64_t> grid = numblocks(meta().chunks);
  std::vector<std::int64_t> source_grid(grid.size()), source_index(grid.size());
  for (Instr& ins : program) {
    if (ins.op != Op::random) continue;
    // The random array's grid and block index are this layer's, its axes
    // put back in the random array's order.
    RandomLeaf leaf = RandomLeaf::of(ins);
    for (std::size_t a = 0; a < grid.size(); ++a) {
      source_grid[leaf.axes[a]] = grid[a];
      source_index[leaf.axes[a]] = index[a];
    }
    leaf.block = static_cast<std::uint64_t>(flat_block_index(source_grid, source_index));
    leaf.store(ins);
  }
  return program;
}

TaskPtr ElementwiseLayer::make_task(std::span<const std::int64_t> index, Key key) const {
  return weft::detail::make_call_task(std::move(key), false, &evaluate_block, block_program(index),
                                      block_shape(meta().chunks, index), leaf_blocks(index));
}

const ElementwiseLayer* elementwise_layer(const Array& x) noexcept {
  return dynamic_cast<const ElementwiseLayer*>(x.layer_ptr().get());
}

std::optional<Array> transpose_generated(const Array& x, std::span<const int> axes) {
  const ElementwiseLayer* layer = elementwise_layer(x);
  if (layer == nullptr || !layer->leaves().empty()) return std::nullopt;
  Program program = layer->program();
  for (Instr& ins : program) {
    if (ins.op != Op::random) continue;
    RandomLeaf leaf = RandomLeaf::of(ins);
    const RandomLeaf before = leaf;
    for (std::size_t a = 0; a < axes.size(); ++a) leaf.axes[a] = before.axes[static_cast<std::size_t>(axes[a])];
    leaf.store(ins);
  }
  Shape shape;
  Chunks chunks;
  for (int a : axes) {
    shape.push_back(x.shape()[static_cast<std::size_t>(a)]);
    chunks.push_back(x.chunks()[static_cast<std::size_t>(a)]);
  }
  const std::vector<int> order(axes.begin(), axes.end());
  detail::ArrayMeta meta{"transpose", detail::op_token("transpose", x, order), std::move(shape), std::move(chunks),
                         x.dtype()};
  return make_array(std::make_shared<ElementwiseLayer>(std::move(meta), std::move(program), std::vector<Array>{}));
}

}  // namespace kernels

namespace {

using kernels::Instr;
using kernels::Op;
using kernels::Program;

/// Longest program an operation inlines; longer ones become a leaf, so that
/// building a very long chain stays linear.
constexpr std::size_t kMaxFusedInstructions = 256;

std::string operand_dtypes(std::span<const DType> dtypes) {
  std::string out;
  for (DType t : dtypes) {
    if (!out.empty()) out += ", ";
    out += dtype_name(t);
  }
  return out;
}

[[noreturn]] void throw_no_loop(std::string_view name, std::span<const DType> dtypes) {
  throw TypeError("ufunc-dtype", std::string(name) + ": not supported for input dtypes (" +
                                     operand_dtypes(dtypes) +
                                     "), which cannot be safely cast to any dtype it has a loop for");
}

/// NumPy's loop order (ufunc.types): the first loop the operands safely
/// cast to is the one that runs.
constexpr DType kLoopOrder[] = {DType::bool_,  DType::int8,    DType::uint8,   DType::int16,    DType::uint16,
                                DType::int32,  DType::uint32,  DType::int64,   DType::uint64,   DType::float32,
                                DType::float64, DType::complex64, DType::complex128};

std::optional<DType> first_loop(kernels::DTypeSet loops, DType common) {
  for (DType d : kLoopOrder)
    if ((loops & kernels::dtype_bit(d)) && can_cast(common, d, Casting::safe)) return d;
  return std::nullopt;
}

/// The dtype NumPy computes `operands` in together: their result_type, with
/// numbers as weak scalars.
DType common_dtype(std::span<const Operand* const> operands) {
  std::optional<DType> arrays;
  for (const Operand* o : operands)
    if (o->is_array()) arrays = arrays ? result_type(*arrays, o->array().dtype()) : o->array().dtype();
  std::optional<DType> out = arrays;
  for (const Operand* o : operands) {
    if (o->is_array()) continue;
    if (arrays) out = result_type(*out, o->scalar());
    else out = out ? result_type(*out, o->scalar().dtype()) : o->scalar().dtype();
  }
  return *out;
}

std::vector<DType> operand_dtype_list(std::span<const Operand* const> operands) {
  std::vector<DType> out;
  for (const Operand* o : operands) out.push_back(o->is_array() ? o->array().dtype() : o->scalar().dtype());
  return out;
}

/// The loop dtype of `op` for these operands, or TypeError "type.ufunc-dtype".
DType resolve_loop(Op op, std::string_view name, std::span<const Operand* const> operands,
                   kernels::DTypeSet loops) {
  const DType common = common_dtype(operands);
  // NumPy refuses these on bool rather than computing them in int8.
  const bool refuses_bool = op == Op::negative || op == Op::positive || op == Op::sign || op == Op::subtract;
  if (refuses_bool && common == DType::bool_) {
    throw TypeError("ufunc-dtype", std::string(name) +
                                       ": not supported for bool; use logical_not, bitwise_xor or invert instead");
  }
  if (op == Op::true_divide && !is_inexact(common)) return DType::float64;
  if (auto loop = first_loop(loops, common)) return *loop;
  throw_no_loop(name, operand_dtype_list(operands));
}

// --- broadcasting and chunks --------------------------------------------------------

Shape broadcast_shape_of(std::string_view op, const std::vector<Shape>& shapes) {
  std::size_t ndim = 0;
  for (const Shape& s : shapes) ndim = std::max(ndim, s.size());
  Shape out(ndim, 1);
  for (const Shape& s : shapes) {
    for (std::size_t a = 0; a < s.size(); ++a) {
      std::int64_t& o = out[ndim - s.size() + a];
      if (s[a] == o || s[a] == 1) continue;
      if (o == 1) {
        o = s[a];
        continue;
      }
      std::string all;
      for (const Shape& t : shapes) all += (all.empty() ? "" : " ") + shape_str(t);
      throw ValueError("shape-mismatch",
                       std::string(op) + ": operands could not be broadcast together with shapes " + all);
    }
  }
  return out;
}

/// The common refinement of several chunkings of one axis (dask's
/// common_blockdim): every block boundary of any of them.
std::vector<std::int64_t> common_refinement(std::string_view op, const std::vector<std::vector<std::int64_t>>& axes) {
  if (std::all_of(axes.begin(), axes.end(), [&](const auto& c) { return c == axes.front(); })) return axes.front();
  for (const auto& c : axes)
    if (std::find(c.begin(), c.end(), kUnknown) != c.end())
      throw ValueError("unknown-chunks", std::string(op) +
                                             ": operands have different chunks of unknown size along an axis; "
                                             "compute their chunk sizes first");
  std::vector<std::int64_t> bounds;
  for (const auto& c : axes) {
    std::int64_t at = 0;
    for (std::int64_t size : c) bounds.push_back(at += size);
  }
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  std::vector<std::int64_t> out;
  std::int64_t previous = 0;
  for (std::int64_t b : bounds) {
    if (b > previous) out.push_back(b - previous);
    previous = b;
  }
  return out;
}

struct Unified {
  Shape shape;
  Chunks chunks;
  std::vector<Array> arrays;  ///< rechunked where their chunks differed
};

/// Broadcasts the arrays' shapes and rechunks each one to the common
/// chunks along the axes it does not broadcast (dask's unify_chunks).
Unified unify(std::string_view op, std::vector<Array> arrays) {
  std::vector<Shape> shapes;
  for (const Array& a : arrays) shapes.push_back(a.shape());
  Unified out{broadcast_shape_of(op, shapes), {}, {}};
  const std::size_t ndim = out.shape.size();
  // An operand's axis a (aligned right) takes part unless it is stretched.
  auto takes_part = [&](const Array& x, std::size_t axis) {
    return axis + static_cast<std::size_t>(x.ndim()) >= ndim &&
           x.shape()[axis + static_cast<std::size_t>(x.ndim()) - ndim] == out.shape[axis];
  };
  for (std::size_t axis = 0; axis < ndim; ++axis) {
    std::vector<std::vector<std::int64_t>> axes;
    for (const Array& x : arrays)
      if (takes_part(x, axis)) axes.push_back(x.chunks()[axis + static_cast<std::size_t>(x.ndim()) - ndim]);
    out.chunks.push_back(common_refinement(op, axes));
  }
  for (Array& x : arrays) {
    Chunks wanted = x.chunks();
    for (std::size_t a = 0; a < wanted.size(); ++a) {
      const std::size_t axis = a + ndim - static_cast<std::size_t>(x.ndim());
      if (takes_part(x, axis)) wanted[a] = out.chunks[axis];
    }
    if (wanted != x.chunks()) x = rechunk(x, ChunkSpec(wanted));
  }
  out.arrays = std::move(arrays);
  return out;
}

// --- building programs ------------------------------------------------------------

/// Builds one output's program: registers are instruction indices.
/// Identical instructions are made once, so an operand used twice (x * x,
/// or shared subexpressions of inlined operands) is computed once per tile.
class ProgramBuilder {
 public:
  ProgramBuilder(std::string_view op, std::span<const Operand* const> operands) {
    std::vector<Array> arrays;
    for (const Operand* o : operands)
      if (o->is_array()) arrays.push_back(o->array());
    Unified u = unify(op, std::move(arrays));
    shape_ = std::move(u.shape);
    chunks_ = std::move(u.chunks);
    unified_ = std::move(u.arrays);
  }

  /// The registers of the operands, in order (arrays as unified).
  std::vector<int> inputs(std::span<const Operand* const> operands, DType scalar_dtype) {
    std::vector<int> regs;
    std::size_t next_array = 0;
    for (const Operand* o : operands)
      regs.push_back(o->is_array() ? input(unified_[next_array++]) : constant(o->scalar(), scalar_dtype));
    return regs;
  }

  int constant(const Scalar& value, DType dtype) {
    Instr ins;
    ins.op = Op::constant;
    ins.dtype = ins.arg_dtype = dtype;
    dispatch(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T v = value.as<T>();
      std::memcpy(ins.value.data(), &v, sizeof v);
    });
    return emit(ins);
  }

  /// `reg` as `dtype`; a load converts while it reads, a constant is
  /// converted now.
  int cast(int reg, DType dtype) {
    const Instr& from = code_[static_cast<std::size_t>(reg)];
    if (from.dtype == dtype) return reg;
    if (from.op == Op::constant) return constant(constant_value(from), dtype);
    Instr ins = from;
    if (from.op != Op::load) {
      ins = Instr{};
      ins.op = Op::cast;
      ins.arg_dtype = from.dtype;
      ins.args[0] = reg;
    }
    ins.dtype = dtype;
    return emit(ins);
  }

  int op(Op op, DType loop, std::initializer_list<int> args) {
    Instr ins;
    ins.op = op;
    ins.arg_dtype = loop;
    ins.dtype = kernels::op_result_dtype(op, loop);
    std::copy(args.begin(), args.end(), ins.args.begin());
    return emit(ins);
  }

  /// The array computing register `result`, named `name`.
  Array finish(std::string_view name, int result) {
    Program program = live_code(result);
    if (program.size() == 1 && program[0].op == Op::load) {
      const Array& leaf = leaves_[static_cast<std::size_t>(program[0].args[0])];
      if (leaf.dtype() == program[0].dtype && leaf.shape() == shape_ && leaf.chunks() == chunks_) return leaf;
    }
    std::vector<Array> leaves;
    std::vector<std::int32_t> leaf_map(leaves_.size(), -1);
    for (Instr& ins : program) {
      if (ins.op != Op::load) continue;
      std::int32_t& mapped = leaf_map[static_cast<std::size_t>(ins.args[0])];
      if (mapped < 0) {
        mapped = static_cast<std::int32_t>(leaves.size());
        leaves.push_back(leaves_[static_cast<std::size_t>(ins.args[0])]);
      }
      ins.args[0] = mapped;
    }
    detail::ArrayMeta meta{std::string(name), detail::op_token(name, program, leaves), shape_, chunks_,
                           kernels::program_dtype(program)};
    return make_array(std::make_shared<kernels::ElementwiseLayer>(std::move(meta), std::move(program),
                                                                  std::move(leaves)));
  }

 private:
  int input(const Array& x) {
    const kernels::ElementwiseLayer* layer = kernels::elementwise_layer(x);
    if (layer && x.shape() == shape_ && x.chunks() == chunks_ &&
        layer->program().size() <= kMaxFusedInstructions)
      return inline_program(*layer);
    Instr ins;
    ins.op = Op::load;
    ins.dtype = ins.arg_dtype = x.dtype();
    ins.args[0] = leaf(x);
    return emit(ins);
  }

  int inline_program(const kernels::ElementwiseLayer& layer) {
    std::vector<int> reg(layer.program().size());
    for (std::size_t i = 0; i < reg.size(); ++i) {
      Instr ins = layer.program()[i];
      if (ins.op == Op::load) {
        ins.args[0] = leaf(layer.leaves()[static_cast<std::size_t>(ins.args[0])]);
      } else {
        for (int a = 0; a < kernels::op_arity(ins.op); ++a)
          ins.args[static_cast<std::size_t>(a)] = reg[static_cast<std::size_t>(ins.args[static_cast<std::size_t>(a)])];
      }
      reg[i] = emit(ins);
    }
    return reg.back();
  }

  static Scalar constant_value(const Instr& ins) {
    return dispatch(ins.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T v;
      std::memcpy(&v, ins.value.data(), sizeof v);
      return Scalar(v);
    });
  }

  std::int32_t leaf(const Array& x) {
    auto [it, added] = leaf_index_.try_emplace(x.name(), static_cast<std::int32_t>(leaves_.size()));
    if (added) leaves_.push_back(x);
    return it->second;
  }

  int emit(const Instr& ins) {
    const std::string bytes(reinterpret_cast<const char*>(&ins), sizeof ins);
    auto [it, added] = seen_.try_emplace(bytes, static_cast<int>(code_.size()));
    if (added) code_.push_back(ins);
    return it->second;
  }

  /// The instructions `result` depends on, renumbered, `result` last.
  Program live_code(int result) const {
    std::vector<bool> live(code_.size(), false);
    live[static_cast<std::size_t>(result)] = true;
    for (std::size_t i = static_cast<std::size_t>(result) + 1; i-- > 0;) {
      if (!live[i]) continue;
      for (int a = 0; a < kernels::op_arity(code_[i].op); ++a)
        live[static_cast<std::size_t>(code_[i].args[static_cast<std::size_t>(a)])] = true;
    }
    Program out;
    std::vector<int> renumber(code_.size(), -1);
    for (std::size_t i = 0; i <= static_cast<std::size_t>(result); ++i) {
      if (!live[i]) continue;
      Instr ins = code_[i];
      for (int a = 0; a < kernels::op_arity(ins.op); ++a)
        ins.args[static_cast<std::size_t>(a)] = renumber[static_cast<std::size_t>(ins.args[static_cast<std::size_t>(a)])];
      renumber[i] = static_cast<int>(out.size());
      out.push_back(ins);
    }
    return out;
  }

  Shape shape_;
  Chunks chunks_;
  std::vector<Array> unified_;
  Program code_;
  std::vector<Array> leaves_;
  std::unordered_map<std::string, std::int32_t> leaf_index_;
  std::unordered_map<std::string, int> seen_;
};

/// A ufunc whose operands all run in one loop dtype (most of them).
Array apply_ufunc(Op op, std::string_view name, std::initializer_list<const Operand*> operands,
                  kernels::DTypeSet loops) {
  const std::span<const Operand* const> list(operands.begin(), operands.size());
  const DType loop = resolve_loop(op, name, list, loops);
  ProgramBuilder b(name, list);
  std::vector<int> regs = b.inputs(list, loop);
  for (int& r : regs) r = b.cast(r, loop);
  std::array<int, 3> args{-1, -1, -1};
  std::copy(regs.begin(), regs.end(), args.begin());
  return b.finish(name, b.op(op, loop, {args[0], args[1], args[2]}));
}

Array unary(Op op, std::string_view name, const Array& x) {
  const Operand a(x);
  return apply_ufunc(op, name, {&a}, kernels::op_loops(op));
}

Array binary(Op op, std::string_view name, const Operand& a, const Operand& b) {
  return apply_ufunc(op, name, {&a, &b}, kernels::op_loops(op));
}

/// The float dtype NumPy's float-only loops compute x in (float32 for
/// 8-bit integers and bool, where NumPy would use float16).
DType float_loop(std::string_view name, DType t) {
  if (auto loop = first_loop(kernels::kFloatSet, t)) return *loop;
  throw_no_loop(name, std::span<const DType>(&t, 1));
}

}  // namespace

// --- arithmetic ---------------------------------------------------------------

Array add(const Operand& a, const Operand& b) { return binary(Op::add, "add", a, b); }
Array subtract(const Operand& a, const Operand& b) { return binary(Op::subtract, "subtract", a, b); }
Array multiply(const Operand& a, const Operand& b) { return binary(Op::multiply, "multiply", a, b); }
Array divide(const Operand& a, const Operand& b) { return binary(Op::true_divide, "divide", a, b); }
Array true_divide(const Operand& a, const Operand& b) { return binary(Op::true_divide, "true_divide", a, b); }
Array floor_divide(const Operand& a, const Operand& b) { return binary(Op::floor_divide, "floor_divide", a, b); }
Array remainder(const Operand& a, const Operand& b) { return binary(Op::remainder, "remainder", a, b); }
Array mod(const Operand& a, const Operand& b) { return binary(Op::remainder, "mod", a, b); }
Array fmod(const Operand& a, const Operand& b) { return binary(Op::fmod, "fmod", a, b); }

Array power(const Operand& a, const Operand& b) {
  const Operand* list[] = {&a, &b};
  if (!b.is_array() && is_integer(resolve_loop(Op::power, "power", list, kernels::op_loops(Op::power))) &&
      b.scalar().as<double>() < 0)
    throw ValueError("negative-int-power", "power: integers to negative integer powers are not allowed");
  return binary(Op::power, "power", a, b);
}

Array float_power(const Operand& a, const Operand& b) {
  return apply_ufunc(Op::power, "float_power", {&a, &b},
                     kernels::dtype_bit(DType::float64) | kernels::dtype_bit(DType::complex128));
}

Array negative(const Array& x) { return unary(Op::negative, "negative", x); }
Array positive(const Array& x) { return unary(Op::positive, "positive", x); }
Array absolute(const Array& x) { return unary(Op::absolute, "absolute", x); }
Array abs(const Array& x) { return unary(Op::absolute, "absolute", x); }
Array fabs(const Array& x) { return unary(Op::fabs, "fabs", x); }
Array sign(const Array& x) { return unary(Op::sign, "sign", x); }
Array reciprocal(const Array& x) { return unary(Op::reciprocal, "reciprocal", x); }
Array square(const Array& x) { return unary(Op::square, "square", x); }
Array sqrt(const Array& x) { return unary(Op::sqrt, "sqrt", x); }
Array cbrt(const Array& x) { return unary(Op::cbrt, "cbrt", x); }

std::pair<Array, Array> divmod(const Operand& a, const Operand& b) {
  return {binary(Op::floor_divide, "divmod", a, b), binary(Op::remainder, "divmod", a, b)};
}

// --- comparison and logic -------------------------------------------------------

Array greater(const Operand& a, const Operand& b) { return binary(Op::greater, "greater", a, b); }
Array greater_equal(const Operand& a, const Operand& b) { return binary(Op::greater_equal, "greater_equal", a, b); }
Array less(const Operand& a, const Operand& b) { return binary(Op::less, "less", a, b); }
Array less_equal(const Operand& a, const Operand& b) { return binary(Op::less_equal, "less_equal", a, b); }
Array equal(const Operand& a, const Operand& b) { return binary(Op::equal, "equal", a, b); }
Array not_equal(const Operand& a, const Operand& b) { return binary(Op::not_equal, "not_equal", a, b); }
Array logical_and(const Operand& a, const Operand& b) { return binary(Op::logical_and, "logical_and", a, b); }
Array logical_or(const Operand& a, const Operand& b) { return binary(Op::logical_or, "logical_or", a, b); }
Array logical_xor(const Operand& a, const Operand& b) { return binary(Op::logical_xor, "logical_xor", a, b); }
Array logical_not(const Array& x) { return unary(Op::logical_not, "logical_not", x); }
Array maximum(const Operand& a, const Operand& b) { return binary(Op::maximum, "maximum", a, b); }
Array minimum(const Operand& a, const Operand& b) { return binary(Op::minimum, "minimum", a, b); }
Array fmax(const Operand& a, const Operand& b) { return binary(Op::fmax, "fmax", a, b); }
Array fmin(const Operand& a, const Operand& b) { return binary(Op::fmin, "fmin", a, b); }

// --- bitwise --------------------------------------------------------------------

Array bitwise_and(const Operand& a, const Operand& b) { return binary(Op::bitwise_and, "bitwise_and", a, b); }
Array bitwise_or(const Operand& a, const Operand& b) { return binary(Op::bitwise_or, "bitwise_or", a, b); }
Array bitwise_xor(const Operand& a, const Operand& b) { return binary(Op::bitwise_xor, "bitwise_xor", a, b); }
Array bitwise_not(const Array& x) { return unary(Op::invert, "invert", x); }
Array invert(const Array& x) { return unary(Op::invert, "invert", x); }
Array left_shift(const Operand& a, const Operand& b) { return binary(Op::left_shift, "left_shift", a, b); }
Array right_shift(const Operand& a, const Operand& b) { return binary(Op::right_shift, "right_shift", a, b); }

// --- trigonometric and hyperbolic ------------------------------------------------

Array sin(const Array& x) { return unary(Op::sin, "sin", x); }
Array cos(const Array& x) { return unary(Op::cos, "cos", x); }
Array tan(const Array& x) { return unary(Op::tan, "tan", x); }
Array arcsin(const Array& x) { return unary(Op::arcsin, "arcsin", x); }
Array arccos(const Array& x) { return unary(Op::arccos, "arccos", x); }
Array arctan(const Array& x) { return unary(Op::arctan, "arctan", x); }
Array sinh(const Array& x) { return unary(Op::sinh, "sinh", x); }
Array cosh(const Array& x) { return unary(Op::cosh, "cosh", x); }
Array tanh(const Array& x) { return unary(Op::tanh, "tanh", x); }
Array arcsinh(const Array& x) { return unary(Op::arcsinh, "arcsinh", x); }
Array arccosh(const Array& x) { return unary(Op::arccosh, "arccosh", x); }
Array arctanh(const Array& x) { return unary(Op::arctanh, "arctanh", x); }
Array arctan2(const Operand& y, const Operand& x) { return binary(Op::arctan2, "arctan2", y, x); }
Array hypot(const Operand& a, const Operand& b) { return binary(Op::hypot, "hypot", a, b); }
Array deg2rad(const Array& x) { return unary(Op::deg2rad, "deg2rad", x); }
Array rad2deg(const Array& x) { return unary(Op::rad2deg, "rad2deg", x); }
Array degrees(const Array& x) { return unary(Op::rad2deg, "degrees", x); }
Array radians(const Array& x) { return unary(Op::deg2rad, "radians", x); }

// --- exponents and logarithms ------------------------------------------------------

Array exp(const Array& x) { return unary(Op::exp, "exp", x); }
Array exp2(const Array& x) { return unary(Op::exp2, "exp2", x); }
Array expm1(const Array& x) { return unary(Op::expm1, "expm1", x); }
Array log(const Array& x) { return unary(Op::log, "log", x); }
Array log2(const Array& x) { return unary(Op::log2, "log2", x); }
Array log10(const Array& x) { return unary(Op::log10, "log10", x); }
Array log1p(const Array& x) { return unary(Op::log1p, "log1p", x); }
Array logaddexp(const Operand& a, const Operand& b) { return binary(Op::logaddexp, "logaddexp", a, b); }
Array logaddexp2(const Operand& a, const Operand& b) { return binary(Op::logaddexp2, "logaddexp2", a, b); }

// --- rounding -------------------------------------------------------------------

Array floor(const Array& x) { return unary(Op::floor, "floor", x); }
Array ceil(const Array& x) { return unary(Op::ceil, "ceil", x); }
Array trunc(const Array& x) { return unary(Op::trunc, "trunc", x); }
Array rint(const Array& x) { return unary(Op::rint, "rint", x); }
Array fix(const Array& x) { return unary(Op::trunc, "fix", x); }

Array round(const Array& x, int decimals) {
  // NumPy's algorithm: rint(x * 10**d) / 10**d (x / 10**-d * 10**-d for
  // d < 0), in float64 for integers, whose dtype the result keeps.
  const bool integer = is_integer(x.dtype());
  if (integer && decimals >= 0) return x;
  // NumPy rounds bool only to 0 decimals (in float16; here float32).
  if (x.dtype() == DType::bool_ && decimals != 0)
    throw TypeError("ufunc-dtype", "round: bool can only be rounded to 0 decimals");
  const Operand operand(x);
  const Operand* list[] = {&operand};
  ProgramBuilder b("round", list);
  const DType loop = integer ? DType::float64
                             : resolve_loop(Op::rint, "round", list, kernels::op_loops(Op::rint));
  int r = b.cast(b.inputs(list, loop)[0], loop);
  if (decimals != 0) {
    const double factor = std::pow(10.0, std::abs(decimals));
    const int f = b.constant(Scalar(factor), loop);
    r = b.op(decimals > 0 ? Op::multiply : Op::true_divide, loop, {r, f});
    r = b.op(Op::rint, loop, {r});
    r = b.op(decimals > 0 ? Op::true_divide : Op::multiply, loop, {r, f});
  } else {
    r = b.op(Op::rint, loop, {r});
  }
  return b.finish("round", b.cast(r, integer ? x.dtype() : loop));
}

Array around(const Array& x, int decimals) { return round(x, decimals); }

// --- floating-point functions ------------------------------------------------------

Array isnan(const Array& x) { return unary(Op::isnan, "isnan", x); }
Array isinf(const Array& x) { return unary(Op::isinf, "isinf", x); }
Array isfinite(const Array& x) { return unary(Op::isfinite, "isfinite", x); }
Array signbit(const Array& x) { return unary(Op::signbit, "signbit", x); }
Array copysign(const Operand& a, const Operand& b) { return binary(Op::copysign, "copysign", a, b); }
Array nextafter(const Operand& a, const Operand& b) { return binary(Op::nextafter, "nextafter", a, b); }
Array spacing(const Array& x) { return unary(Op::spacing, "spacing", x); }

Array ldexp(const Operand& x, const Operand& e) {
  const DType x_dtype = x.is_array() ? x.array().dtype() : x.scalar().dtype();
  const DType e_dtype = e.is_array() ? e.array().dtype() : e.scalar().dtype();
  const DType both[] = {x_dtype, e_dtype};
  if (!can_cast(e_dtype, DType::int64, Casting::safe) || !first_loop(kernels::kFloatSet, x_dtype))
    throw_no_loop("ldexp", both);
  const DType loop = float_loop("ldexp", x_dtype);
  const Operand* list[] = {&x, &e};
  ProgramBuilder b("ldexp", list);
  const std::vector<int> regs = b.inputs(list, DType::int64);
  const int mantissa = x.is_array() ? b.cast(regs[0], loop) : b.constant(x.scalar(), loop);
  return b.finish("ldexp", b.op(Op::ldexp, loop, {mantissa, b.cast(regs[1], DType::int64)}));
}

std::pair<Array, Array> frexp(const Array& x) {
  return {unary(Op::frexp_mantissa, "frexp", x), unary(Op::frexp_exponent, "frexp", x)};
}

std::pair<Array, Array> modf(const Array& x) {
  return {unary(Op::modf_fraction, "modf", x), unary(Op::trunc, "modf", x)};
}

Array nan_to_num(const Array& x, double nan, std::optional<double> posinf, std::optional<double> neginf) {
  if (!is_inexact(x.dtype())) return x;
  const Operand operand(x);
  const Operand* list[] = {&operand};
  ProgramBuilder b("nan_to_num", list);
  const int in = b.inputs(list, x.dtype())[0];
  const DType part = real_type(x.dtype());
  const bool single = part == DType::float32;
  const double largest = single ? std::numeric_limits<float>::max() : std::numeric_limits<double>::max();
  const int nan_value = b.constant(Scalar(nan), part);
  const int pos_value = b.constant(Scalar(posinf.value_or(largest)), part);
  const int neg_value = b.constant(Scalar(neginf.value_or(-largest)), part);
  const int inf = b.constant(Scalar(std::numeric_limits<double>::infinity()), part);
  const int minus_inf = b.constant(Scalar(-std::numeric_limits<double>::infinity()), part);
  auto replace = [&](int v) {
    v = b.op(Op::where, part, {b.op(Op::isnan, part, {v}), nan_value, v});
    v = b.op(Op::where, part, {b.op(Op::equal, part, {v, inf}), pos_value, v});
    return b.op(Op::where, part, {b.op(Op::equal, part, {v, minus_inf}), neg_value, v});
  };
  if (!is_complex(x.dtype())) return b.finish("nan_to_num", replace(in));
  const int re = replace(b.op(Op::real, x.dtype(), {in}));
  const int im = replace(b.op(Op::imag, x.dtype(), {in}));
  return b.finish("nan_to_num", b.op(Op::make_complex, part, {re, im}));
}

// --- complex numbers --------------------------------------------------------------

Array real(const Array& x) { return is_complex(x.dtype()) ? unary(Op::real, "real", x) : x; }
Array imag(const Array& x) { return unary(Op::imag, "imag", x); }
Array conj(const Array& x) { return unary(Op::conjugate, "conjugate", x); }
Array conjugate(const Array& x) { return unary(Op::conjugate, "conjugate", x); }

Array angle(const Array& x, bool deg) {
  // np.angle: arctan2(imag, real), of (a weak) 0 and x for real dtypes.
  const Operand operand(x);
  const Operand* list[] = {&operand};
  ProgramBuilder b("angle", list);
  const int in = b.inputs(list, x.dtype())[0];
  const DType loop = is_complex(x.dtype()) ? real_type(x.dtype())
                                            : float_loop("angle", result_type(x.dtype(), Scalar(0)));
  int re, im;
  if (is_complex(x.dtype())) {
    re = b.op(Op::real, x.dtype(), {in});
    im = b.op(Op::imag, x.dtype(), {in});
  } else {
    re = b.cast(in, loop);
    im = b.constant(Scalar(0.0), loop);
  }
  int r = b.op(Op::arctan2, loop, {im, re});
  if (deg) r = b.op(Op::multiply, loop, {r, b.constant(Scalar(180.0 / std::numbers::pi), loop)});
  return b.finish("angle", r);
}

namespace {
/// iscomplex / isreal: compares the imaginary part with 0.
Array compare_imag(Op compare, std::string_view name, const Array& x) {
  const Operand operand(x);
  const Operand* list[] = {&operand};
  ProgramBuilder b(name, list);
  const int im = b.op(Op::imag, x.dtype(), {b.inputs(list, x.dtype())[0]});
  const DType part = real_type(x.dtype());
  return b.finish(name, b.op(compare, part, {im, b.constant(Scalar(false), part)}));
}
}  // namespace

Array iscomplex(const Array& x) { return compare_imag(Op::not_equal, "iscomplex", x); }
Array isreal(const Array& x) { return compare_imag(Op::equal, "isreal", x); }

// --- selection and conversion ------------------------------------------------------

Array where(const Operand& cond, const Operand& a, const Operand& b) {
  const Operand* values[] = {&a, &b};
  const DType loop = common_dtype(values);
  const Operand* list[] = {&cond, &a, &b};
  ProgramBuilder builder("where", list);
  std::vector<int> regs = builder.inputs(list, loop);
  const int c = cond.is_array() ? builder.cast(regs[0], DType::bool_) : builder.constant(cond.scalar(), DType::bool_);
  return builder.finish("where", builder.op(Op::where, loop, {c, builder.cast(regs[1], loop), builder.cast(regs[2], loop)}));
}

Array clip(const Operand& x, const std::optional<Operand>& lo, const std::optional<Operand>& hi) {
  if (!lo && !hi) throw ValueError("bad-argument", "clip: one of the bounds lo and hi must be given");
  std::vector<const Operand*> list{&x};
  if (lo) list.push_back(&*lo);
  if (hi) list.push_back(&*hi);
  const DType loop = resolve_loop(Op::maximum, "clip", list, kernels::op_loops(Op::maximum));
  ProgramBuilder b("clip", list);
  std::vector<int> regs = b.inputs(list, loop);
  for (int& r : regs) r = b.cast(r, loop);
  int r = regs[0];
  std::size_t next = 1;
  if (lo) r = b.op(Op::maximum, loop, {r, regs[next++]});
  if (hi) r = b.op(Op::minimum, loop, {r, regs[next]});
  return b.finish("clip", r);
}

Array astype(const Array& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  const Operand operand(x);
  const Operand* list[] = {&operand};
  ProgramBuilder b("astype", list);
  return b.finish("astype", b.cast(b.inputs(list, x.dtype())[0], dtype));
}

// --- broadcasting -------------------------------------------------------------

Shape broadcast_shapes(const std::vector<Shape>& shapes) { return broadcast_shape_of("broadcast_shapes", shapes); }

Array broadcast_to(const Array& x, const Shape& shape, const std::optional<ChunkSpec>& chunks) {
  const std::size_t added = shape.size() >= static_cast<std::size_t>(x.ndim())
                                ? shape.size() - static_cast<std::size_t>(x.ndim())
                                : 0;
  if (broadcast_shape_of("broadcast_to", {x.shape(), shape}) != shape)
    throw ValueError("shape-mismatch", "broadcast_to: cannot broadcast an array of shape " + shape_str(x.shape()) +
                                           " to " + shape_str(shape));
  // dask's default: one block along new and stretched axes, x's elsewhere.
  Chunks out_chunks;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    const bool stretched = axis < added || x.shape()[axis - added] != shape[axis];
    out_chunks.push_back(stretched ? std::vector<std::int64_t>{shape[axis]} : x.chunks()[axis - added]);
  }
  if (chunks) {
    const Chunks wanted = normalize_chunks(*chunks, shape, x.dtype());
    for (std::size_t axis = added; axis < shape.size(); ++axis)
      if (x.shape()[axis - added] == shape[axis] && shape[axis] != 1 && wanted[axis] != out_chunks[axis])
        throw ValueError("bad-chunks", "broadcast_to: chunks " + chunks_str(wanted) + " do not keep the chunks " +
                                           chunks_str(x.chunks()) + " of the axes the array has");
    out_chunks = wanted;
  }
  if (shape == x.shape() && out_chunks == x.chunks()) return x;
  Instr load;
  load.op = Op::load;
  load.dtype = load.arg_dtype = x.dtype();
  load.args[0] = 0;
  Program program{load};
  detail::ArrayMeta meta{"broadcast_to", detail::op_token("broadcast_to", x, shape, out_chunks), shape,
                         out_chunks, x.dtype()};
  return make_array(std::make_shared<kernels::ElementwiseLayer>(std::move(meta), std::move(program),
                                                                std::vector<Array>{x}));
}

std::vector<Array> broadcast_arrays(const std::vector<Array>& arrays) {
  Unified u = unify("broadcast_arrays", arrays);
  std::vector<Array> out;
  for (const Array& x : u.arrays) {
    Chunks chunks = u.chunks;
    out.push_back(broadcast_to(x, u.shape, ChunkSpec(chunks)));
  }
  return out;
}

// --- Array's methods ------------------------------------------------------------

Array Array::astype(DType dtype) const { return array::astype(*this, dtype); }
Array Array::round(int decimals) const { return array::round(*this, decimals); }
Array Array::clip(std::optional<Scalar> lo, std::optional<Scalar> hi) const {
  return array::clip(*this, lo ? std::optional<Operand>(*lo) : std::nullopt,
                     hi ? std::optional<Operand>(*hi) : std::nullopt);
}
Array Array::conj() const { return array::conj(*this); }
Array Array::real() const { return array::real(*this); }
Array Array::imag() const { return array::imag(*this); }

}  // namespace weft::array
