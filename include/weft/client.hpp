// weft/client.hpp - the Client: rank 0's handle on the cluster (Dask's
// distributed.Client), given to the function weft::main runs.
//
// Inside weft::main on several ranks, tasks run on the worker ranks and
// results stay there until gathered. Started alone (no launcher, or one
// rank) the same calls run on a local pool of threads: the program does not
// change between a laptop and a batch job.
//
//   auto f = client.submit(load, 7);                   // Future<double>
//   auto g = client.submit(combine, std::vector{f, f}); // futures as arguments
//   double r = g.result();
//   auto fs = client.map(load, std::vector{1, 2, 3});
//   std::vector<double> all = client.gather(fs);
//   auto d = client.scatter(big_vector);                // data to a worker once
//   auto total = client.compute(delayed_value);         // Future of a graph's result
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/compute.hpp"
#include "weft/coordination.hpp"
#include "weft/delayed.hpp"
#include "weft/future.hpp"
#include "weft/worker_plugin.hpp"

namespace weft {

/// Options of submit() and map() (Dask's keyword arguments of the same names).
struct SubmitOptions {
  /// Same function and arguments give the same key, and so the same future.
  bool pure = true;
  /// Higher runs first when workers are busy.
  std::int32_t priority = 0;
  /// Run only on this worker rank (Dask's workers=); nullopt: anywhere.
  std::optional<int> worker = std::nullopt;
  /// Key prefix instead of the function's name.
  std::string_view name = {};
  /// Resources each task holds while it runs, e.g. {{"GPU", 1}} (Dask's
  /// resources=): it runs only on workers started with enough of them
  /// (--resources "GPU=2"), and a worker runs no more such tasks at once than
  /// its resources allow. Without worker ranks it has no effect.
  std::map<std::string, double> resources = {};
  /// Times a task that throws runs again before its error is final (Dask's
  /// retries=); each task of a submitted graph gets its own count.
  std::uint32_t retries = 0;
};

/// Options of scatter().
struct ScatterOptions {
  /// Put a copy on every worker (Dask's broadcast=True).
  bool broadcast = false;
  /// Put it on this worker rank; nullopt: the least loaded.
  std::optional<int> worker = std::nullopt;
};

/// A worker's state as its latest heartbeat told it (Dask's
/// scheduler_info()["workers"][address]["metrics"]).
struct WorkerMetrics {
  std::uint64_t memory = 0;               ///< resident set size (RSS), bytes
  std::uint64_t peak_memory = 0;          ///< the highest RSS so far, bytes
  std::uint64_t memory_limit = 0;         ///< --memory-limit in bytes; 0: none
  std::uint64_t managed_bytes = 0;        ///< results held in memory (their nbytes)
  std::uint64_t spilled_bytes = 0;        ///< results spilled to disk now (their nbytes)
  std::uint64_t spilled_bytes_total = 0;  ///< nbytes of every spill so far
  std::uint32_t spilled_count = 0;        ///< results spilled to disk now
  std::uint32_t executing = 0;            ///< tasks running
  std::uint32_t ready = 0;                ///< tasks with all inputs here, waiting for a thread
  std::uint32_t in_flight = 0;            ///< inputs being fetched from other workers
  bool paused = false;                    ///< above the pause threshold: no new task starts
};

/// One worker as rank 0 knows it.
struct WorkerInfo {
  int rank = 0;
  WorkerMetrics metrics;       ///< from its latest heartbeat
  double last_seen = -1;       ///< seconds since that heartbeat arrived; -1: none yet
  std::uint64_t heartbeats = 0;  ///< heartbeats received
};

/// Client::scheduler_info(): the workers by rank (Dask's ["workers"]).
struct SchedulerInfo {
  std::map<int, WorkerInfo> workers;
};

namespace detail {
/// Submits the tasks the roots need (already-submitted futures are reused)
/// and returns a future state per root. Non-template part of Client.
std::vector<FutureStatePtr> submit_graph(ClientImpl& impl, std::span<const TaskRef> roots,
                                         const SubmitOptions& options);
/// Puts values on workers as futures.
std::vector<FutureStatePtr> scatter_values(ClientImpl& impl, std::vector<Value> values,
                                           const ScatterOptions& options);
/// Waits for each state and moves the values to rank 0; throws the first error.
std::vector<const Value*> gather_values(ClientImpl& impl, std::span<const FutureStatePtr> states);
/// Runs `task` (no dependencies) once on every worker still in the cluster;
/// results in rank order.
std::vector<Value> run_on_workers(ClientImpl& impl, const Task& task);
int client_workers(const ClientImpl& impl) noexcept;
/// A task standing for a future's result: graphs that use it read the result
/// where it is (Client::persist).
TaskPtr future_task(FutureStatePtr state);
std::map<std::string, std::vector<int>> who_has(ClientImpl& impl, std::span<const FutureStatePtr> states);
std::map<int, std::vector<std::string>> has_what(ClientImpl& impl);
SchedulerInfo scheduler_info(ClientImpl& impl);
void restart(ClientImpl& impl);
void retire_workers(ClientImpl& impl, const std::vector<int>& ranks);
void replicate(ClientImpl& impl, std::span<const FutureStatePtr> states, int n);
/// `factory` (no dependencies) makes the plugin where it runs.
void register_worker_plugin(ClientImpl& impl, const std::string& name, const Task& factory);
void unregister_worker_plugin(ClientImpl& impl, const std::string& name);
/// `all`: every result on the cluster, else the states' results.
void rebalance(ClientImpl& impl, std::span<const FutureStatePtr> states, bool all);
}  // namespace detail

/// Lets `future`'s task run to the end even when no Future refers to it any
/// more (dask.distributed.fire_and_forget): for tasks run for their effects.
void fire_and_forget(const FutureBase& future);

class Client {
 public:
  /// Made by weft::main / weft::init; tests may make one over an implementation.
  explicit Client(detail::ClientImpl& impl) noexcept : impl_(&impl) {}

