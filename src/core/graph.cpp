// Graph: tasks by key, validation (missing dependencies, cycles), cull, dot.
#include "weft/graph.hpp"

#include <algorithm>
#include <sstream>

#include "atomic_file.hpp"
#include "exec_plan.hpp"
#include "weft/error.hpp"

namespace weft {

void Graph::add(TaskPtr task) {
  if (!task) throw ValueError("null-task", "Graph::add was given a null task");
  Key key = task->key();
  auto [it, inserted] = tasks_.try_emplace(key, std::move(task));
  if (inserted) order_.push_back(std::move(key));
}

void Graph::add_with_dependencies(const TaskPtr& task) {
  std::vector<const TaskPtr*> stack{&task};
  while (!stack.empty()) {
    const TaskPtr& t = *stack.back();
    stack.pop_back();
    if (contains(t->key())) continue;
    add(t);
    for (const TaskRef& dep : t->dependencies())
      if (dep.task) stack.push_back(&dep.task);
  }
}

void Graph::merge(const Graph& other) {
  for (const Key& k : other.order_) add(other.tasks_.at(k));
}

const TaskPtr& Graph::at(const Key& key) const {
  auto it = tasks_.find(key);
  if (it == tasks_.end())
    throw GraphError("missing-key", "key '" + key.str() + "' is not in the graph");
  return it->second;
}

const TaskPtr* Graph::find(const Key& key) const {
  auto it = tasks_.find(key);
  return it == tasks_.end() ? nullptr : &it->second;
}

std::vector<Key> Graph::dependencies(const Key& key) const {
  std::vector<Key> out;
  for (const TaskRef& dep : at(key)->dependencies())
    if (std::find(out.begin(), out.end(), dep.key) == out.end()) out.push_back(dep.key);
  return out;
}

std::unordered_map<Key, std::vector<Key>> Graph::dependents() const {
  std::unordered_map<Key, std::vector<Key>> out;
  for (const Key& k : order_) {
    out.try_emplace(k);
    for (const Key& dep : dependencies(k)) out[dep].push_back(k);
  }
  return out;
}

void Graph::validate() const {
  // Planning every key finds what a computation would: the same walk, the
  // same errors (missing dependency, cycle), over the whole graph.
  std::vector<TaskRef> all;
  all.reserve(order_.size());
  for (const Key& k : order_) all.push_back(TaskRef{k, tasks_.at(k)});
  detail::PlanOptions plain;
  plain.fuse = false;
  plain.inline_cheap = false;
  detail::build_plan(all, this, plain);
}

Graph Graph::cull(const std::vector<Key>& keys) const {
  Graph out;
  std::vector<Key> stack(keys.rbegin(), keys.rend());
  while (!stack.empty()) {
    Key k = std::move(stack.back());
    stack.pop_back();
    if (out.contains(k)) continue;
    const TaskPtr* t = find(k);
    if (!t) throw GraphError("missing-key", "key '" + k.str() + "' is not in the graph");
    out.add(*t);
    for (const TaskRef& dep : (*t)->dependencies()) stack.push_back(dep.key);
  }
  return out;
}

namespace {
std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}
}  // namespace

void Graph::to_dot(std::ostream& out) const {
  // As dask.visualize: each task is a function node (circle, labelled with
  // its name) feeding a result node (box, labelled with its key).
  std::unordered_map<Key, std::size_t> id;
  for (std::size_t i = 0; i < order_.size(); ++i) id.emplace(order_[i], i);
  out << "digraph weft {\n  rankdir=BT;\n";
  for (std::size_t i = 0; i < order_.size(); ++i) {
    const Key& k = order_[i];
    out << "  f" << i << " [shape=circle, label=\"" << dot_escape(std::string(k.name())) << "\"];\n";
    out << "  r" << i << " [shape=box, label=\"" << dot_escape(k.str()) << "\"];\n";
    out << "  f" << i << " -> r" << i << ";\n";
    for (const Key& dep : dependencies(k)) {
      auto it = id.find(dep);
      if (it != id.end()) out << "  r" << it->second << " -> f" << i << ";\n";
    }
  }
  out << "}\n";
}

void Graph::to_dot(const std::string& path) const {
  std::ostringstream text;
  to_dot(text);
  detail::write_file_atomically(path, text.str(), "graph picture");
}

}  // namespace weft
