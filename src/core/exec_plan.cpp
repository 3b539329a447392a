// build_plan: cull, dense ids, depth-first order, fusion and inlining.
#include "exec_plan.hpp"

#include <algorithm>
#include <array>

#include "weft/error.hpp"

namespace weft::detail {

namespace {

constexpr std::uint32_t kEmpty = UINT32_MAX;

// Open-addressing map from key to a dense slot. Entries keep the hash, so a
// probe touches the key (inside a task, likely a cache miss) only on a match.
class KeyTable {
 public:
  explicit KeyTable(std::size_t expected) {
    std::size_t cap = 64;
    while (cap < expected * 2) cap <<= 1;
    entries_.assign(cap, Entry{nullptr, 0, kEmpty});
  }
  std::uint32_t find(const Key& key, std::size_t hash) const {
    std::size_t mask = entries_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Entry& e = entries_[i];
      if (e.slot == kEmpty) return kEmpty;
      if (e.hash == hash && *e.key == key) return e.slot;
    }
  }
  // The key must not be present.
  void insert(const Key& key, std::size_t hash, std::uint32_t slot) {
    if ((size_ + 1) * 2 > entries_.size()) grow();
    place(Entry{&key, hash, slot});
    ++size_;
  }

 private:
  struct Entry {
    const Key* key;
    std::size_t hash;
    std::uint32_t slot;
  };
  void place(const Entry& entry) {
    std::size_t mask = entries_.size() - 1;
    std::size_t i = entry.hash & mask;
    while (entries_[i].slot != kEmpty) i = (i + 1) & mask;
    entries_[i] = entry;
  }
  void grow() {
    std::vector<Entry> old(entries_.size() * 2, Entry{nullptr, 0, kEmpty});
    old.swap(entries_);
    for (const Entry& e : old)
      if (e.slot != kEmpty) place(e);
  }
  std::vector<Entry> entries_;
  std::size_t size_ = 0;
};

// Depth-first walk from the roots: dense ids in post-order (dependencies
// first, one branch finished before the next), cycles and missing keys
// found. Each task is looked up by key once per edge, and the slot of every
// edge is recorded, so nothing needs a second lookup.
class Walker {
 public:
  Walker(const Graph* graph, const ExternalResolver* resolve, std::size_t expected)
      : graph_(graph), resolve_(resolve), table_(expected) {}

  std::uint32_t visit_root(const TaskRef& root) {
    const Task* t = root.task ? root.task.get() : lookup(root.key, nullptr);
    std::uint32_t slot = table_.find(t->key(), t->key().hash());
    if (slot == kEmpty) slot = walk(t);
    return slot;
  }

  // Ids in post-order; order[id] is the slot.
  std::vector<std::uint32_t> order;
  // Per slot (discovery order).
  std::vector<const Task*> slot_task;
  std::vector<std::uint32_t> slot_id;
  std::vector<std::uint32_t> slot_edges;  // where the slot's edges start in `edges`
  std::vector<std::uint8_t> slot_cheap;
  // Per edge: the slot of the dependency, positional.
  std::vector<std::uint32_t> edges;

  std::span<const std::uint32_t> edges_of(std::uint32_t slot) const {
    std::uint32_t end = slot + 1 < slot_edges.size() ? slot_edges[slot + 1]
                                                     : static_cast<std::uint32_t>(edges.size());
    return {edges.data() + slot_edges[slot], edges.data() + end};
  }

 private:
  const Task* lookup(const Key& key, const Task* dependent) const {
    if (graph_)
      if (const TaskPtr* t = graph_->find(key)) return t->get();
    if (resolve_ && *resolve_)
      if (const Task* t = (*resolve_)(key)) return t;
    if (dependent)
      throw GraphError("missing-dependency", "task '" + dependent->key().str() + "' depends on '" +
                                                 key.str() + "', which is not in the graph");
    throw GraphError("missing-key", "key '" + key.str() + "' is not in the graph");
  }

  std::uint32_t new_slot(const Task* t, std::size_t hash) {
    auto slot = static_cast<std::uint32_t>(slot_task.size());
    slot_task.push_back(t);
    slot_id.push_back(kEmpty);  // kEmpty while on the stack
    slot_edges.push_back(static_cast<std::uint32_t>(edges.size()));
    slot_cheap.push_back(t->cheap());
    edges.resize(edges.size() + t->dependencies().size());
    table_.insert(t->key(), hash, slot);
    return slot;
  }

