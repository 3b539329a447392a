// weft/compute.hpp - computing collections: compute, persist, get.
//
// A collection is anything with a CollectionTraits specialisation: it names
// the tasks whose results it needs (its roots) and turns their results into
// its own result type. Delayed<T> is one; arrays will be another.
// weft::compute(a, b, ...) runs all of them in one pass, so intermediates
// they share are computed once (dask.compute).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/callbacks.hpp"
#include "weft/graph.hpp"
#include "weft/scheduler.hpp"
#include "weft/task.hpp"
#include "weft/value.hpp"

namespace weft {

/// What a computation measured; pass a pointer in ComputeOptions::stats.
struct ComputeStats {
  std::size_t tasks_in_graph = 0;   ///< tasks reachable from the requested keys
  std::size_t tasks_run = 0;        ///< scheduled units after fusion and inlining
  std::size_t peak_results = 0;     ///< most results held at once (with track_memory)
  std::size_t peak_bytes = 0;       ///< most bytes (Value::nbytes) held at once (with track_memory)
  unsigned threads = 0;             ///< threads that ran tasks
  std::size_t parts_helped = 0;     ///< parts of running tasks that idle threads took (threads scheduler)
};

struct ComputeOptions {
  std::optional<SchedulerKind> scheduler;  ///< default: config "scheduler"
  std::optional<unsigned> num_workers;     ///< threads; default: config "num-workers"
  std::optional<bool> optimize_graph;      ///< fuse and inline; default: config optimization.*
  std::vector<CallbackPtr> callbacks;      ///< in addition to the registered ones
  ComputeStats* stats = nullptr;           ///< filled in when not null
  bool track_memory = false;               ///< measure peak_results/peak_bytes (costs per task)

  ComputeOptions() = default;
  ComputeOptions(SchedulerChoice s) : scheduler(s.kind) {}  // NOLINT: compute(weft::scheduler::sync)
};

/// Specialise for a collection type C:
///   using Result = ...;
///   static void roots(const C&, std::vector<TaskRef>& out);   // appends its roots
///   static Result finalize(const C&, std::span<Value> values); // one Value per root
///   static C rebuild(const C&, std::span<TaskPtr> held);      // persisted copy:
///       held[i] holds root i's result under its key (its value here, or a
///       future for it on the cluster's workers)
/// and, optionally, to put each root's result in place as soon as it is
/// computed (on the thread that computed it) instead of all at the end:
///   static std::optional<Assembly> assemble(const C&);  // nullopt: finalize instead
///   Assembly::place(std::size_t root, const Value&);     // distinct roots concurrently
///   Result Assembly::finish();
template <class C>
struct CollectionTraits;

template <class C>
concept Collection = requires { typename CollectionTraits<C>::Result; };

namespace detail {
/// Receives the result of the root at `position` as soon as it is computed,
/// on the thread that computed it (several roots at once).
using RootSink = std::function<void(std::size_t position, const Value& value)>;

/// Runs the tasks that `roots` need and returns their results, one per root
/// (a root listed twice gets a copy). `graph` resolves ref(key) dependencies.
/// With a `sink`, each root's result goes to it instead (once per position
/// it is listed at), is freed after its last dependent, and nothing is returned.
std::vector<Value> execute(std::span<const TaskRef> roots, const Graph* graph,
                           const ComputeOptions& options, const RootSink* sink = nullptr);

template <class C>
concept Assembles = requires(const C& c) { CollectionTraits<C>::assemble(c); };

/// What persist() keeps for each root: on the distributed scheduler the
/// results stay on the workers (futures; waited for, the first error
/// thrown), elsewhere they are computed here and kept as constants.
std::vector<TaskPtr> persist_roots(std::span<const TaskRef> roots, const ComputeOptions& options);

/// The roots of several collections in one list; collection i's are
/// roots[offsets[i] .. offsets[i + 1]).
struct CollectedRoots {
  std::vector<TaskRef> roots;
  std::vector<std::size_t> offsets;
  /// Collection i's part of `all` (one element per root).
  template <class T>
  std::span<T> part(std::span<T> all, std::size_t i) const {
    return all.subspan(offsets[i], offsets[i + 1] - offsets[i]);
  }
};

template <class... C>
CollectedRoots collect_roots(const C&... cs) {
  CollectedRoots r;
  ((r.offsets.push_back(r.roots.size()), CollectionTraits<C>::roots(cs, r.roots)), ...);
  r.offsets.push_back(r.roots.size());
  return r;
}

/// Runs the graphs of several collections in one pass; make(c, values) turns
/// each collection and its roots' results into one element of the tuple.
template <class Make, class... C>
auto execute_each(const ComputeOptions& options, Make make, const C&... cs) {
  const CollectedRoots collected = collect_roots(cs...);
  std::vector<Value> values = execute(collected.roots, nullptr, options);
  std::span<Value> all(values);
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<decltype(make(cs, all))...>{make(cs, collected.part(all, I))...};
  }(std::index_sequence_for<C...>{});
}

/// compute() for collections that each place their roots' results as they come.
template <class... A, class... C>
auto compute_assembled(const ComputeOptions& options, std::tuple<std::optional<A>...>& assemblies,
                       const C&... cs) {
  const CollectedRoots collected = collect_roots(cs...);
  const std::vector<std::size_t>& offsets = collected.offsets;
  const RootSink sink = [&](std::size_t position, const Value& value) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((position >= offsets[I] && position < offsets[I + 1]
            ? (std::get<I>(assemblies)->place(position - offsets[I], value), 0)
            : 0),
       ...);
    }(std::index_sequence_for<C...>{});
  };
  execute(collected.roots, nullptr, options, &sink);
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<typename CollectionTraits<C>::Result...>{std::get<I>(assemblies)->finish()...};
  }(std::index_sequence_for<C...>{});
}
}  // namespace detail

