// Worker plugins: their registry on a worker, the delivery of transitions,
// and the client's register / unregister (docs/architecture.md, "Worker
// plugins and preload").
#include "worker_plugins.hpp"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <exception>
#include <optional>
#include <typeinfo>

#include "../core/exec_plan.hpp"
#include "client_impl.hpp"
#include "options.hpp"
#include "unit.hpp"
#include "weft/config.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft {

const char* to_string(WorkerTaskState state) noexcept {
  switch (state) {
    case WorkerTaskState::released: return "released";
    case WorkerTaskState::waiting: return "waiting";
    case WorkerTaskState::ready: return "ready";
    case WorkerTaskState::executing: return "executing";
    case WorkerTaskState::memory: return "memory";
    case WorkerTaskState::error: return "error";
  }
  return "unknown";
}

namespace dist {

namespace {

std::atomic<WorkerPlugins*> serving_plugins{nullptr};
std::atomic<WorkerPlugins*> local_instance{nullptr};  // local_plugins(), once made
std::mutex local_instance_mutex;

// "TYPE: MESSAGE" of the exception being handled; a task's error (the
// factory's constructor threw) is described by its original exception.
std::string describe_current() {
  try {
    throw;
  } catch (const TaskError& e) {
    try {
      e.rethrow_original();
    } catch (const std::exception& original) {
      return detail::demangle(typeid(original)) + ": " + e.original_message();
    } catch (...) {
      return "unknown exception: " + e.original_message();
    }
  } catch (const std::exception& e) {
    return detail::demangle(typeid(e)) + ": " + e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// A local computation's task events as transitions: the pool learns of a
// task when it starts, so it passes through waiting and ready at once. A
// unit that reads a future's result (a FutureTask, keyed as the future)
// only copies what the pool holds: no transitions.
class LocalTransitions final : public Callback {
 public:
  explicit LocalTransitions(WorkerPlugins& plugins) : plugins_(plugins) {}
  void task_start(const Key& key, unsigned) override {
    if (copies_result(key)) return;
    plugins_.transition(key, WorkerTaskState::released, WorkerTaskState::waiting);
    plugins_.transition(key, WorkerTaskState::waiting, WorkerTaskState::ready);
    plugins_.transition(key, WorkerTaskState::ready, WorkerTaskState::executing);
  }
  void task_finish(const Key& key, unsigned, bool failed) override {
    if (copies_result(key)) return;
    plugins_.transition(key, WorkerTaskState::executing,
                        failed ? WorkerTaskState::error : WorkerTaskState::memory);
  }

 private:
  static bool copies_result(const Key& key) {
    detail::ClientImpl* client = detail::active_client();
    return client && client->holds_result(key);
  }
  WorkerPlugins& plugins_;
};

WorkerContext local_context() {
  const WorkerOptions options = worker_options(1);
  WorkerContext c;
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof host - 1);
  c.host = host;
  c.name = worker_name(options, 0);
  // The threads scheduler's pool (num-workers, else every core).
  const auto threads = config::get_optional<std::int64_t>("num-workers");
  c.nthreads = threads && *threads > 0 ? static_cast<unsigned>(*threads) : options.nthreads;
  c.local_directory = options.local_directory;
  c.resources = options.resources;
  return c;  // memory_limit 0: nothing watches the local process's memory
}

}  // namespace

WorkerPlugins::WorkerPlugins(WorkerContext context, bool local)
    : context_(std::move(context)), local_(local), plugins_(std::make_shared<const std::vector<Entry>>()) {}

WorkerPlugins::~WorkerPlugins() {
  if (callback_) remove_callback(callback_);
}

std::string WorkerPlugins::where() const {
  return (local_ ? std::string("the local worker") : "worker rank " + std::to_string(context_.rank)) + " (" +
         context_.host + ")";
}

std::shared_ptr<const std::vector<WorkerPlugins::Entry>> WorkerPlugins::snapshot() const {
  std::lock_guard lock(mutex_);
  return plugins_;
}

void WorkerPlugins::replace(std::shared_ptr<const std::vector<Entry>> plugins) {
  const bool active = !plugins->empty();
  {
    std::lock_guard lock(mutex_);
    plugins_ = std::move(plugins);
  }
  active_.store(active, std::memory_order_relaxed);
  if (!active) {
    // Nobody hears them; and a freed id may be reused before a plugin comes again.
    std::lock_guard lock(recorded_mutex_);
    recorded_.clear();
    held_.clear();
  }
  if (!local_ || active == (callback_ != nullptr)) return;
  if (active) {
    callback_ = std::make_shared<LocalTransitions>(*this);
    add_callback(callback_);
  } else {
    remove_callback(callback_);
    callback_.reset();
  }
}

void WorkerPlugins::tear_down(const Entry& entry) const {
  try {
    entry.second->teardown();
  } catch (...) {
    std::fprintf(stderr, "weft: %s: the teardown of worker plugin '%s' failed: %s\n", where().c_str(),
                 entry.first.c_str(), describe_current().c_str());
  }
}

void WorkerPlugins::install(const std::string& name, const std::function<Value()>& make) {
  std::shared_ptr<WorkerPlugin> plugin;
  try {
    plugin = make().get<std::shared_ptr<WorkerPlugin>>();
    plugin->setup(context_);
  } catch (...) {
    throw RuntimeError("plugin-setup-failed", "worker plugin '" + name + "' failed its setup on " + where() +
                                                  ": " + describe_current());
  }
  auto plugins = std::make_shared<std::vector<Entry>>(*snapshot());
  std::optional<Entry> replaced;
  auto same = std::find_if(plugins->begin(), plugins->end(), [&](const Entry& e) { return e.first == name; });
  if (same != plugins->end()) {
    replaced = std::move(*same);
    plugins->erase(same);
  }
  plugins->emplace_back(name, std::move(plugin));  // a replacement counts as registered now
  replace(std::move(plugins));
  if (replaced) tear_down(*replaced);
}

bool WorkerPlugins::remove(const std::string& name) {
  auto plugins = std::make_shared<std::vector<Entry>>(*snapshot());
  auto it = std::find_if(plugins->begin(), plugins->end(), [&](const Entry& e) { return e.first == name; });
  if (it == plugins->end()) return false;
  Entry removed = std::move(*it);
  plugins->erase(it);
  replace(std::move(plugins));
  tear_down(removed);
  return true;
}

std::shared_ptr<WorkerPlugin> WorkerPlugins::find(const std::string& name) const {
  for (const Entry& e : *snapshot())
    if (e.first == name) return e.second;
  return nullptr;
}

void WorkerPlugins::teardown_all() {
  std::shared_ptr<const std::vector<Entry>> plugins = snapshot();
  replace(std::make_shared<const std::vector<Entry>>());
  for (auto it = plugins->rbegin(); it != plugins->rend(); ++it) tear_down(*it);
}

void WorkerPlugins::transition(const Key& key, WorkerTaskState start, WorkerTaskState finish) {
  for (const Entry& e : *snapshot()) {
    try {
      e.second->transition(key, start, finish);
    } catch (...) {
      std::fprintf(stderr, "weft: %s: worker plugin '%s' failed in transition(%s, %s -> %s): %s\n",
                   where().c_str(), e.first.c_str(), key.str().c_str(), to_string(start), to_string(finish),
                   describe_current().c_str());
    }
  }
}

void WorkerPlugins::record(TaskId task, const Key& key, WorkerTaskState start, WorkerTaskState finish) {
  if (!active_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(recorded_mutex_);
  recorded_.push_back({key, start, finish});
  if (finish == WorkerTaskState::memory) held_.insert_or_assign(task, key);
}

void WorkerPlugins::record_released(TaskId task) {
  if (!active_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(recorded_mutex_);
  auto it = held_.find(task);
  if (it == held_.end()) return;
  recorded_.push_back({it->second, WorkerTaskState::memory, WorkerTaskState::released});
  held_.erase(it);
}

bool WorkerPlugins::deliver() {
  {
    std::lock_guard lock(recorded_mutex_);
    if (recorded_.empty()) return false;
    delivering_.swap(recorded_);
  }
  for (const Recorded& r : delivering_) transition(r.key, r.start, r.finish);
  delivering_.clear();
  return true;
}

WorkerPlugins& local_plugins() {
  if (WorkerPlugins* made = local_instance.load()) return *made;
  std::lock_guard lock(local_instance_mutex);
  // Never destroyed: the callback registry may be gone by then. The local
  // client tears the plugins down when it ends.
  if (!local_instance.load()) local_instance.store(new WorkerPlugins(local_context(), true));
  return *local_instance.load();
}

void teardown_local_plugins() {
  if (WorkerPlugins* made = local_instance.load()) made->teardown_all();
}

void set_serving_plugins(WorkerPlugins* plugins) noexcept { serving_plugins.store(plugins); }

}  // namespace dist

namespace detail {

std::shared_ptr<WorkerPlugin> find_worker_plugin(const std::string& name) {
  dist::WorkerPlugins* serving = dist::serving_plugins.load();
  std::shared_ptr<WorkerPlugin> plugin = (serving ? *serving : dist::local_plugins()).find(name);
  if (!plugin) throw ValueError("no-plugin", "no worker plugin named '" + name + "' is registered on this worker");
  return plugin;
}

void register_worker_plugin(ClientImpl& impl, const std::string& name, const Task& factory) {
  impl.register_worker_plugin(name, factory);
}

void unregister_worker_plugin(ClientImpl& impl, const std::string& name) { impl.unregister_worker_plugin(name); }

bool ClientImpl::holds_result(const Key& key) {
  FutureStatePtr future;  // released after the lock: a last reference's destructor takes mutex_
  std::lock_guard lock(mutex_);
  future = live_future(key);
  return future && future->status == FutureStatus::finished;
}

void ClientImpl::register_worker_plugin(const std::string& name, const Task& factory) {
  if (!distributed()) {
    dist::local_plugins().install(name, [&] { return run_task(factory, {}); });
    return;
  }
  std::vector<std::byte> wire;
  dist::encode_unit(factory, wire);
  RunCall call = run_everywhere(std::move(wire), name);
  int failed = 0;
  std::string first;
  for (const auto& [id, text] : call.errors) {
    if (id.empty()) continue;  // set up there, or not asked (a removed worker)
    if (failed++ == 0) first = text;
  }
  if (failed > 1) first += " (and on " + std::to_string(failed - 1) + " more of the " + std::to_string(nworkers_) + " workers)";
  if (failed > 0) throw RuntimeError("plugin-setup-failed", first);
}

void ClientImpl::unregister_worker_plugin(const std::string& name) {
  bool found = false;
  if (!distributed()) {
    found = dist::local_plugins().remove(name);
  } else {
    // An empty unit: remove the plugin of that name. Every worker answers
    // whether it had one.
    RunCall call = run_everywhere({}, name);
    for (std::size_t w = 0; w < call.asked.size(); ++w)
      if (call.asked[w] == RunCall::Asked::answered && call.errors[w].first.empty())
        found |= call.results[w].get<bool>();
  }
  if (!found) throw ValueError("no-plugin", "no worker plugin named '" + name + "' is registered");
}

}  // namespace detail
}  // namespace weft
