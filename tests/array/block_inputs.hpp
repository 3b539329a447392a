// tests/array/block_inputs.hpp - test inputs for the array tests: arrays cut
// from an NDArray into given blocks, reproducible values of every dtype, and
// an array whose blocks must never be made; the schedulers results are
// computed on.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/main.hpp"
#include "weft/scheduler.hpp"

namespace weft::test {

/// An Array whose blocks are `x` cut at `chunks`; each block is a view of x
/// (so a transposed x gives transposed blocks) held by a literal task.
inline array::Array chunked(const array::NDArray& x, const array::Chunks& chunks) {
  static int serial = 0;
  array::detail::ArrayMeta meta{"input", tokenize("input", ++serial), x.shape(), chunks, x.dtype()};
  return array::make_array(meta, [x, chunks](std::span<const std::int64_t> index, Key key) {
    array::Shape offset, shape;
    for (std::size_t a = 0; a < index.size(); ++a) {
      offset.push_back(array::block_offsets(chunks[a])[static_cast<std::size_t>(index[a])]);
      shape.push_back(chunks[a][static_cast<std::size_t>(index[a])]);
    }
    return literal(std::move(key), x.block(offset, shape));
  });
}

/// Values of `dtype` from a fixed sequence: small integers (0..4, so that
/// products stay exact), and numbers in [-2, 2) for inexact types.
inline array::NDArray sample(array::DType dtype, array::Shape shape, std::uint64_t seed = 1) {
  array::NDArray real(array::DType::float64, shape);
  array::NDArray imag(array::DType::float64, shape);
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) / 9007199254740992.0;  // [0, 1)
  };
  const bool exact = !array::is_inexact(dtype);
  double* re = real.data<double>();
  double* im = imag.data<double>();
  for (std::int64_t i = 0; i < real.size(); ++i) {
    re[i] = exact ? static_cast<double>(static_cast<int>(next() * (dtype == array::DType::bool_ ? 2 : 5)))
                  : 4 * next() - 2;
    im[i] = 4 * next() - 2;
  }
  if (!array::is_complex(dtype)) return real.astype(dtype);
  array::NDArray out(array::DType::complex128, shape);
  auto* c = out.data<std::complex<double>>();
  for (std::int64_t i = 0; i < out.size(); ++i) c[i] = {re[i], im[i]};
  return out.astype(dtype);
}

/// Sign-varying values, every third one 0 (so that bools vary), converted to
/// `dtype`; unsigned types get no negative values, which C++ cannot convert.
inline array::NDArray signed_ramp(const array::Shape& shape, array::DType dtype) {
  std::vector<double> v(static_cast<std::size_t>(array::shape_size(shape)));
  const double shift = array::dtype_kind(dtype) == array::DTypeKind::unsigned_integer ? 0.5 : -40.5;
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 3 == 0 ? 0.0 : static_cast<double>(i % 97) + shift;
  return array::NDArray::from(v, shape).astype(dtype);
}

/// An array whose blocks must never be asked for: operations that fail must
/// fail before they make a task.
inline array::Array untouchable(array::Shape shape, array::Chunks chunks) {
  array::detail::ArrayMeta meta{"untouchable", tokenize(shape, chunks), shape, chunks, array::DType::float64};
  return array::make_array(meta, [](std::span<const std::int64_t>, Key) -> TaskPtr {
    throw std::logic_error("a task of the input was made");
  });
}

/// The schedulers every array result is computed on: sync and threads, and
/// the cluster too when the tests run inside weft::main on several ranks
/// (tests/mpi/array-suite.sh).
inline std::vector<SchedulerChoice> test_schedulers() {
  std::vector<SchedulerChoice> schedulers{scheduler::sync, scheduler::threads};
  if (nranks() > 1) schedulers.push_back(scheduler::distributed);
  return schedulers;
}

/// The k-th of test_schedulers(), cycling: for cases spread over the
/// schedulers rather than each run on all of them.
inline SchedulerChoice test_scheduler(std::size_t k) {
  const std::vector<SchedulerChoice> schedulers = test_schedulers();
  return schedulers[k % schedulers.size()];
}

}  // namespace weft::test
