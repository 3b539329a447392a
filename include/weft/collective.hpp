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
//
// Partitioned collective steps: the same, except that each worker receives
// only the parts it already holds, so no part moves between ranks (collective
// writes of distributed blocks: parallel HDF5, NetCDF):
//
//   int write(const weft::CollectiveContext& ctx, const weft::LocalParts<NDArray>& mine,
//             const std::string& path);
//   auto done = weft::partitioned_collective(write)(blocks, path);  // Delayed<std::vector<int>>
//
// `blocks` is a std::vector of Delayed<T> or Future<T>; arguments after it
// ("extra") reach every rank whole, as in collective(). On the distributed
// scheduler each part belongs to one worker: the one holding its result (the
// scheduler's worker_of, the first holder when there are copies). Worker
// rank r of `ctx.comm` (weft rank r + 1) gets `mine.index`: the positions in
// `blocks` it owns, ascending, `mine.values`: pointers to their values in its
// data store (not copies: spilled values are read back first, and the values
// stay alive until the function returns, so do not keep the pointers), and
// `mine.owner`: the owner of every position, the same vector on every rank,
// so each rank knows the others' selections. On the local schedulers the
// function runs once with every part in `mine` and every owner 0. A part is
// always the result of a task of its own (the planner never inlines a cheap
// task into a collective step), so it is held by exactly one owner.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <span>
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

/// The parts of a partitioned collective step that this worker rank owns.
template <class T>
struct LocalParts {
  std::vector<std::size_t> index;  ///< positions (in the step's list of parts) owned here, ascending
  std::vector<const T*> values;    ///< their values, same order as index (valid during the call)
  std::vector<int> owner;          ///< for every position of the list: its owner's rank in ctx.comm
  std::size_t total() const noexcept { return owner.size(); }
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

/// The owner (rank in the step's communicator) of each part of the
/// partitioned collective step this thread runs on a worker rank; set by the
/// worker, read when the step's LocalParts are made.
std::span<const int> running_owners() noexcept;

/// The parts list of a partitioned collective step, as passed to the task:
/// its dependencies come first among the step's (the context adds none).
template <class T>
struct PartsArg {
  std::vector<TaskRef> refs;
};
/// A part's dependency (dependency_ref found by argument-dependent lookup for Future<T>).
template <class P>
TaskRef part_ref(const P& part) {
  return dependency_ref(part);
}

/// Stored as the dependencies' slots; loads as the LocalParts this rank
/// owns. A part that is not here has a null input (the worker never fetched it).
template <class T>
struct ArgTraits<PartsArg<T>> {
  using Stored = std::vector<DepSlot<T>>;
  static constexpr bool has_deps = true;
  static constexpr std::size_t static_deps = kDynamicDeps;
  template <class C>
  static Stored store(const PartsArg<T>& parts, C& c) {
    Stored out;
    out.reserve(parts.refs.size());
    for (const TaskRef& r : parts.refs) out.push_back({c.add(r)});
    return out;
  }
  static LocalParts<T> load(const Stored& s, Inputs in) {
    LocalParts<T> mine;
    if (running_collective()) {
      std::span<const int> owners = running_owners();
      mine.owner.assign(owners.begin(), owners.end());
    } else {
      mine.owner.assign(s.size(), 0);
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (const Value* v = in[s[i].index]) {
        mine.index.push_back(i);
        mine.values.push_back(&v->template get<T>());
      }
    }
    return mine;
  }
};

template <class T>
struct PartitionedArg<PartsArg<T>> {
  static std::size_t count(const std::vector<DepSlot<T>>& s) noexcept { return s.size(); }
};

/// The key of a collective step: the function, the kind of step, the arguments.
template <class F, class... U>
Key collective_key(const F& fn, const DelayedOptions& options, std::string_view kind, const U&... args) {
  const FunctionIdentity& id = identity_of(fn);
  Hasher h;
  tokenize_into(h, id.token);
  tokenize_into(h, kind);
  if constexpr (!std::is_empty_v<F> && !std::is_pointer_v<F>) tokenize_into(h, fn);
  (tokenize_into(h, args), ...);
  Token token = options.pure ? h.digest() : fresh_token();
  return Key(options.name.empty() ? id.name : intern(options.name), token);
}
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
    Key key = detail::collective_key(fn_, options_, "collective", args...);
    return Delayed<std::vector<Part>>(
        detail::make_call_task(std::move(key), false, fn_, detail::CollectiveSlot{}, std::forward<U>(args)...));
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

/// A function wrapped by partitioned_collective(): calling it with a vector
/// of parts (Delayed<T> or Future<T>) and extra arguments records a
/// partitioned collective step.
template <class F>
class PartitionedCollectiveFunction {
 public:
  PartitionedCollectiveFunction(F fn, DelayedOptions options) : fn_(std::move(fn)), options_(options) {}

  template <class P, class... U>
  auto operator()(const std::vector<P>& parts, U&&... extra) const {
    static_assert(detail::ArgTraits<P>::static_deps == 1,
                  "partitioned_collective: the parts must be a std::vector of Delayed<T> or Future<T>");
    using T = std::remove_cvref_t<detail::Loaded<P>>;
    using R = std::decay_t<detail::CallResult<F, detail::CollectiveSlot, detail::PartsArg<T>, std::decay_t<U>...>>;
    using Part = std::conditional_t<std::is_void_v<R>, None, R>;
    Key key = detail::collective_key(fn_, options_, "partitioned-collective", parts, extra...);
    detail::PartsArg<T> list;
    list.refs.reserve(parts.size());
    for (const P& p : parts) list.refs.push_back(detail::part_ref(p));
    return Delayed<std::vector<Part>>(detail::make_call_task(std::move(key), false, fn_, detail::CollectiveSlot{},
                                                             std::move(list), std::forward<U>(extra)...));
  }

 private:
  F fn_;
  DelayedOptions options_;
};

/// partitioned_collective(f): calls of it build partitioned collective steps
/// (see above): f(const CollectiveContext&, const LocalParts<T>&, extra...) -> R,
/// and the step's result is a std::vector<R> in rank order, as collective()'s.
template <class F>
auto partitioned_collective(F&& fn, DelayedOptions options = {}) {
  return PartitionedCollectiveFunction<std::decay_t<F>>(std::forward<F>(fn), options);
}

}  // namespace weft