  /// Worker ranks (0 when tasks run on the local thread pool).
  int nworkers() const noexcept { return detail::client_workers(*impl_); }

  /// Runs fn(args...) on a worker now. Arguments may be values or Futures
  /// (their results are read where the task runs).
  template <class F, class... A>
  auto submit(const SubmitOptions& options, F&& fn, A&&... args) {
    auto d = delayed(std::forward<F>(fn), DelayedOptions{.name = options.name, .pure = options.pure})(
        std::forward<A>(args)...);
    return submit_delayed(options, d);
  }
  template <class F, class... A>
    requires(!std::is_same_v<std::decay_t<F>, SubmitOptions>)
  auto submit(F&& fn, A&&... args) {
    return submit(SubmitOptions{}, std::forward<F>(fn), std::forward<A>(args)...);
  }

  /// fn over every element of `items`, one task each.
  template <class F, class R>
  auto map(F&& fn, const R& items, const SubmitOptions& options = {}) {
    using D = decltype(delayed(fn)(*std::begin(items)));
    std::vector<TaskRef> roots;
    std::vector<D> ds;
    for (const auto& item : items) {
      ds.push_back(delayed(fn, DelayedOptions{.name = options.name, .pure = options.pure})(item));
      roots.push_back(ds.back().ref());
    }
    using T = typename D::value_type;
    std::vector<detail::FutureStatePtr> states = detail::submit_graph(*impl_, roots, options);
    std::vector<Future<T>> out;
    out.reserve(states.size());
    for (auto& s : states) out.emplace_back(std::move(s));
    return out;
  }

