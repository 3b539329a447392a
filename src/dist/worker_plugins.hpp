// The worker plugins of one worker (weft/worker_plugin.hpp): a worker
// rank's, or without worker ranks the process's own (its thread pool is the
// worker).
//
// On a worker rank transitions happen under the Worker's lock on its comm
// and compute threads; they are recorded there (a push onto a queue) and
// the comm thread delivers them to the hooks, in order, outside that lock:
// a hook never runs under the worker's lock, never twice at once, and sees a
// key's transitions in the order they happened even when they happened on
// different threads. Registration, removal and teardown run on the comm
// thread too (protocol's `plugin` operation, the stop).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "scheduler_state.hpp"
#include "weft/callbacks.hpp"
#include "weft/value.hpp"
#include "weft/worker_plugin.hpp"

namespace weft::dist {

class WorkerPlugins {
 public:
  /// `local`: the process's thread pool is the worker; its computations'
  /// task_start / task_finish callbacks become transitions while a plugin
  /// is registered.
  WorkerPlugins(WorkerContext context, bool local);
  ~WorkerPlugins();
  WorkerPlugins(const WorkerPlugins&) = delete;
  WorkerPlugins& operator=(const WorkerPlugins&) = delete;

  /// Makes a plugin with `make` (which runs the factory task: the value
  /// holds a std::shared_ptr<WorkerPlugin>), runs its setup, and puts it in
  /// the place of the plugin registered as `name`, whose teardown then runs.
  /// RuntimeError "plugin-setup-failed" naming the plugin, this worker and
  /// the exception when making it or its setup throws; an earlier plugin of
  /// that name then stays.
  void install(const std::string& name, const std::function<Value()>& make);
  /// Tears down and drops the plugin `name`; false when there is none.
  bool remove(const std::string& name);
  /// The plugin `name`, or null.
  std::shared_ptr<WorkerPlugin> find(const std::string& name) const;
  /// Tears every plugin down, the latest registered first, and drops them.
  /// A teardown that throws is reported on stderr; the others still run.
  void teardown_all();

  /// Calls every plugin's transition hook now (one that throws is reported
  /// on stderr and the task goes on).
  void transition(const Key& key, WorkerTaskState start, WorkerTaskState finish);

  /// Worker ranks, any thread, with the Worker's lock held: records that
  /// task `task` went from `start` to `finish`; nothing while no plugin is
  /// registered.
  void record(TaskId task, const Key& key, WorkerTaskState start, WorkerTaskState finish);
  /// The same for a result that left the store (memory -> released), when
  /// its memory transition was recorded.
  void record_released(TaskId task);
  /// Comm thread: calls the hooks for the transitions recorded so far, in
  /// order; true when there were any.
  bool deliver();

 private:
  using Entry = std::pair<std::string, std::shared_ptr<WorkerPlugin>>;
  struct Recorded {
    Key key;
    WorkerTaskState start, finish;
  };
  // The plugins now, in registration order. Replaced as a whole, so a
  // transition runs on a snapshot taken under the lock and calls the hooks
  // outside it (a hook may look plugins up).
  std::shared_ptr<const std::vector<Entry>> snapshot() const;
  void replace(std::shared_ptr<const std::vector<Entry>> plugins);
  void tear_down(const Entry& entry) const;
  std::string where() const;  // "worker rank R (HOST)"

  const WorkerContext context_;
  const bool local_;
  mutable std::mutex mutex_;  // plugins_
  std::shared_ptr<const std::vector<Entry>> plugins_;
  std::atomic<bool> active_{false};  // plugins_ is not empty
  CallbackPtr callback_;             // local: registered while active_

  std::mutex recorded_mutex_;  // recorded_, held_
  std::vector<Recorded> recorded_;
  std::vector<Recorded> delivering_;                // comm thread: the batch being delivered
  std::unordered_map<TaskId, Key> held_;            // results whose memory transition was recorded
};

/// The plugins of this process without worker ranks (a local client's);
/// made on first use, from the configuration.
WorkerPlugins& local_plugins();
/// Tears down local_plugins()' plugins, if it was made (a local client's end).
void teardown_local_plugins();

/// Set by a worker rank's Worker for its lifetime: find_worker_plugin looks
/// there instead of local_plugins().
void set_serving_plugins(WorkerPlugins* plugins) noexcept;

}  // namespace weft::dist
