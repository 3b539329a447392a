// weft/worker_plugin.hpp - code that runs on every worker around its tasks
// (Dask's distributed.WorkerPlugin).
//
//   struct Counter : weft::WorkerPlugin {
//     explicit Counter(std::string path) : path(std::move(path)) {}
//     void setup(const weft::WorkerContext& w) override { rank = w.rank; }
//     void transition(const weft::Key&, weft::WorkerTaskState, weft::WorkerTaskState to) override {
//       if (to == weft::WorkerTaskState::memory) ++done;
//     }
//     void teardown() override { std::ofstream(path + std::to_string(rank)) << done; }
//     std::string path; int rank = 0; std::atomic<long> done{0};
//   };
//   client.register_worker_plugin<Counter>("counter", std::string("/tmp/done-"));
//   client.run([] { return weft::worker_plugin<Counter>("counter")->done.load(); });
//
// The plugin travels as its constructor's arguments (weft/serialize.hpp's
// codecs, as a task's arguments do), and every worker constructs its own:
// a plugin holds per-worker state (counters, open files, mutexes) that could
// not be copied anyway, and the class needs no serialisation code. P is
// found on the workers by its type, as task functions are, so it must be the
// same binary (or a preload) everywhere.
//
// Hooks, as in Dask:
//   setup      once per worker, when the plugin is registered there. An
//              exception fails register_worker_plugin with RuntimeError
//              "runtime.plugin-setup-failed" naming the worker rank and host
//              (the plugin is not kept on that worker).
//   teardown   when the worker stops, in reverse order of registration, or
//              when a plugin registered later under the same name replaces
//              it, or at unregister_worker_plugin.
//   transition every state change of a task on the worker (table below).
//              On worker ranks all of a worker's transitions come from one
//              thread, its comm thread, in the order they happened, so a
//              key's transitions are seen in order; keep them short (the
//              worker's messages wait meanwhile). Without worker ranks they
//              come from the pool's threads at once. Tasks (and Client::run)
//              may read the plugin from other threads: guard shared state.
//
// Worker-side task states and Dask's names for them:
//   released   not on this worker: before it arrives, after it is freed,
//              stolen or dropped;
//   waiting    assigned here, some inputs not here yet (Dask: waiting, and
//              fetch/flight for the inputs, which get no transitions here);
//   ready      every input here, queued for a compute thread (Dask: ready,
//              and constrained while its resources are held by others);
//   executing  running;
//   memory     finished, its result in this worker's store;
//   error      it threw here.
// A task goes released -> waiting -> ready -> executing -> memory | error,
// then memory -> released when its result is freed; waiting | ready ->
// released when it is freed or stolen before it ran. Data a worker only
// holds (fetched inputs, scattered values) has no transitions.
//
// Without worker ranks (no launcher, one rank) the process's thread pool is
// the one worker (rank 0): setup runs once in-process, each task of a local
// computation goes released -> waiting -> ready -> executing when it starts
// and -> memory | error when it ends, and teardown runs when the client ends.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/error.hpp"
#include "weft/key.hpp"

namespace weft {

/// The worker a plugin's setup runs on (Dask passes its Worker).
struct WorkerContext {
  int rank = 0;                              ///< MPI rank; 0 without worker ranks
  std::string host;                          ///< the node's name
  std::string name;                          ///< the worker's name (--name, else its rank)
  unsigned nthreads = 1;                     ///< compute threads
  std::uint64_t memory_limit = 0;            ///< --memory-limit in bytes; 0: none
  std::string local_directory;               ///< node-local scratch (--local-directory)
  std::map<std::string, double> resources;   ///< --resources
};

/// A task's state on a worker (the table at the top of this header).
enum class WorkerTaskState : std::uint8_t { released, waiting, ready, executing, memory, error };

/// Dask's name for the state: "released", "waiting", ...
const char* to_string(WorkerTaskState state) noexcept;

class WorkerPlugin {
 public:
  virtual ~WorkerPlugin() = default;
  /// Once, on the worker, when the plugin is registered there.
  virtual void setup(const WorkerContext& /*worker*/) {}
  /// When the worker stops, or the plugin is replaced or unregistered.
  virtual void teardown() {}
  /// A task on this worker went from `start` to `finish`.
  virtual void transition(const Key& /*key*/, WorkerTaskState /*start*/, WorkerTaskState /*finish*/) {}
};

namespace detail {
/// The task a plugin travels as: constructs P from the registration's
/// arguments where it runs. Empty, so it travels as its type alone.
template <class P, class... A>
struct WorkerPluginFactory {
  std::shared_ptr<WorkerPlugin> operator()(A... args) const { return std::make_shared<P>(std::move(args)...); }
};
/// This worker's plugin of that name (the local one without worker ranks);
/// ValueError "value.no-plugin" when there is none.
std::shared_ptr<WorkerPlugin> find_worker_plugin(const std::string& name);
}  // namespace detail

/// The plugin registered as `name` on the worker this runs on, for tasks and
/// Client::run (Dask's `dask_worker.plugins[name]`). ValueError
/// "value.no-plugin" when none is, TypeError "type.plugin-type" when it is
/// not a P. The pointer keeps it alive after it is replaced (torn down).
template <class P>
std::shared_ptr<P> worker_plugin(const std::string& name) {
  static_assert(std::is_base_of_v<WorkerPlugin, P>, "worker_plugin<P>: P must derive from weft::WorkerPlugin");
  std::shared_ptr<WorkerPlugin> plugin = detail::find_worker_plugin(name);
  std::shared_ptr<P> typed = std::dynamic_pointer_cast<P>(plugin);
  if (!typed) throw TypeError("plugin-type", "the worker plugin '" + name + "' has another type than the one asked for");
  return typed;
}

}  // namespace weft