  /// The results of `futures`, in order (waits; throws the first error).
  template <class T>
  std::vector<T> gather(const std::vector<Future<T>>& futures) {
    std::vector<detail::FutureStatePtr> states;
    states.reserve(futures.size());
    for (const Future<T>& f : futures) states.push_back(f.state());
    std::vector<const Value*> values = detail::gather_values(*impl_, states);
    std::vector<T> out;
    out.reserve(values.size());
    for (const Value* v : values) out.push_back(v->template get<T>());
    return out;
  }

  /// Sends `value` to a worker (or all, with broadcast) and returns its future.
  template <class T>
  Future<std::decay_t<T>> scatter(T&& value, const ScatterOptions& options = {}) {
    std::vector<Value> values;
    values.push_back(Value::of(std::forward<T>(value)));
    return Future<std::decay_t<T>>(std::move(detail::scatter_values(*impl_, std::move(values), options)[0]));
  }
  /// One future per element (Dask's scatter of a list).
  template <class T>
  std::vector<Future<T>> scatter_each(std::vector<T> values, const ScatterOptions& options = {}) {
    std::vector<Value> vs;
    vs.reserve(values.size());
    for (T& v : values) vs.push_back(Value::of(std::move(v)));
    std::vector<detail::FutureStatePtr> states = detail::scatter_values(*impl_, std::move(vs), options);
    std::vector<Future<T>> out;
    for (auto& s : states) out.emplace_back(std::move(s));
    return out;
  }

  /// Starts computing a Delayed's graph; its result stays on a worker.
  template <class T>
  Future<T> compute(const Delayed<T>& d, const SubmitOptions& options = {}) {
    return submit_delayed(options, d);
  }

  /// Starts computing `d` and returns a Delayed that stands for its result,
  /// which stays on a worker (Dask's Client.persist): graphs built on it later
  /// read it there instead of computing it again.
  template <class T>
  Delayed<T> persist(const Delayed<T>& d, const SubmitOptions& options = {}) {
    return Delayed<T>(detail::future_task(compute(d, options).state()));
  }

  /// Runs fn() once on every worker rank still in the cluster and returns the
  /// results in rank order (Dask's Client.run). Removed and retired workers
  /// are skipped, also one removed while the call waits for it, so the
  /// results may be fewer than the worker ranks (return weft::rank() to tell
  /// them apart). Without worker ranks fn runs once, here.
  template <class F>
  auto run(F&& fn) {
    using R = std::invoke_result_t<F&>;
    auto d = delayed(std::forward<F>(fn), DelayedOptions{.pure = false})();
    std::vector<Value> values = detail::run_on_workers(*impl_, *d.task());
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      std::vector<R> out;
      out.reserve(values.size());
      for (Value& v : values) out.push_back(v.template take<R>());
      return out;
    }
  }

  /// Registers the worker plugin P (weft/worker_plugin.hpp) as `name` on
  /// every worker (Dask's register_worker_plugin): each constructs its own
  /// P(args...) and runs its setup before this returns. A plugin registered
  /// earlier as `name` is replaced: torn down once the new one is set up.
  /// The arguments travel as a task's do (TypeError
  /// "type.not-serializable" for one that cannot); RuntimeError
  /// "runtime.plugin-setup-failed" when making P or its setup throws on a
  /// worker (it is kept on the others). The worker ranks are fixed when the
  /// client starts, so every worker has the plugin from here on; removed
  /// and retired workers are skipped. Without worker ranks this process's
  /// thread pool is the worker: the plugin is made and set up here, sees the
  /// local computations' tasks, and is torn down when the client ends.
  template <class P, class... A>
  void register_worker_plugin(const std::string& name, A&&... args) {
    static_assert(std::is_base_of_v<WorkerPlugin, P>, "register_worker_plugin<P>: P must derive from weft::WorkerPlugin");
    auto factory = delayed(detail::WorkerPluginFactory<P, std::decay_t<A>...>{},
                           DelayedOptions{.pure = false})(std::forward<A>(args)...);
    detail::register_worker_plugin(*impl_, name, *factory.task());
  }
  /// Tears down and removes the plugin `name` on every worker (Dask's
  /// unregister_worker_plugin); ValueError "value.no-plugin" when no worker has it.
  void unregister_worker_plugin(const std::string& name) { detail::unregister_worker_plugin(*impl_, name); }

