// weft/collective.hpp - collective steps: work that needs every worker rank
// at once, with a communicator of their own (ScaLAPACK on a BLACS grid,
// collective parallel HDF5/NetCDF writes).
//
//   double part(const weft::CollectiveContext& ctx, const std::vector<double>& x);
//   auto parts = weft::collective(part)(x);   // Delayed<std::vector<double>>
//   std::vector<double> per_rank = parts.compute();
//
// The function's first parameter is the context: an MPI communicator of the
// worker ranks (a duplicate of theirs, so the step's messages never mix with
// weft's), this rank's place in it and its size. On the distributed scheduler
// the scheduler stops handing out work, waits until no worker runs anything,
// gives every worker its inputs, runs the step on every worker rank at once
// (on its communication thread, the one thread there that makes MPI calls),
// and collects the per-rank results into a std::vector in rank order; normal
// scheduling then resumes. On the local schedulers (no launcher, one rank) the
// step runs once, with size 1 and comm == MPI_COMM_NULL.
//
// A step that throws on any rank fails on all (the error names the lowest
// failing rank and its message), so no rank is left waiting in a collective
// call of its own; code inside the step must still make the same MPI calls on
// every rank, as any MPI program must.
#pragma once

#include <mpi.h>

#include <type_traits>
#include <utility>
#include <vector>

#include "weft/delayed.hpp"

namespace weft {

struct CollectiveContext {
  MPI_Comm comm = MPI_COMM_NULL;  ///< the worker ranks; MPI_COMM_NULL on local schedulers
  int rank = 0;                   ///< this worker's rank in `comm` (0 .. size-1)
  int size = 1;
};

namespace detail {
/// Loads as the context of the running step (size 1 when run locally).
template <>
struct ArgTraits<CollectiveSlot> {
  using Stored = CollectiveSlot;
  static constexpr bool has_deps = false;
  static constexpr std::size_t static_deps = 0;
  template <class U, class C>
  static Stored store(U&&, C&) {
    return {};
  }
  static const CollectiveContext& load(const Stored&, Inputs) {
    static const CollectiveContext alone;
    const CollectiveContext* running = running_collective();
    return running ? *running : alone;
  }
};
}  // namespace detail

/// A function wrapped by collective(): calling it records a collective step.
template <class F>
class CollectiveFunction {
 public:
  CollectiveFunction(F fn, DelayedOptions options) : fn_(std::move(fn)), options_(options) {}

  template <class... U>
  auto operator()(U&&... args) const {
    using R = std::decay_t<detail::CallResult<F, detail::CollectiveSlot, std::decay_t<U>...>>;
    using Part = std::conditional_t<std::is_void_v<R>, None, R>;
    const detail::FunctionIdentity& id = detail::identity_of(fn_);
    Hasher h;
    tokenize_into(h, id.token);
    tokenize_into(h, std::string_view("collective"));
    if constexpr (!std::is_empty_v<F> && !std::is_pointer_v<F>) tokenize_into(h, fn_);
    (tokenize_into(h, args), ...);
    Token token = options_.pure ? h.digest() : detail::fresh_token();
    const detail::InternedName* name = options_.name.empty() ? id.name : detail::intern(options_.name);
    return Delayed<std::vector<Part>>(detail::make_call_task(Key(name, token), false, fn_, detail::CollectiveSlot{},
                                                             std::forward<U>(args)...));
  }

 private:
  F fn_;
  DelayedOptions options_;
};

/// collective(f): calls of it build collective steps (see above).
template <class F>
auto collective(F&& fn, DelayedOptions options = {}) {
  return CollectiveFunction<std::decay_t<F>>(std::forward<F>(fn), options);
}

}  // namespace weft
