// src/array/kernels/elementwise.hpp - fused elementwise expressions and
// the kernels that evaluate them tile by tile.
//
// A chain of elementwise operations is one Program: a list of instructions
// over leaf input blocks (loads), constants and ufunc ops, instruction i's
// result being register i and the last instruction's the program's result.
// Every op's operands already have the op's loop dtype (the graph builder
// inserts casts), so a kernel is one loop over one C++ type.
//
// A block is evaluated TILE BY TILE: a few thousand elements of the output
// at a time, each leaf read from its block (any strides: transposed,
// sliced, broadcast) into a tile buffer (or used in place when it is
// contiguous and of the right dtype), each op a `#pragma omp simd` loop over
// tile buffers. The whole chain thus makes one pass over memory. The kernel
// of every instruction is looked up once per block, not per tile.
//
// Programs are vectors of a trivially copyable Instr, so tasks holding them
// travel between ranks as one block of bytes.
//
// GENERATED LEAVES: `random` makes uniform doubles of a random array's block
// in place, tile by tile, from each element's position (ARS counters,
// kernels/random.hpp), so random inputs are recomputed inside the consumers
// that read them (x + x.T, x.mean(0) fused into a reduction) instead of
// being written to memory and read back. Its instruction holds the generator
// key and the random array's block, and the order of the random block's
// axes in this block (a transposed random array is the same generator read
// with permuted strides). The block differs per block: a layer's tasks take
// block_program(index), never program().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <span>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/delayed.hpp"
#include "weft/tokenize.hpp"

