// execute(): graph -> plan -> scheduler -> results, for every collection.
#include <thread>

#include "../dist/client_impl.hpp"
#include "../local/schedulers.hpp"
#include "exec_plan.hpp"
#include "run_state.hpp"
#include "weft/compute.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft {

std::string_view to_string(SchedulerKind kind) noexcept {
  switch (kind) {
    case SchedulerKind::sync: return "sync";
    case SchedulerKind::threads: return "threads";
    case SchedulerKind::distributed: return "distributed";
  }
  return "unknown";
}

SchedulerKind parse_scheduler(std::string_view name) {
  if (name == "sync" || name == "synchronous" || name == "single-threaded") return SchedulerKind::sync;
  if (name == "threads" || name == "threading") return SchedulerKind::threads;
  if (name == "distributed") return SchedulerKind::distributed;
  throw ValueError("unknown-scheduler",
                   "unknown scheduler '" + std::string(name) +
                       "': expected sync (synchronous, single-threaded), threads (threading) or distributed");
}

namespace detail {

namespace {

// The configuration a computation needs, re-read only when the config changed.
struct ComputeDefaults {
  SchedulerKind scheduler;
  bool scheduler_is_default;  // nobody set "scheduler": the built-in value
  unsigned num_workers;
  PlanOptions plan;
};

ComputeDefaults read_defaults() {
  ComputeDefaults d;
  try {
    d.scheduler = parse_scheduler(config::get<std::string>("scheduler"));
  } catch (const ValueError& e) {
    // A bad value in a file or the environment: say where it came from.
    throw ConfigError("bad-value", "scheduler: " + e.text() + " (from " + config::source_of("scheduler") + ")");
  }
  d.scheduler_is_default = config::source_of("scheduler") == "defaults";
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (std::optional<std::int64_t> n = config::get_optional<std::int64_t>("num-workers"); !n) {
    d.num_workers = cores;
  } else {
    if (*n < 1)
      throw ConfigError("bad-value", "num-workers must be at least 1, not " + std::to_string(*n) +
                                         " (from " + config::source_of("num-workers") + ")");
    d.num_workers = static_cast<unsigned>(*n);
  }
  d.plan.fuse = config::get<bool>("optimization.fuse.active");
  std::int64_t height = config::get<std::int64_t>("optimization.fuse.max-height");
  d.plan.fuse_max_height = static_cast<std::uint32_t>(std::clamp<std::int64_t>(height, 1, UINT32_MAX));
  d.plan.inline_cheap = config::get<bool>("optimization.inline.active");
  return d;
}

ComputeDefaults defaults() {
  static std::mutex mutex;
  static std::uint64_t seen_generation = UINT64_MAX;
  static ComputeDefaults cached;
  std::lock_guard lock(mutex);
  std::uint64_t g = config::generation();
  if (g != seen_generation) {
    cached = read_defaults();
    seen_generation = g;
  }
  return cached;
}

}  // namespace

PlanOptions configured_plan_options() { return defaults().plan; }

namespace {
// The scheduler a computation with `options` runs on.
SchedulerKind chosen_scheduler(const ComputeOptions& options, const ComputeDefaults& d, const ClientImpl* cluster) {
  SchedulerKind kind = options.scheduler.value_or(d.scheduler);
  // Inside weft::main on several ranks the cluster is the default, as a
  // Dask Client is once made; a scheduler the user chose still wins.
  if (!options.scheduler && cluster && d.scheduler_is_default) kind = SchedulerKind::distributed;
  // Without worker ranks (no launcher, one rank) "distributed" is the
  // embedded default: the threads scheduler.
  if (kind == SchedulerKind::distributed && !cluster) kind = SchedulerKind::threads;
  if (on_pool_thread()) kind = SchedulerKind::sync;  // nested inside a task
  return kind;
}
}  // namespace

std::vector<TaskPtr> persist_roots(std::span<const TaskRef> roots, const ComputeOptions& options) {
  std::vector<TaskPtr> held;
  held.reserve(roots.size());
  ClientImpl* cluster = distributed_client();
  if (chosen_scheduler(options, defaults(), cluster) == SchedulerKind::distributed) {
    std::vector<FutureStatePtr> states = cluster->submit_graph(roots, SubmitOptions{});
    for (const FutureStatePtr& s : states)
      if (std::exception_ptr error = future_exception(*s)) std::rethrow_exception(error);
    for (FutureStatePtr& s : states) held.push_back(future_task(std::move(s)));
    return held;
  }
  std::vector<Value> values = execute(roots, nullptr, options);
  for (std::size_t i = 0; i < roots.size(); ++i)
    held.push_back(std::make_shared<ConstantTask>(roots[i].key, std::move(values[i])));
  return held;
}

std::vector<Value> execute(std::span<const TaskRef> roots, const Graph* graph,
                           const ComputeOptions& options, const RootSink* sink) {
  ComputeDefaults d = defaults();
  ClientImpl* cluster = distributed_client();
  SchedulerKind kind = chosen_scheduler(options, d, cluster);
  unsigned nthreads = options.num_workers.value_or(d.num_workers);
  if (nthreads == 0) throw ValueError("bad-num-workers", "num_workers must be at least 1");
  if (kind == SchedulerKind::sync) nthreads = 1;
  if (kind == SchedulerKind::distributed) nthreads = static_cast<unsigned>(cluster->workers());
  PlanOptions plan_options = d.plan;
  if (options.optimize_graph.has_value() && !*options.optimize_graph) {
    plan_options.fuse = false;
    plan_options.inline_cheap = false;
  }

  // Futures of the running client are results a graph may depend on.
  std::vector<TaskPtr> futures;
  if (ClientImpl* client = active_client()) plan_options.resolve_external = client->resolver(futures);
  ExecPlan plan = build_plan(roots, graph, plan_options);
  // Locally, futures the graph reads must be done before the pool starts:
  // the pool runs one computation at a time, and theirs may be queued.
  if (kind != SchedulerKind::distributed)
    if (ClientImpl* client = active_client()) client->settle(plan);

  std::vector<CallbackPtr> callbacks = registered_callbacks();
  callbacks.insert(callbacks.end(), options.callbacks.begin(), options.callbacks.end());
  RunState state(plan, callbacks, options.track_memory, sink);
  ComputeStart start{plan.size(), to_string(kind), nthreads};
  for (const CallbackPtr& cb : callbacks) cb->start(start);
  if (kind == SchedulerKind::distributed) {
    // The workers run the units; rank 0 only sends them and gathers the roots.
    std::vector<Value> values;
    try {
      values = cluster->compute_plan(plan, callbacks);
    } catch (...) {
      for (const CallbackPtr& cb : callbacks) cb->finish(true);
      throw;
    }
    for (const CallbackPtr& cb : callbacks) cb->finish(false);
    if (options.stats) *options.stats = ComputeStats{plan.tasks_in_graph, plan.size(), 0, 0, nthreads};
    if (!sink) return values;
    // The roots arrive together at the end here: they go to the sink in turn.
    for (std::size_t i = 0; i < values.size(); ++i) (*sink)(i, values[i]);
    return {};
  }
  if (kind == SchedulerKind::sync) {
    run_sync(state);
  } else {
    run_threads(state, nthreads);
  }
  for (const CallbackPtr& cb : callbacks) cb->finish(state.failed());

  if (options.stats) {
    *options.stats = ComputeStats{plan.tasks_in_graph, plan.size(), state.peak_results(),
                                  state.peak_bytes(), nthreads, state.parts_helped()};
  }
  state.rethrow_if_failed();
  return state.take_roots();
}

}  // namespace detail

std::vector<Value> get(const Graph& graph, const std::vector<Key>& keys, const ComputeOptions& options) {
  graph.validate();
  std::vector<TaskRef> roots;
  roots.reserve(keys.size());
  for (const Key& k : keys) roots.push_back(TaskRef{k, graph.at(k)});
  return detail::execute(roots, &graph, options);
}

}  // namespace weft
