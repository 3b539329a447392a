// tests/array/numpy_oracle.hpp - NumPy as the reference for array tests.
//
//   auto x = wa::NDArray::from<double>({1, 2, 3});
//   auto want = weft::test::numpy("out = np.cumsum(x)", {{"x", x}});
//   weft::test::check_close(got, want[0]);
//
// numpy() runs Debian's python3 (or $PYTHON_NUMPY) once per call: the inputs
// are bound to their names (as numpy arrays of the same dtype and shape, 0-d
// included), `np` is numpy, and the code must assign `out`: an array or a
// scalar, or a list/tuple of them for several results. Results come back as
// NDArrays with NumPy's dtype and shape. A Python error fails the test with
// Python's message. Batch several expressions into one call (out = [a, b, c]):
// each call costs a Python start-up (~0.15 s).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::test {

using NumpyInputs = std::vector<std::pair<std::string, array::NDArray>>;

/// Runs `code` with NumPy (above); returns the elements of `out`.
std::vector<array::NDArray> numpy(const std::string& code, const NumpyInputs& inputs = {});

/// Checks (with Catch2 CHECKs, naming `what`) that got has want's shape and,
/// when check_dtype, its dtype, and that the values agree as np.allclose
/// with equal_nan=True would. Integer and bool arrays must be equal.
void check_close(const array::NDArray& got, const array::NDArray& want, double rtol = 1e-7,
                 double atol = 0.0, bool check_dtype = true, const std::string& what = "");

/// x computed on the sync scheduler, with CHECKs that its shape and dtype are
/// x's and that every other scheduler of test_schedulers() gives exactly the
/// same values (NaN equal to NaN).
array::NDArray computed_everywhere(const array::Array& x);

}  // namespace weft::test