  std::uint32_t walk(const Task* start) {
    std::uint32_t start_slot = new_slot(start, start->key().hash());
    stack_.push_back({start_slot, 0});
    while (!stack_.empty()) {
      Frame& f = stack_.back();
      const Task* t = slot_task[f.slot];
      auto deps = t->dependencies();
      if (f.next == deps.size()) {
        slot_id[f.slot] = static_cast<std::uint32_t>(order.size());
        order.push_back(f.slot);
        stack_.pop_back();
        continue;
      }
      if (f.next == 0)  // fetch the dependencies' tasks while this one is walked
        for (const TaskRef& r : deps) __builtin_prefetch(r.task.get());
      std::uint32_t edge = slot_edges[f.slot] + f.next;
      const TaskRef& ref = deps[f.next++];
      std::size_t hash = ref.key.hash();
      std::uint32_t slot = table_.find(ref.key, hash);
      if (slot == kEmpty) {
        const Task* dep = ref.task ? ref.task.get() : lookup(ref.key, t);
        slot = new_slot(dep, hash);
        stack_.push_back({slot, 0});  // invalidates f
      } else if (slot_id[slot] == kEmpty) {
        throw_cycle(slot);
      }
      edges[edge] = slot;
    }
    return start_slot;
  }

  [[noreturn]] void throw_cycle(std::uint32_t slot) const {
    std::string path;
    bool in_cycle = false;
    for (const auto& frame : stack_) {
      in_cycle = in_cycle || frame.slot == slot;
      if (in_cycle) path += slot_task[frame.slot]->key().str() + " -> ";
    }
    throw GraphError("cycle", "the graph has a cycle: " + path + slot_task[slot]->key().str());
  }

  struct Frame {
    std::uint32_t slot;
    std::uint32_t next;  // the next dependency to visit
  };
  const Graph* graph_;
  const ExternalResolver* resolve_;
  KeyTable table_;
  std::vector<Frame> stack_;
};

// A unit under construction when fusion or inlining merges tasks: its steps,
// and for each step where its inputs come from (an earlier step, or a node).
struct Program {
  struct Source {
    std::uint32_t index;  // a step of this program, or a node id
    bool local;
  };
  std::vector<const Task*> steps;
  std::vector<std::vector<Source>> args;

  // The distinct nodes this program reads, in order of first use.
  std::vector<std::uint32_t> externals() const {
    std::vector<std::uint32_t> out;
    for (const auto& a : args)
      for (const Source& s : a)
        if (!s.local && std::find(out.begin(), out.end(), s.index) == out.end())
          out.push_back(s.index);
    return out;
  }

  // Runs `inner` first, feeding every read of node `node` from its result.
  void substitute(std::uint32_t node, const Program& inner) {
    auto shift = static_cast<std::uint32_t>(inner.steps.size());
    for (auto& a : args)
      for (Source& s : a) {
        if (s.local) s.index += shift;
        else if (s.index == node) s = Source{shift - 1, true};
      }
    steps.insert(steps.begin(), inner.steps.begin(), inner.steps.end());
    args.insert(args.begin(), inner.args.begin(), inner.args.end());
  }
};

// Appends a merged unit's inputs and steps to the plan.
void emit_program(ExecPlan& plan, std::uint32_t u, const Program& p,
                  const std::vector<std::uint32_t>& unit_of) {
  std::vector<std::uint32_t> ext = p.externals();
  for (std::uint32_t e : ext) plan.inputs.push_back(unit_of[e]);
  plan.first_step[u] = static_cast<std::uint32_t>(plan.steps.size());
  plan.nsteps[u] = static_cast<std::uint32_t>(p.steps.size());
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    plan.steps.push_back(Step{p.steps[s], static_cast<std::uint32_t>(plan.step_args.size()),
                              static_cast<std::uint32_t>(p.args[s].size())});
    for (const Program::Source& src : p.args[s]) {
      auto index = src.local ? src.index
                             : static_cast<std::uint32_t>(std::find(ext.begin(), ext.end(), src.index) - ext.begin());
      plan.step_args.push_back({index, src.local});
    }
  }
}

}  // namespace

