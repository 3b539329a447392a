// SchedulerState: the distributed scheduler's decisions, as a pure state
// machine on dense task ids (docs/architecture.md, "Scheduler state machine").
//
// Events come in as calls (add_worker, add_task, task_finished, ...); the
// decisions they cause are appended to an instruction queue that the caller
// drains with take_instructions(). Nothing here does I/O, knows MPI, or looks
// inside a task: rank 0's comm thread drives it with real messages, and the
// tests and the scheduler-sim benchmark drive it with simulated workers.
//
// Task states follow Dask's scheduler: released -> waiting -> (queued) ->
// processing -> memory -> released/forgotten, or erred. Every change of state
// goes through one transition function; a change the table does not allow is
// a TransitionError naming the task and both states.
//
// What the workers must do (src/dist/worker.cpp does it):
// - answer each assign with done (task_finished) or erred (task_erred), unless
//   the task is freed before it starts (then answer worker_released) or given
//   up to a steal;
// - when a task fails, drop the tasks assigned to them that wait for its
//   result, without answering for them: the scheduler errs them itself. That
//   includes an assign that arrives after the failure: an input said to be
//   processing on this worker that it neither holds nor runs has failed;
// - answer each steal with given_up = true if the task had not started (and
//   then forget it: a free that follows gets no answer), false otherwise;
// - free of a result: drop it; no answer.
// A task released while its worker owes an answer keeps its id until that
// answer comes, so no late message ever names a reused id.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "weft/error.hpp"

namespace weft::dist {

using TaskId = std::uint32_t;
using WorkerId = std::uint32_t;
inline constexpr TaskId kNoTask = UINT32_MAX;
inline constexpr WorkerId kNoWorker = UINT32_MAX;
/// Instruction::worker of a collective assignment: every worker at once.
inline constexpr WorkerId kAllWorkers = UINT32_MAX - 1;

enum class TaskState : std::uint8_t { released, waiting, queued, processing, memory, erred, forgotten };
const char* to_string(TaskState s) noexcept;

/// An impossible transition: a bug in the scheduler or a confused event
/// (e.g. task_finished for a task that is not processing on that worker).
class TransitionError : public Error {
 public:
  TransitionError(std::string id, std::string message);
};

struct SchedulerOptions {
  /// Root tasks in flight per worker thread before further roots wait in the
  /// scheduler's queue (Dask's worker-saturation, deeper because a message
  /// costs microseconds here). A worker is topped up when it is down to half
  /// of that, so each gets runs of consecutive roots, which share dependents.
  std::uint32_t worker_saturation = 64;
  bool co_assign = true;  ///< see "Co-assignment" in docs/architecture.md
  bool stealing = true;
};

/// What a task needs from the scheduler; its contents stay with the caller.
struct TaskSpec {
  std::span<const TaskId> inputs;   ///< positional, may repeat; all already added and not forgotten
  std::int32_t user_priority = 0;   ///< higher runs first (Dask's priority=)
  WorkerId restriction = kNoWorker; ///< run only on this worker (kNoWorker: anywhere)
  bool collective = false;          ///< needs every worker at once
  bool wanted = false;              ///< the client holds a reference from the start (as want())
};

struct Instruction {
  enum class Kind : std::uint8_t {
    assign,  ///< run `task` on `worker` (kAllWorkers: a collective); each input's holder
             ///< is worker_of(input) (the same worker for co-assigned inputs still processing)
    free,    ///< `worker` drops `task`: its result, or the task itself if it has not
             ///< started (the worker then answers with worker_released)
    steal,   ///< ask `worker` to give `task` back if it has not started it
    report,  ///< tell the client: `task` reached `state` (memory: `worker` holds it; erred;
             ///< forgotten = cancelled). Only for tasks the client wants.
    forget,  ///< `task`'s id may be reused; the caller drops what it kept for it
  };
  // Fields a kind does not use hold fixed values (state: processing for
  // assign, else released; worker kNoWorker; cause kNoTask), so == compares.
  Kind kind;
  TaskState state;   ///< report only
  TaskId task;
  WorkerId worker;   ///< assign, free, steal; report of memory: the holder
  TaskId cause;      ///< report of erred: the task whose error this is (may be `task`)
  friend bool operator==(const Instruction&, const Instruction&) = default;
};

class SchedulerState {
 public:
  explicit SchedulerState(SchedulerOptions options = {});
  ~SchedulerState();
  SchedulerState(const SchedulerState&) = delete;
  SchedulerState& operator=(const SchedulerState&) = delete;

