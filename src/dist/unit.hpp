// A unit of work as it travels to a worker: one task, or the steps of a
// fused chain (the plan's fusion and inlining happen on rank 0; workers run
// what they are given). The client encodes units once, when they are
// submitted; the worker decodes them when the compute operation arrives.
//
// Wire form: u32 nsteps; nsteps == 0 means a plain task whose arguments are
// the unit's inputs in order, followed by the task. Otherwise per step:
// u32 nargs, nargs x {u32 index, u8 local}, then the task. The values of its
// constant tasks may travel beside it (task_wire's attachments).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "../core/exec_plan.hpp"
#include "weft/task.hpp"
#include "weft/value.hpp"

namespace weft::dist {

/// Appends unit `u` of `plan` in wire form, its constant tasks' values to
/// `attachments`. TypeError "type.not-serializable" when one of its tasks
/// cannot travel.
void encode_unit(const detail::ExecPlan& plan, std::uint32_t u, std::vector<std::byte>& out,
                 std::vector<Value>& attachments);
/// Appends a single task as a plain unit (Client::submit, Client::run).
void encode_unit(const Task& task, std::vector<std::byte>& out);

class UnitProgram {
 public:
  /// Decodes a unit, its constant tasks taking their values from
  /// `attachments`; RuntimeError "bad-message" / TypeError when malformed.
  explicit UnitProgram(std::span<const std::byte> wire, std::span<Value> attachments = {});
  /// Runs the unit; a failing step throws TaskError naming that step's key.
  Value run(std::span<const Value* const> inputs) const;
  /// A collective step: the per-rank results (rank order) as one result.
  Value combine(std::vector<Value>&& parts) const { return steps_.back().task->combine(std::move(parts)); }
  /// A partitioned collective step: how many leading inputs are its parts
  /// (never fused nor inlined into, so its unit is the plain task).
  std::size_t partitioned_inputs() const noexcept { return steps_.back().task->partitioned_inputs(); }
  /// The key of the unit's last task (the one the scheduler knows it by).
  const Key& key() const noexcept { return steps_.back().task->key(); }

 private:
  struct Step {
    TaskPtr task;
    std::uint32_t args_begin;
    std::uint32_t nargs;
  };
  std::vector<Step> steps_;
  std::vector<detail::StepArg> args_;
  bool plain_ = true;
};

}  // namespace weft::dist