ExecPlan build_plan(std::span<const TaskRef> roots, const Graph* graph, const PlanOptions& options) {
  Walker walker(graph, &options.resolve_external, graph ? graph->size() : 1024);
  std::vector<std::uint32_t> root_slots;
  root_slots.reserve(roots.size());
  for (const TaskRef& r : roots) root_slots.push_back(walker.visit_root(r));

  const std::size_t n = walker.order.size();
  // Node-level dependencies (positional, duplicates kept) in post-order ids.
  std::vector<std::uint32_t> dep_offsets(n + 1, 0), deps;
  std::vector<std::uint32_t> ndependents(n, 0);
  std::vector<std::uint8_t> is_root(n, 0), cheap(n, 0);
  deps.reserve(walker.edges.size());
  for (std::uint32_t id = 0; id < n; ++id) {
    std::uint32_t slot = walker.order[id];
    for (std::uint32_t dep_slot : walker.edges_of(slot)) {
      std::uint32_t dep = walker.slot_id[dep_slot];
      deps.push_back(dep);
      ++ndependents[dep];
    }
    dep_offsets[id + 1] = static_cast<std::uint32_t>(deps.size());
    cheap[id] = walker.slot_cheap[slot];
  }
  for (std::uint32_t s : root_slots) is_root[walker.slot_id[s]] = 1;
  // Roots, external results (futures) and collective steps stay units of
  // their own: never fused or inlined (a collective fused with ordinary work
  // would run that work on every worker).
  std::vector<std::uint8_t> pinned = is_root;
  for (std::uint32_t id = 0; id < n; ++id) {
    const Task* t = walker.slot_task[walker.order[id]];
    if (t->external() || t->collective()) pinned[id] = 1;
  }
  auto task_of = [&](std::uint32_t id) { return walker.slot_task[walker.order[id]]; };

  // Optimisation: programs only for nodes that fusion or inlining touches.
  std::vector<std::int32_t> program_of(n, -1);
  std::vector<Program> programs;
  std::vector<std::uint8_t> absorbed(n, 0);
  auto program = [&](std::uint32_t id) -> Program& {
    if (program_of[id] < 0) {
      Program p;
      p.steps.push_back(task_of(id));
      auto& a = p.args.emplace_back();
      for (std::uint32_t i = dep_offsets[id]; i < dep_offsets[id + 1]; ++i)
        a.push_back({deps[i], false});
      program_of[id] = static_cast<std::int32_t>(programs.size());
      programs.push_back(std::move(p));
    }
    return programs[program_of[id]];
  };

  if (options.inline_cheap) {
    // Every dependent of a cheap task computes it itself (Dask's inline_functions).
    auto inlinable = [&](std::uint32_t id) { return cheap[id] && !pinned[id] && ndependents[id] > 0; };
    bool any = false;
    for (std::uint32_t id = 0; id < n && !any; ++id) any = inlinable(id);
    if (any) {
      // Dependents of each node (CSR; a dependent listed once per edge).
      std::vector<std::uint32_t> user_offsets(n + 1, 0), users(deps.size());
      for (std::uint32_t d : deps) ++user_offsets[d + 1];
      for (std::uint32_t id = 0; id < n; ++id) user_offsets[id + 1] += user_offsets[id];
      std::vector<std::uint32_t> fill(user_offsets.begin(), user_offsets.end() - 1);
      for (std::uint32_t id = 0; id < n; ++id)
        for (std::uint32_t i = dep_offsets[id]; i < dep_offsets[id + 1]; ++i) users[fill[deps[i]]++] = id;
      for (std::uint32_t id = 0; id < n; ++id) {
        if (!inlinable(id)) continue;
        // A partitioned collective step reads each part where its task ran,
        // so a part stays a unit of its own (inlined, every rank would make it).
        if (std::any_of(users.begin() + user_offsets[id], users.begin() + user_offsets[id + 1],
                        [&](std::uint32_t u) { return task_of(u)->partitioned_inputs() > 0; }))
          continue;
        Program inner = program(id);
        for (std::uint32_t i = user_offsets[id]; i < user_offsets[id + 1]; ++i)
          if (i == user_offsets[id] || users[i] != users[i - 1]) program(users[i]).substitute(id, inner);
        absorbed[id] = 1;
      }
    }
  }

  if (options.fuse) {
    // Linear chains: a node whose only input has no other dependent joins it.
    // Edges out of each node once inlining is done (nodes without a program
    // still read exactly their dependencies).
    std::vector<std::uint32_t> edges_out, height(n, 1);
    if (programs.empty()) {
      edges_out = ndependents;
    } else {
      edges_out.assign(n, 0);
      for (std::uint32_t id = 0; id < n; ++id) {
        if (absorbed[id]) continue;
        if (program_of[id] < 0) {
          for (std::uint32_t i = dep_offsets[id]; i < dep_offsets[id + 1]; ++i) ++edges_out[deps[i]];
        } else {
          for (std::uint32_t in : programs[program_of[id]].externals()) ++edges_out[in];
        }
      }
    }
    for (std::uint32_t id = 0; id < n; ++id) {
      if (absorbed[id] || task_of(id)->collective()) continue;
      std::uint32_t a;
      if (program_of[id] < 0) {
        if (dep_offsets[id + 1] - dep_offsets[id] != 1) continue;
        a = deps[dep_offsets[id]];
      } else {
        auto ins = programs[program_of[id]].externals();
        if (ins.size() != 1) continue;
        a = ins[0];
      }
      if (edges_out[a] != 1 || pinned[a] || height[a] >= options.fuse_max_height) continue;
      Program inner = program(a);
      program(id).substitute(a, inner);
      absorbed[a] = 1;
      height[id] = height[a] + 1;
    }
  }

  // Emit units: the surviving nodes, in the same (topological) order.
  ExecPlan plan;
  plan.tasks_in_graph = n;
  std::vector<std::uint32_t> unit_of(n, kEmpty);
  for (std::uint32_t id = 0; id < n; ++id)
    if (!absorbed[id]) unit_of[id] = static_cast<std::uint32_t>(plan.task.size()), plan.task.push_back(task_of(id));
  const std::size_t units = plan.task.size();
  plan.first_step.assign(units, ExecPlan::kPlain);
  plan.nsteps.assign(units, 1);
  if (programs.empty()) {
    // Nothing merged: units are the nodes, inputs their dependencies.
    plan.input_offsets = std::move(dep_offsets);
    plan.inputs = std::move(deps);
    plan.is_root = std::move(is_root);
  } else {
    plan.is_root.assign(units, 0);
    plan.input_offsets.assign(1, 0);
    plan.inputs.reserve(deps.size());
    for (std::uint32_t id = 0; id < n; ++id) {
      std::uint32_t u = unit_of[id];
      if (u == kEmpty) continue;
      plan.is_root[u] = is_root[id];
      if (program_of[id] < 0) {
        for (std::uint32_t i = dep_offsets[id]; i < dep_offsets[id + 1]; ++i)
          plan.inputs.push_back(unit_of[deps[i]]);
      } else {
        emit_program(plan, u, programs[program_of[id]], unit_of);
      }
      plan.input_offsets.push_back(static_cast<std::uint32_t>(plan.inputs.size()));
    }
  }

  // Dependents: the reverse of inputs, one entry per edge.
  plan.dependent_offsets.assign(units + 1, 0);
  for (std::uint32_t in : plan.inputs) ++plan.dependent_offsets[in + 1];
  for (std::size_t u = 0; u < units; ++u) plan.dependent_offsets[u + 1] += plan.dependent_offsets[u];
  plan.dependents.resize(plan.inputs.size());
  std::vector<std::uint32_t> fill(plan.dependent_offsets.begin(), plan.dependent_offsets.end() - 1);
  for (std::uint32_t u = 0; u < units; ++u)
    for (std::uint32_t in : plan.inputs_of(u)) plan.dependents[fill[in]++] = u;

  plan.root_units.reserve(root_slots.size());
  for (std::uint32_t s : root_slots) plan.root_units.push_back(unit_of[walker.slot_id[s]]);
  return plan;
}

