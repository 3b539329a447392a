// weft/callbacks.hpp - hooks that schedulers call around a computation.
//
// Mirrors dask.callbacks.Callback (start / pretask / posttask / finish).
// Schedulers only emit these events; diagnostics (progress bar, profiler)
// listen. A computation takes a snapshot of the registered callbacks when it
// starts, so adding or removing one mid-way affects only later computations.
// With no callback registered, a computation pays nothing per task.
//
// Callbacks are called concurrently from the scheduler's threads: an
// implementation must be thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "weft/key.hpp"

namespace weft {

/// What a computation tells its callbacks when it starts.
struct ComputeStart {
  std::size_t ntasks;          ///< tasks that will run, after optimisation
  std::string_view scheduler;  ///< "sync", "threads", ...
  unsigned nthreads;           ///< threads that run tasks
};

class Callback {
 public:
  virtual ~Callback() = default;
  /// Before the first task runs.
  virtual void start(const ComputeStart& /*info*/) {}
  /// A task is about to run on thread `thread` (0 .. nthreads-1).
  virtual void task_start(const Key& /*key*/, unsigned /*thread*/) {}
  /// A task ended; `failed` when it threw.
  virtual void task_finish(const Key& /*key*/, unsigned /*thread*/, bool /*failed*/) {}
  /// After the last task, before compute() returns or throws.
  virtual void finish(bool /*failed*/) {}
};

using CallbackPtr = std::shared_ptr<Callback>;

/// Registers `cb` for every later computation in this process (Dask's
/// `cb.register()`). Thread-safe.
void add_callback(CallbackPtr cb);
/// Undoes add_callback; a no-op for a callback that is not registered.
void remove_callback(const CallbackPtr& cb);

/// Registers a callback for the lifetime of this object (Dask's `with cb:`).
class CallbackScope {
 public:
  explicit CallbackScope(CallbackPtr cb) : cb_(std::move(cb)) { add_callback(cb_); }
  ~CallbackScope() { remove_callback(cb_); }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

 private:
  CallbackPtr cb_;
};

namespace detail {
/// The callbacks registered now; empty (and cheap) when there are none.
std::vector<CallbackPtr> registered_callbacks();
}  // namespace detail

}  // namespace weft