namespace weft::array::kernels {

enum class Op : std::uint8_t {
  // Structure.
  load,      ///< leaf args[0], converted from the block's dtype to `dtype`
  constant,  ///< `value`, held in `dtype`
  cast,      ///< args[0] from arg_dtype to dtype (NumPy's astype, unsafe)
  random,    ///< float64 uniform in [0, 1) of a random block (see RandomLeaf)
  // Unary.
  negative, positive, absolute, fabs, sign, reciprocal, square, sqrt, cbrt,
  sin, cos, tan, arcsin, arccos, arctan, sinh, cosh, tanh, arcsinh, arccosh, arctanh,
  deg2rad, rad2deg, exp, exp2, expm1, log, log2, log10, log1p,
  floor, ceil, trunc, rint, spacing, conjugate, invert, logical_not,
  isnan, isinf, isfinite, signbit, real, imag,
  frexp_mantissa, frexp_exponent, modf_fraction,
  // Binary.
  add, subtract, multiply, true_divide, floor_divide, remainder, fmod, power,
  arctan2, hypot, logaddexp, logaddexp2, maximum, minimum, fmax, fmin,
  copysign, nextafter, ldexp,  ///< ldexp's args[1] is int64
  bitwise_and, bitwise_or, bitwise_xor, left_shift, right_shift,
  logical_and, logical_or, logical_xor,
  equal, not_equal, less, less_equal, greater, greater_equal,
  make_complex,  ///< real and imaginary parts (arg_dtype real) -> complex
  // Ternary.
  where,  ///< args[0] bool, args[1] and args[2] arg_dtype
};

/// Number of register operands an op reads.
constexpr int op_arity(Op op) noexcept {
  if (op == Op::load || op == Op::constant || op == Op::random) return 0;
  if (op == Op::where) return 3;
  return op >= Op::add ? 2 : 1;
}
/// NumPy's name of the op ("add", "sqrt", ...).
const char* op_name(Op op) noexcept;

/// Bit per DType (1 << dtype), for sets of dtypes.
using DTypeSet = std::uint16_t;
constexpr DTypeSet dtype_bit(DType t) noexcept { return static_cast<DTypeSet>(1u << static_cast<unsigned>(t)); }
inline constexpr DTypeSet kBoolSet = dtype_bit(DType::bool_);
inline constexpr DTypeSet kSignedSet =
    dtype_bit(DType::int8) | dtype_bit(DType::int16) | dtype_bit(DType::int32) | dtype_bit(DType::int64);
inline constexpr DTypeSet kUnsignedSet =
    dtype_bit(DType::uint8) | dtype_bit(DType::uint16) | dtype_bit(DType::uint32) | dtype_bit(DType::uint64);
inline constexpr DTypeSet kIntegerSet = kSignedSet | kUnsignedSet;
inline constexpr DTypeSet kFloatSet = dtype_bit(DType::float32) | dtype_bit(DType::float64);
inline constexpr DTypeSet kComplexSet = dtype_bit(DType::complex64) | dtype_bit(DType::complex128);
inline constexpr DTypeSet kNumberSet = kIntegerSet | kFloatSet | kComplexSet;
inline constexpr DTypeSet kAllSet = kBoolSet | kNumberSet;

/// The loop dtypes NumPy has for an op (its `ufunc.types` without float16
/// and long double): a kernel exists for each.
constexpr DTypeSet op_loops(Op op) noexcept {
  switch (op) {
    case Op::negative: case Op::positive: case Op::sign: case Op::reciprocal: case Op::square:
    case Op::conjugate: case Op::subtract: case Op::power:
      return kNumberSet;
    case Op::sqrt: case Op::sin: case Op::cos: case Op::tan: case Op::arcsin: case Op::arccos:
    case Op::arctan: case Op::sinh: case Op::cosh: case Op::tanh: case Op::arcsinh: case Op::arccosh:
    case Op::arctanh: case Op::exp: case Op::exp2: case Op::expm1: case Op::log: case Op::log2:
    case Op::log10: case Op::log1p: case Op::rint: case Op::true_divide:
      return kFloatSet | kComplexSet;
    case Op::fabs: case Op::cbrt: case Op::deg2rad: case Op::rad2deg: case Op::floor: case Op::ceil:
    case Op::trunc: case Op::spacing: case Op::signbit: case Op::frexp_mantissa: case Op::frexp_exponent:
    case Op::modf_fraction: case Op::arctan2: case Op::hypot: case Op::logaddexp: case Op::logaddexp2:
    case Op::copysign: case Op::nextafter: case Op::ldexp: case Op::make_complex:
      return kFloatSet;
    case Op::floor_divide: case Op::remainder: case Op::fmod:
      return kIntegerSet | kFloatSet;
    case Op::invert: case Op::bitwise_and: case Op::bitwise_or: case Op::bitwise_xor:
      return kBoolSet | kIntegerSet;
    case Op::left_shift: case Op::right_shift:
      return kIntegerSet;
    default:
      return kAllSet;
  }
}

/// The dtype an op gives for operands of loop dtype `arg` (cast: see Instr).
constexpr DType op_result_dtype(Op op, DType arg) noexcept {
  switch (op) {
    case Op::logical_not: case Op::isnan: case Op::isinf: case Op::isfinite: case Op::signbit:
    case Op::logical_and: case Op::logical_or: case Op::logical_xor: case Op::equal: case Op::not_equal:
    case Op::less: case Op::less_equal: case Op::greater: case Op::greater_equal:
      return DType::bool_;
    case Op::absolute: case Op::real: case Op::imag:
      return arg == DType::complex64 ? DType::float32 : arg == DType::complex128 ? DType::float64 : arg;
    case Op::frexp_exponent:
      return DType::int32;
    case Op::make_complex:
      return arg == DType::float32 ? DType::complex64 : DType::complex128;
    default:
      return arg;
  }
}

/// One instruction. Trivially copyable and without padding, so that a
/// program travels and tokenizes as plain bytes.
struct Instr {
  Op op = Op::constant;
  DType dtype = DType::float64;      ///< of the result
  DType arg_dtype = DType::float64;  ///< of the operands (the loop); load: the leaf's
  std::uint8_t unused = 0;
  std::array<std::int32_t, 3> args{-1, -1, -1};  ///< registers; load: the leaf index
  std::array<std::byte, 16> value{};              ///< constant: the value in `dtype`

  void tokenize(Hasher& h) const { h.bytes(this, sizeof *this); }
  friend bool operator==(const Instr&, const Instr&) = default;
};
static_assert(sizeof(Instr) == 32 && std::is_trivially_copyable_v<Instr>);

/// A fused expression; its result is the last instruction's.
using Program = std::vector<Instr>;

/// What a `random` instruction holds: `value` is the generator key and the
/// flat index of the random array's block that this block reads (set per
/// block by ElementwiseLayer::block_program), `args` (as bytes) the axis of
/// the random block that each axis of this block is (the identity for the
/// random array itself, reversed for its transpose).
struct RandomLeaf {
  static constexpr int kMaxAxes = 12;  ///< axes that fit in args; more are not fused
  std::uint64_t key = 0;
  std::uint64_t block = 0;
  std::array<std::uint8_t, kMaxAxes> axes{};