/// Computes several collections in one pass; returns a tuple of their results.
/// `auto [lo, hi] = weft::compute(options, a, b);`
template <Collection... C>
auto compute(const ComputeOptions& options, const C&... cs) {
  if constexpr ((detail::Assembles<C> && ...)) {
    auto assemblies = std::make_tuple(CollectionTraits<C>::assemble(cs)...);
    if (std::apply([](const auto&... a) { return (a.has_value() && ...); }, assemblies))
      return detail::compute_assembled(options, assemblies, cs...);
  }
  return detail::execute_each(
      options,
      []<class X>(const X& c, std::span<Value> v) { return CollectionTraits<X>::finalize(c, v); },
      cs...);
}

template <Collection... C>
auto compute(const C&... cs) {
  return compute(ComputeOptions{}, cs...);
}

/// Computes the collections and returns copies whose tasks hold the results
/// in memory under the same keys (dask.persist). On the distributed scheduler
/// the results stay where they were computed, on the workers (as Dask's
/// persist with a distributed Client); graphs built on the copies read them there.
template <Collection... C>
auto persist(const ComputeOptions& options, const C&... cs) {
  const detail::CollectedRoots collected = detail::collect_roots(cs...);
  std::vector<TaskPtr> held = detail::persist_roots(collected.roots, options);
  std::span<TaskPtr> all(held);
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<C...>{CollectionTraits<C>::rebuild(cs, collected.part(all, I))...};
  }(std::index_sequence_for<C...>{});
}

template <Collection... C>
auto persist(const C&... cs) {
  return persist(ComputeOptions{}, cs...);
}

/// The graph of one or more collections (dask's __dask_graph__ merged).
template <Collection... C>
Graph graph_of(const C&... cs) {
  std::vector<TaskRef> roots;
  (CollectionTraits<C>::roots(cs, roots), ...);
  Graph g;
  for (const TaskRef& r : roots) g.add_with_dependencies(r.task);
  return g;
}

/// Runs a hand-written graph and returns the results of `keys`, in order
/// (dask.get / scheduler.get). Validates the graph first.
std::vector<Value> get(const Graph& graph, const std::vector<Key>& keys,
                       const ComputeOptions& options = {});

}  // namespace weft
