// src/array/kernels/linalg.hpp - the block kernel of matmul, dot and tensordot.
//
// Every product is one contraction: an output block has the axes
// (batch..., rows..., cols...). Operand a contributes the batch axes it has,
// the rows (its free axes) and the summed axes; operand b the batch axes, the
// summed axes (paired with a's in order) and the cols. For each batch element
// the block is the sum over the block pairs of matrix products
// (rows x sum) @ (sum x cols).
#pragma once

#include <vector>

#include "weft/array/ndarray.hpp"

namespace weft::array::kernels {

struct ContractSpec {
  DType dtype = DType::float64;  ///< of the result; operands are converted to it
  bool conj_a = false;           ///< conjugate a's elements (vdot)
  /// Per output batch axis, the operand's axis, or -1 where the operand
  /// lacks it. An operand axis of length 1 broadcasts.
  std::vector<int> a_batch, b_batch;
  std::vector<int> a_rows, a_sum;  ///< a's free axes (in output order) and summed axes
  std::vector<int> b_sum, b_cols;  ///< b's summed axes (paired with a_sum) and free axes

  template <class Archive>
  void serialize(Archive& ar) {
    ar(dtype, conj_a, a_batch, b_batch, a_rows, a_sum, b_sum, b_cols);
  }
};

/// One output block: the sum over i of the products of a[i] and b[i], the
/// block pairs along the summed axes (as many of each, at least one).
NDArray contract_blocks(const ContractSpec& spec, const std::vector<NDArray>& a,
                        const std::vector<NDArray>& b);

}  // namespace weft::array::kernels
