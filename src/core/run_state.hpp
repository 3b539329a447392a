// RunState: one run of an ExecPlan, shared by the scheduler's threads.
//
// Every scheduler does the same bookkeeping around a unit: callbacks, the
// first error, results held until their last dependent ran, memory
// statistics. It lives here once; schedulers only decide which ready unit
// runs where.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "exec_plan.hpp"
#include "weft/callbacks.hpp"
#include "weft/compute.hpp"
#include "weft/error.hpp"

namespace weft::detail {

class RunState {
 public:
  /// With a `sink`, roots' results go to it as they are computed (compute.hpp)
  /// and are freed like any other result.
  RunState(const ExecPlan& plan, std::vector<CallbackPtr> callbacks, bool track_memory,
           const RootSink* sink = nullptr);

  const ExecPlan& plan() const noexcept { return plan_; }

  /// Runs unit u on `thread`; false when it threw (the error is recorded).
  bool execute(std::uint32_t u, unsigned thread);
  /// Counts down u's dependents' inputs; calls ready(d) for each that has all.
  template <class Ready>
  void finish(std::uint32_t u, Ready&& ready) {
    for (std::uint32_t d : plan_.dependents_of(u))
      if (waiting_[d].fetch_sub(1, std::memory_order_acq_rel) == 1) ready(d);
    release_inputs(u);
  }
  /// Units with no inputs, in execution order.
  std::vector<std::uint32_t> initial_ready() const;

  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  /// Throws the first recorded TaskError, if any.
  void rethrow_if_failed() const;
  /// The results of the requested roots (a root asked for twice is copied);
  /// empty with a sink.
  std::vector<Value> take_roots();

  std::size_t peak_results() const noexcept { return peak_results_.load(); }
  std::size_t peak_bytes() const noexcept { return peak_bytes_.load(); }
  /// A part of a running task that an idle thread took (task_help.hpp).
  void count_helped_part() noexcept { parts_helped_.fetch_add(1, std::memory_order_relaxed); }
  std::size_t parts_helped() const noexcept { return parts_helped_.load(std::memory_order_relaxed); }
  const std::vector<CallbackPtr>& callbacks() const noexcept { return callbacks_; }

 private:
  void release_inputs(std::uint32_t u);
  void deliver_root(std::uint32_t u);
  void account(std::int64_t results, std::int64_t bytes);
  void record_error(std::exception_ptr e);

  const ExecPlan& plan_;
  std::vector<Value> values_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> waiting_;    // inputs not yet computed
  std::unique_ptr<std::atomic<std::uint32_t>[]> remaining_;  // dependents not yet run
  std::vector<CallbackPtr> callbacks_;
  bool track_memory_;
  const RootSink* sink_;
  // With a sink: the positions each unit is requested at, unit u's at
  // sink_positions_[sink_offsets_[u] .. sink_offsets_[u + 1]).
  std::vector<std::uint32_t> sink_offsets_;
  std::vector<std::size_t> sink_positions_;
  std::atomic<std::int64_t> live_results_{0}, live_bytes_{0};
  std::atomic<std::size_t> peak_results_{0}, peak_bytes_{0};
  std::atomic<std::size_t> parts_helped_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace weft::detail