  /// The instruction of the random array itself (identity axes), ndim <= kMaxAxes.
  static Instr instruction(std::uint64_t key, int ndim);
  static RandomLeaf of(const Instr& ins);
  void store(Instr& ins) const;
};

/// The dtype of a program's result.
inline DType program_dtype(const Program& program) { return program.back().dtype; }

/// Receives the program's result one tile at a time: `count` elements of
/// the program's dtype at `values`, being elements [offset, offset + count)
/// of the block in C order. Tiles arrive in order and cover the block once;
/// `values` is valid only during the call.
using TileSink = std::function<void(std::int64_t offset, const void* values, std::int64_t count)>;

/// Evaluates `program` over one block of shape `block_shape`, tile by tile,
/// handing each tile of the result to `sink`. leaves[k] is leaf k's block,
/// broadcastable to block_shape (NumPy's rules). This is how a reduction
/// consumes an elementwise expression without materialising its block.
void for_each_tile(const Program& program, std::span<const NDArray> leaves, const Shape& block_shape,
                   const TileSink& sink);

/// The block task's kernel: the program's result as a new C-contiguous
/// block (a view of the leaf when the program only loads it unchanged).
NDArray evaluate_block(const Program& program, const Shape& block_shape, const std::vector<NDArray>& leaves);

// --- the layer --------------------------------------------------------------

/// The layer of an array made by elementwise operations: a program over
/// leaf arrays. Leaves are broadcast to the layer's shape and, along axes
/// they do not broadcast, cut in the layer's chunks, so block `index` reads
/// block `index` of each leaf (block 0 along its broadcast axes).
class ElementwiseLayer final : public detail::Layer {
 public:
  ElementwiseLayer(detail::ArrayMeta meta, Program program, std::vector<Array> leaves);

  /// The program with its random instructions' blocks unset: what other
  /// layers inline. Evaluate block_program(index).
  const Program& program() const noexcept { return program_; }
  /// The program that block `index` runs.
  Program block_program(std::span<const std::int64_t> index) const;
  const std::vector<Array>& leaves() const noexcept { return leaves_; }
  /// The leaf blocks that block `index` of this layer reads, in leaf order.
  std::vector<Delayed<NDArray>> leaf_blocks(std::span<const std::int64_t> index) const;

 protected:
  TaskPtr make_task(std::span<const std::int64_t> index, Key key) const override;

 private:
  Program program_;
  std::vector<Array> leaves_;
};

/// x's layer when x was made by elementwise operations, else null. A
/// reduction of such an x can evaluate the expression inside its own block
/// tasks: make the task of block `index` from layer->program(),
/// block_shape(x.chunks(), index) and layer->leaf_blocks(index) (a
/// std::vector<Delayed<NDArray>> argument, which the kernel receives as
/// std::vector<NDArray>), and in the kernel consume for_each_tile(...).
const ElementwiseLayer* elementwise_layer(const Array& x) noexcept;

/// x transposed (axes resolved, a permutation) when x is an elementwise
/// layer that only generates its values (random instructions, constants and
/// ops, no loads): the same program reading its random blocks transposed,
/// still fusable. Empty for any other x (transpose makes a view layer).
std::optional<Array> transpose_generated(const Array& x, std::span<const int> axes);

// --- per-dtype kernels (elementwise_*.cpp) ---------------------------------

/// Computes an op over `n` elements: args[i] holds n operands of the op's
/// operand dtypes, out receives n results.
using OpKernel = void (*)(const void* const* args, void* out, std::int64_t n);
/// Copies n elements from `src` (stride in elements; 0 repeats one) into
/// contiguous `dst`, converting as NumPy's unsafe astype does.
using ConvertKernel = void (*)(const void* src, std::int64_t stride, void* dst, std::int64_t n);

/// The kernel of `op` for loop dtype `arg` (a dtype in op_loops(op)).
OpKernel op_kernel(Op op, DType arg);
/// Per group of ops, in their own files to keep compile units small.
OpKernel arithmetic_kernel(Op op, DType arg);  // elementwise_arith.cpp
OpKernel math_kernel(Op op, DType arg);        // elementwise_math.cpp
ConvertKernel convert_kernel(DType from, DType to);  // elementwise_convert.cpp

}  // namespace weft::array::kernels