  /// Worker ranks holding each future's result, by key (Dask's who_has).
  template <class T>
  std::map<std::string, std::vector<int>> who_has(const std::vector<Future<T>>& futures) {
    std::vector<detail::FutureStatePtr> states;
    for (const Future<T>& f : futures) states.push_back(f.state());
    return detail::who_has(*impl_, states);
  }
  /// Keys held by each worker rank (Dask's has_what).
  std::map<int, std::vector<std::string>> has_what() { return detail::has_what(*impl_); }
  /// Drops every task and result (Dask's restart): every future becomes
  /// cancelled, the workers free everything, the ranks stay for new work.
  /// Without worker ranks the futures are cancelled all the same (jobs
  /// already running on the local threads finish, their results dropped).
  void restart() { detail::restart(*impl_); }
  /// Moves each result held only by these worker ranks to another worker,
  /// then they get no more work (Dask's retire_workers); returns when moved.
  /// A rank that is not a worker is a ValueError "value.bad-worker" (without
  /// worker ranks, any rank).
  void retire_workers(const std::vector<int>& ranks) { detail::retire_workers(*impl_, ranks); }
  /// Waits for the futures, then keeps each result on `n` workers (Dask's
  /// replicate): copies go to the workers holding the fewest bytes, extra
  /// copies are dropped; returns when copied. Without worker ranks one
  /// process holds each result once and there is nothing to copy.
  template <class T>
  void replicate(const std::vector<Future<T>>& futures, int n) {
    std::vector<detail::FutureStatePtr> states;
    for (const Future<T>& f : futures) states.push_back(f.state());
    detail::replicate(*impl_, states, n);
  }

  /// Moves results from the workers holding more than the mean managed bytes
  /// to those holding less, until each is near the mean (Dask's rebalance):
  /// each sender, fullest first, sends its largest results to the emptiest
  /// worker; a result keeps one holder (two if a task started reading it on
  /// the sender meanwhile), replicated ones keep their copies. Retired
  /// workers take no part; results a running task reads stay. Returns when
  /// moved. Without worker ranks there is nothing to move.
  void rebalance() { detail::rebalance(*impl_, {}, true); }
  /// The same, moving only these futures' results (it waits for them first).
  template <class T>
  void rebalance(const std::vector<Future<T>>& futures) {
    std::vector<detail::FutureStatePtr> states;
    for (const Future<T>& f : futures) states.push_back(f.state());
    detail::rebalance(*impl_, states, false);
  }

  /// Named datasets (Dask's publish_dataset, get_dataset, unpublish_dataset,
  /// list_datasets); tasks reach them through the free functions of
  /// weft/coordination.hpp. A published Future keeps its result on the cluster.
  template <class T>
  void publish_dataset(const std::string& name, T value, bool override_existing = false) {
    weft::publish_dataset(name, std::move(value), override_existing);
  }
  template <class T>
  T get_dataset(const std::string& name) {
    return weft::get_dataset<T>(name);
  }
  void unpublish_dataset(const std::string& name) { weft::unpublish_dataset(name); }
  std::vector<std::string> list_datasets() { return weft::list_datasets(); }
  /// Every worker rank with its latest heartbeat (Dask's scheduler_info());
  /// empty without worker ranks.
  SchedulerInfo scheduler_info() { return detail::scheduler_info(*impl_); }

  detail::ClientImpl& impl() noexcept { return *impl_; }

 private:
  template <class T>
  Future<T> submit_delayed(const SubmitOptions& options, const Delayed<T>& d) {
    TaskRef root = d.ref();
    return Future<T>(std::move(detail::submit_graph(*impl_, std::span(&root, 1), options)[0]));
  }

  detail::ClientImpl* impl_;
};

}  // namespace weft
