// weft/graph.hpp - a task graph: tasks by key, dependencies derived from them.
//
// The explicit form of a computation, as a Dask graph dict is: every task
// under its key, each task naming what it depends on. Collections (Delayed,
// later arrays) build their graphs implicitly, as tasks pointing at tasks;
// Graph is what they turn into for inspection (keys, dependencies, to_dot)
// and what hand-written graphs are made of. The graph knows no scheduler, no
// arrays and no MPI.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <vector>

#include "weft/key.hpp"
#include "weft/task.hpp"

namespace weft {

class Graph {
 public:
  Graph() = default;

  /// Adds a task under its key. Adding a key twice keeps the first task
  /// (keys are tokens of the work, so equal keys mean equal work).
  void add(TaskPtr task);
  /// Adds `task` and every task it reaches through known TaskRefs.
  void add_with_dependencies(const TaskPtr& task);
  /// Adds every task of `other`.
  void merge(const Graph& other);

  std::size_t size() const noexcept { return order_.size(); }
  bool contains(const Key& key) const { return tasks_.count(key) != 0; }
  /// The task under `key`; GraphError "missing-key" if there is none.
  const TaskPtr& at(const Key& key) const;
  /// The task under `key`, or nullptr.
  const TaskPtr* find(const Key& key) const;
  /// Keys in insertion order.
  const std::vector<Key>& keys() const noexcept { return order_; }

  /// Keys `key` depends on (its TaskRefs' keys, each once, in argument order).
  std::vector<Key> dependencies(const Key& key) const;
  /// For every key, the keys that depend on it.
  std::unordered_map<Key, std::vector<Key>> dependents() const;

  /// Throws GraphError "missing-dependency" naming the task and the key it
  /// needs, or "cycle" naming the keys of a cycle. No-op on a valid graph.
  void validate() const;
  /// The subgraph the given keys need (Dask's cull). Missing keys are errors.
  Graph cull(const std::vector<Key>& keys) const;

  /// Graphviz: function nodes (circles) and result nodes (boxes), like
  /// dask.visualize. Writes to a stream, or to a file (IoError if it can't).
  void to_dot(std::ostream& out) const;
  void to_dot(const std::string& path) const;

 private:
  std::unordered_map<Key, TaskPtr> tasks_;
  std::vector<Key> order_;
};

}  // namespace weft
