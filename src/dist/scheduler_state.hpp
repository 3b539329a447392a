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
//
// A released task stays known (not forgotten) while a task that lists it as
// an input does: the recipe of a result that is lost with its worker
// (remove_worker), as Dask keeps released tasks that have dependents.
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
  /// Removed workers a task may be running on before it errs as killed
  /// (distributed.scheduler.allowed-failures: Dask's KilledWorker).
  std::uint32_t allowed_failures = 3;
};

/// What a task needs from the scheduler; its contents stay with the caller.
struct TaskSpec {
  std::span<const TaskId> inputs;   ///< positional, may repeat; all already added and not forgotten
  std::int32_t user_priority = 0;   ///< higher runs first (Dask's priority=)
  WorkerId restriction = kNoWorker; ///< run only on this worker (kNoWorker: anywhere)
  bool collective = false;          ///< needs every worker at once
  bool wanted = false;              ///< the client holds a reference from the start (as want())
  std::uint32_t retries = 0;        ///< errors that send it back to waiting instead (Dask's retries=)
};

/// Why a task erred without an error of its own (SchedulerState::lost).
struct LostTask {
  /// true: it was running on removed workers more often than allowed_failures
  /// allows, or could run only on a removed worker (Dask's KilledWorker);
  /// false: its result, scattered data with no recipe, was only on a removed worker.
  bool killed = false;
  std::vector<WorkerId> workers;  ///< the removed workers it was on, in order
  std::string reason;             ///< why the last of them was removed
};

struct Instruction {
  enum class Kind : std::uint8_t {
    assign,  ///< run `task` on `worker` (kAllWorkers: a collective); each input's holder
             ///< is worker_of(input) (the same worker for co-assigned inputs still processing)
    free,    ///< `worker` drops `task`: its result, or the task itself if it has not
             ///< started (the worker then answers with worker_released)
    steal,   ///< ask `worker` to give `task` back if it has not started it
    report,  ///< tell the client: `task` reached `state` (memory: `worker` holds it; erred;
             ///< forgotten = cancelled; waiting: its result was lost and is being
             ///< computed again). Only for tasks the client wants.
    forget,  ///< `task`'s id may be reused; the caller drops what it kept for it
    acquire, ///< `worker` fetches `task`'s result from `source` and keeps it (replicate,
             ///< retire_workers, rebalance); it answers with task_acquired. A second acquire
             ///< of the same task names another holder: the first was removed and may never
             ///< answer; the worker answers once for both
  };
  // Fields a kind does not use hold fixed values (state: processing for
  // assign, else released; worker kNoWorker; cause kNoTask), so == compares.
  Kind kind;
  TaskState state;   ///< report only
  TaskId task;
  WorkerId worker;   ///< assign, free, steal; report of memory: the holder
  TaskId cause;      ///< report of erred: the task whose error this is (may be `task`)
  WorkerId source = kNoWorker;  ///< acquire: the holder to fetch from
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
  /// `task` threw on `worker`: with retries left it waits to run again (the
  /// tasks co-assigned behind it on `worker`, which dropped them, wait again
  /// too); otherwise it and everything depending on it is erred.
  void task_erred(TaskId task, WorkerId worker);
  /// `worker` is gone or hung (`reason` says which, for messages): it gets no
  /// further instruction and its answers must not be passed on. A copy it was
  /// acquiring goes to another worker (a rebalance move is dropped); a move
  /// from it is fetched from another holder, or, with none left, ends (the
  /// result is computed again and the copy, if it still comes, freed). Its tasks
  /// wait again (each one's suspicious count +1: past allowed_failures it errs
  /// as killed, see lost()); results only it held are computed again from
  /// their recipes, and their unfinished dependents wait for them; scattered
  /// data it held errs as lost, with its dependents. Tasks assigned to other
  /// workers that read such a result still fetch it from `worker` (a hung
  /// worker's comm thread still serves fetches).
  void remove_worker(WorkerId worker, std::string reason);
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
  /// Client::restart: every task is cancelled (wanted ones reported forgotten,
  /// results freed, running ones freed as their workers answer); workers stay.
  void restart();
  /// Client::replicate: `task` (in memory) is held by `n` workers (at least
  /// one): copies go to the workers holding the fewest bytes, extra copies are freed.
  void replicate(TaskId task, std::uint32_t n);
  /// Client::retire_workers: `workers` get no new tasks, and each result only
  /// they hold is copied to another worker. Once moves_pending() is 0 the
  /// caller removes them (remove_worker; their running tasks wait again, not
  /// counted as suspicious).
  void retire_workers(std::span<const WorkerId> workers);
  /// Client::rebalance: results among `tasks` (in memory; others are skipped)
  /// move from workers holding more than the mean managed bytes of the workers
  /// taking work to those holding less. Each sender, fullest first, sends its
  /// largest results, each to the emptiest worker not holding it, while the
  /// sender is above the mean and the recipient below, and only a result
  /// smaller than their difference (so each move evens them out). Results a
  /// running task reads stay where they are. A move is an acquire; once it
  /// is answered the source frees its copy (a task that started reading it
  /// there meanwhile keeps both).
  void rebalance(std::span<const TaskId> tasks);
  /// The answer to an acquire: `worker` now holds `task` (ok), or its holder
  /// no longer had it (!ok).
  void task_acquired(TaskId task, WorkerId worker, bool ok);

  // --- decisions --------------------------------------------------------------
  /// Appends the instructions since the last call to `out` (in order) and clears the queue.
  void take_instructions(std::vector<Instruction>& out);

  // --- queries ----------------------------------------------------------------
  TaskState state(TaskId task) const;
  /// The worker processing `task` or holding its result (kNoWorker otherwise).
  WorkerId worker_of(TaskId task) const;
  /// `task`'s inputs as given (they stay known while `task` is); valid until the next add_task.
  std::span<const TaskId> inputs_of(TaskId task) const;
  std::uint64_t nbytes(TaskId task) const;
  std::size_t num_workers() const noexcept;
  bool removed(WorkerId worker) const;
  /// Why `task` erred when no worker reported an error for it; nullptr when
  /// it erred by its own error or is not erred. Valid while the task is.
  const LostTask* lost(TaskId task) const;
  /// Tasks assigned to `worker` that it has not answered for yet (those
  /// released meanwhile included: the worker may be running them).
  std::uint32_t processing_on(WorkerId worker) const;
  /// Tasks in memory on `worker` (Client::has_what), copies included.
  std::vector<TaskId> held_by(WorkerId worker) const;
  /// Every worker holding `task`'s result, worker_of(task) first (Client::who_has).
  std::vector<WorkerId> holders(TaskId task) const;
  /// Acquires sent and not answered yet (ended ones, see remove_worker, not counted).
  std::size_t moves_pending() const noexcept;
  bool retiring(WorkerId worker) const;
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