Value run_task(const Task& task, std::span<const Value* const> args) {
  try {
    return task.run(args);
  } catch (const TaskError&) {
    throw;  // from a computation nested inside the task: its key is the precise one
  } catch (const std::exception& e) {
    throw TaskError(task.key().str(), e.what(), std::current_exception());
  } catch (...) {
    throw TaskError(task.key().str(), "an exception that is not a std::exception",
                    std::current_exception());
  }
}

Value run_unit(const ExecPlan& plan, std::uint32_t u, const std::vector<Value>& values) {
  auto inputs = plan.inputs_of(u);
  constexpr std::size_t kInlineArgs = 16;
  if (plan.first_step[u] == ExecPlan::kPlain) {
    if (inputs.size() <= kInlineArgs) {
      std::array<const Value*, kInlineArgs> args;
      for (std::size_t i = 0; i < inputs.size(); ++i) args[i] = &values[inputs[i]];
      return run_task(*plan.task[u], {args.data(), inputs.size()});
    }
    std::vector<const Value*> args(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) args[i] = &values[inputs[i]];
    return run_task(*plan.task[u], args);
  }
  std::vector<Value> locals(plan.nsteps[u]);
  std::vector<const Value*> args;
  for (std::uint32_t s = 0; s < plan.nsteps[u]; ++s) {
    const Step& step = plan.steps[plan.first_step[u] + s];
    args.clear();
    for (std::uint32_t a = 0; a < step.nargs; ++a) {
      const StepArg& src = plan.step_args[step.args_begin + a];
      args.push_back(src.local ? &locals[src.index] : &values[inputs[src.index]]);
    }
    locals[s] = run_task(*step.task, args);
  }
  return std::move(locals.back());
}

}  // namespace weft::detail