  // --- events ---------------------------------------------------------------
  /// A worker with `nthreads` compute threads joins; ids are 0, 1, 2, ... in order.
  WorkerId add_worker(std::uint32_t nthreads);
  /// Adds a task; its id is the smallest free id (forgotten ids are reused).
  /// Inputs in memory or erred are taken into account at once: the task may
  /// be assigned, queued or erred before this returns. Consecutive add_task /
  /// add_data calls are one submission (Dask's update_graph): a task that is
  /// already done when added (erred input; add_data) and that nobody wants or
  /// needs is released at the next other event, not before its dependents come.
  TaskId add_task(const TaskSpec& spec);
  /// `worker` finished `task`; its result is `nbytes` bytes and stays there.
  void task_finished(TaskId task, WorkerId worker, std::uint64_t nbytes);
  /// `task` threw on `worker`: it and everything depending on it is erred.
  void task_erred(TaskId task, WorkerId worker);
  /// The client takes / drops a reference (a Future); references are counted.
  /// A task nobody wants and no unfinished task needs is released and its
  /// result freed; a task released before it ran is not run at all. Releasing
  /// a task already released by cancel() is ignored (a stale message).
  void want(TaskId task);
  void release(TaskId task);
  /// Cancels `task` and what depends on it (Future::cancel); each is reported
  /// as forgotten and its id freed once nothing refers to it. The client's
  /// references to them are dropped with them.
  void cancel(TaskId task);
  /// The answer to a steal instruction: true if the victim gave the task up
  /// (the scheduler then assigns it elsewhere), false if it had started it.
  void steal_response(TaskId task, WorkerId victim, bool given_up);
  /// `worker` dropped `task` before running it, in answer to a free. A task
  /// released while processing keeps its id until the worker's done, erred or
  /// released arrives, so a late answer never meets a reused id.
  void worker_released(TaskId task, WorkerId worker);
  /// Results already on a worker (Client::scatter): a task in memory with no inputs.
  TaskId add_data(WorkerId worker, std::uint64_t nbytes, bool wanted = true);

  // --- decisions --------------------------------------------------------------
  /// Appends the instructions since the last call to `out` (in order) and clears the queue.
  void take_instructions(std::vector<Instruction>& out);

  // --- queries ----------------------------------------------------------------
  TaskState state(TaskId task) const;
  /// The worker processing `task` or holding its result (kNoWorker otherwise).
  WorkerId worker_of(TaskId task) const;
  /// `task`'s inputs as given; valid until the next add_task. Once the task
  /// finished, inputs it no longer needs may be forgotten (and their ids reused).
  std::span<const TaskId> inputs_of(TaskId task) const;
  std::uint64_t nbytes(TaskId task) const;
  std::size_t num_workers() const noexcept;
  /// Tasks assigned to `worker` that it has not answered for yet (those
  /// released meanwhile included: the worker may be running them).
  std::uint32_t processing_on(WorkerId worker) const;
  /// Tasks in memory on `worker` (Client::has_what).
  std::vector<TaskId> held_by(WorkerId worker) const;
  /// Bytes the scheduler's tables take (allocated capacity: per-task arrays,
  /// lists, queues), for the scale benchmark.
  std::size_t memory_bytes() const noexcept;
  /// Ids currently allocated (not forgotten).
  std::size_t live_tasks() const noexcept;
  /// "id 12: released -> waiting (add_task); waiting -> processing (assign w1) ..."
  /// the last transitions of `task`, for error messages (kept for the last few
  /// hundred transitions overall, not per task, so memory stays bounded).
  std::string story(TaskId task) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace weft::dist
