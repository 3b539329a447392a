// ExecPlan: the dense, optimised form of a graph that schedulers run.
//
// build_plan() walks the tasks the requested roots need (that is the cull),
// gives each distinct key a dense id in depth-first post-order from the
// roots, then optimises: linear chains fuse into one unit and cheap tasks
// are inlined into their dependents. The plan lists units in an order where
// each comes after its inputs; running them in that order finishes one
// branch before starting the next (Dask's ordering goal), so intermediates
// are released early and memory stays bounded.
//
// Schedulers know only units, inputs and dependents: no keys, no types.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "weft/graph.hpp"
#include "weft/task.hpp"

namespace weft::detail {

/// Where a step of a fused unit takes an input from.
struct StepArg {
  std::uint32_t index;  ///< a unit input position, or an earlier step of the same unit
  bool local;           ///< true: an earlier step's result
};

/// One task inside a fused unit.
struct Step {
  const Task* task;
  std::uint32_t args_begin;  ///< into ExecPlan::step_args
  std::uint32_t nargs;
};

/// Finds a task by key when the graph does not have it: results that exist
/// outside the graph (futures). Returns nullptr for an unknown key.
using ExternalResolver = std::function<const Task*(const Key&)>;

struct PlanOptions {
  bool fuse = true;
  std::uint32_t fuse_max_height = 1000000;  ///< longest chain fused into one unit
  bool inline_cheap = true;
  /// Tasks it returns are units of their own, never fused or inlined.
  ExternalResolver resolve_external;
};

struct ExecPlan {
  static constexpr std::uint32_t kPlain = UINT32_MAX;

  std::size_t tasks_in_graph = 0;

  // Per unit, in execution order (inputs first).
  std::vector<const Task*> task;          ///< the unit's task: its key names the unit
  std::vector<std::uint32_t> first_step;  ///< kPlain, or the unit's first step in `steps`
  std::vector<std::uint32_t> nsteps;
  std::vector<std::uint32_t> input_offsets;      ///< CSR offsets into `inputs`
  std::vector<std::uint32_t> inputs;             ///< input unit ids, positional
  std::vector<std::uint32_t> dependent_offsets;  ///< CSR offsets into `dependents`
  std::vector<std::uint32_t> dependents;         ///< one entry per input edge
  std::vector<std::uint8_t> is_root;

  std::vector<Step> steps;
  std::vector<StepArg> step_args;

  std::vector<std::uint32_t> root_units;  ///< one per requested root, in request order

  std::size_t size() const noexcept { return task.size(); }
  std::span<const std::uint32_t> inputs_of(std::uint32_t u) const {
    return {inputs.data() + input_offsets[u], inputs.data() + input_offsets[u + 1]};
  }
  std::span<const std::uint32_t> dependents_of(std::uint32_t u) const {
    return {dependents.data() + dependent_offsets[u], dependents.data() + dependent_offsets[u + 1]};
  }
};

/// Fusion and inlining as the configuration says (optimization.*).
PlanOptions configured_plan_options();

/// Throws GraphError "missing-dependency" (a ref(key) the graph lacks) or
/// "cycle".
ExecPlan build_plan(std::span<const TaskRef> roots, const Graph* graph, const PlanOptions& options);

/// Runs one task; any exception becomes a TaskError naming the task's key.
Value run_task(const Task& task, std::span<const Value* const> args);

/// Runs unit `u` given the results of all units (its inputs must be set).
Value run_unit(const ExecPlan& plan, std::uint32_t u, const std::vector<Value>& values);

}  // namespace weft::detail
