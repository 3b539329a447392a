// The client thread's side of Client and Future: turning calls into requests
// for rank 0's comm thread (distributed) or jobs for the local thread.
#include <algorithm>
#include <cstdio>

#include "client_impl.hpp"
#include "unit.hpp"
#include "worker_plugins.hpp"
#include "weft/error.hpp"

namespace weft {

const char* to_string(FutureStatus s) noexcept {
  switch (s) {
    case FutureStatus::pending: return "pending";
    case FutureStatus::finished: return "finished";
    case FutureStatus::error: return "error";
    case FutureStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

namespace detail {

FutureState::~FutureState() {
  std::lock_guard lock(client->mutex_);
  auto it = client->futures_by_key_.find(key);
  if (it != client->futures_by_key_.end() && it->second.expired()) client->futures_by_key_.erase(it);
  if (id == dist::kNoTask || !client->distributed()) return;
  client->futures_by_id_.erase(id);
  ClientImpl::Request r(ClientImpl::Request::Kind::release);
  r.task = id;
  client->post(std::move(r));
}

Value FutureTask::run(std::span<const Value* const>) const {
  const Value& v = future_value(*state_);
  return v.clone();
}

const Key& future_key(const FutureState& s) noexcept { return s.key; }

FutureStatus future_status(const FutureState& s) {
  std::lock_guard lock(s.client->mutex_);
  return s.status;
}

const Value& future_value(FutureState& s) {
  s.client->gather_one(s);
  return s.value;
}

std::exception_ptr future_exception(FutureState& s) {
  s.client->wait_until([&] { return s.status != FutureStatus::pending; });
  std::lock_guard lock(s.client->mutex_);
  return s.error;
}

void future_cancel(FutureState& s) { s.client->cancel(s); }

std::size_t wait_states(std::span<const FutureState* const> states, ReturnWhen when,
                        std::span<const bool> skip) {
  ClientImpl& c = *states[0]->client;
  std::size_t found = states.size() - 1;
  c.wait_until([&] {
    if (when == ReturnWhen::all_completed)
      return std::all_of(states.begin(), states.end(),
                         [](const FutureState* s) { return s->status != FutureStatus::pending; });
    for (std::size_t i = 0; i < states.size(); ++i) {
      if (!skip.empty() && skip[i]) continue;
      if (states[i]->status != FutureStatus::pending) {
        found = i;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<FutureStatePtr> submit_graph(ClientImpl& impl, std::span<const TaskRef> roots,
                                         const SubmitOptions& options) {
  return impl.submit_graph(roots, options);
}
std::vector<FutureStatePtr> scatter_values(ClientImpl& impl, std::vector<Value> values,
                                           const ScatterOptions& options) {
  return impl.scatter(std::move(values), options);
}
std::vector<const Value*> gather_values(ClientImpl& impl, std::span<const FutureStatePtr> states) {
  impl.gather(states);
  std::vector<const Value*> out;
  out.reserve(states.size());
  for (const FutureStatePtr& s : states) out.push_back(&s->value);
  return out;
}
std::vector<Value> run_on_workers(ClientImpl& impl, const Task& task) { return impl.run_on_workers(task); }
int client_workers(const ClientImpl& impl) noexcept { return impl.workers(); }
TaskPtr future_task(FutureStatePtr state) { return std::make_shared<FutureTask>(std::move(state)); }
std::map<std::string, std::vector<int>> who_has(ClientImpl& impl, std::span<const FutureStatePtr> states) {
  return impl.who_has(states);
}
std::map<int, std::vector<std::string>> has_what(ClientImpl& impl) { return impl.has_what(); }
SchedulerInfo scheduler_info(ClientImpl& impl) { return impl.scheduler_info(); }
void restart(ClientImpl& impl) { impl.restart(); }
void retire_workers(ClientImpl& impl, const std::vector<int>& ranks) { impl.retire_workers(ranks); }
void replicate(ClientImpl& impl, std::span<const FutureStatePtr> states, int n) {
  impl.replicate(states, static_cast<std::uint32_t>(std::max(n, 1)));
}
void rebalance(ClientImpl& impl, std::span<const FutureStatePtr> states, bool all) { impl.rebalance(states, all); }

// --- ClientImpl, client thread ----------------------------------------------

namespace {
// A cancelled future's RuntimeError, thrown directly or from inside a task.
bool is_cancellation(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const RuntimeError& e) {
    return e.id() == "runtime.cancelled";
  } catch (const TaskError& e) {
    try {
      e.rethrow_original();
    } catch (const RuntimeError& original) {
      return original.id() == "runtime.cancelled";
    } catch (...) {
    }
  } catch (...) {
  }
  return false;
}
}  // namespace

ClientImpl::ClientImpl() {
  local_thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [this] { return local_stop_ || !local_jobs_.empty(); });
      if (local_jobs_.empty()) return;
      std::function<void()> job = std::move(local_jobs_.front());
      local_jobs_.pop_front();
      lock.unlock();
      job();
      job = nullptr;  // drops its futures outside the lock
      lock.lock();
    }
  });
}

ClientImpl::~ClientImpl() {
  if (local_thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      local_stop_ = true;
    }
    changed_.notify_all();
    local_thread_.join();
    dist::teardown_local_plugins();  // the local worker ends with its client
  }
  if (comm_thread_.joinable()) shutdown(0);
}

void ClientImpl::throw_terminated() const {
  if (cluster_error_) std::rethrow_exception(cluster_error_);
  throw RuntimeError("terminated", "the job is draining (" + drain_reason_ + "): pending results are abandoned");
}

void ClientImpl::post(Request r) {
  requests_.push_back(std::move(r));
  transport_->wake();
}

FutureStatePtr ClientImpl::live_future(const Key& key) {
  auto it = futures_by_key_.find(key);
  return it == futures_by_key_.end() ? nullptr : it->second.lock();
}

std::vector<FutureStatePtr> ClientImpl::submit_graph(std::span<const TaskRef> roots,
                                                     const SubmitOptions& options) {
  std::vector<FutureStatePtr> out(roots.size());
  std::vector<TaskRef> todo;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < roots.size(); ++i)
      if (!(out[i] = live_future(roots[i].key))) todo.push_back(roots[i]);
  }
  if (todo.empty()) return out;

  // Futures the new tasks depend on are results that already exist.
  std::vector<TaskPtr> externals;
  PlanOptions plan_options = configured_plan_options();
  plan_options.resolve_external = resolver(externals);
  ExecPlan plan = build_plan(todo, nullptr, plan_options);

  std::vector<FutureStatePtr> states = distributed() ? submit_plan(plan, options)
                                                     : run_local(todo, plan, std::move(externals));
  for (std::size_t i = 0, j = 0; i < roots.size(); ++i)
    if (!out[i]) out[i] = states[j++];
  return out;
}

ExternalResolver ClientImpl::resolver(std::vector<TaskPtr>& keep) {
  return [this, &keep](const Key& key) -> const Task* {
    FutureStatePtr f;
    {
      std::lock_guard lock(mutex_);
      f = live_future(key);
    }
    if (!f) return nullptr;
    keep.push_back(std::make_shared<FutureTask>(std::move(f)));
    return keep.back().get();
  };
}

void ClientImpl::settle(const ExecPlan& plan) {
  std::vector<FutureStatePtr> states;
  for (const Task* t : plan.task)
    if (auto* f = dynamic_cast<const FutureTask*>(t)) states.push_back(f->state());
  if (!states.empty()) gather(states);
}

std::vector<FutureStatePtr> ClientImpl::root_states(const ExecPlan& plan) {
  // One state per root unit; a root listed twice shares it.
  std::vector<FutureStatePtr> states(plan.root_units.size());
  std::unordered_map<std::uint32_t, FutureStatePtr> by_unit;
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < plan.root_units.size(); ++i) {
    std::uint32_t u = plan.root_units[i];
    FutureStatePtr& s = by_unit[u];
    if (!s) {
      if (auto* f = dynamic_cast<const FutureTask*>(plan.task[u])) {
        s = f->state();
      } else {
        s = std::make_shared<FutureState>(*this, plan.task[u]->key());
        futures_by_key_[s->key] = s;
      }
    }
    states[i] = s;
  }
  return states;
}

std::vector<FutureStatePtr> ClientImpl::submit_plan(const ExecPlan& plan, const SubmitOptions& options,
                                                     CallbacksPtr callbacks) {
  dist::WorkerId restriction = dist::kNoWorker;
  if (options.worker) {
    if (*options.worker < 1 || *options.worker > nworkers_)
      throw ValueError("bad-worker", "worker rank " + std::to_string(*options.worker) +
                                         " does not exist: the workers are ranks 1 to " +
                                         std::to_string(nworkers_));
    restriction = static_cast<dist::WorkerId>(*options.worker - 1);
  }
  // The workers with the resources the tasks need; none is an error now.
  std::vector<std::pair<std::string, double>> needs(options.resources.begin(), options.resources.end());
  std::vector<dist::WorkerId> able;
  if (!needs.empty()) {
    for (int w = 0; w < nworkers_; ++w) {
      const auto& has = worker_resources_[static_cast<std::size_t>(w)];
      if (std::all_of(needs.begin(), needs.end(), [&](const auto& need) {
            auto it = has.find(need.first);
            return it != has.end() && it->second >= need.second;
          }))
        able.push_back(static_cast<dist::WorkerId>(w));
    }
    std::string wanted;
    for (const auto& [name, amount] : needs) {
      char text[64];
      std::snprintf(text, sizeof text, "%s%s=%g", wanted.empty() ? "" : " ", name.c_str(), amount);
      wanted += text;
    }
    if (able.empty())
      throw ValueError("no-worker-resources", "no worker has the resources " + wanted +
                                                  " (workers get them with --resources, e.g. --resources \"GPU=2\")");
    if (restriction != dist::kNoWorker && std::find(able.begin(), able.end(), restriction) == able.end())
      throw ValueError("no-worker-resources", "worker rank " + std::to_string(*options.worker) +
                                                  " does not have the resources " + wanted);
  }
  // Encode everything first: a task that cannot travel fails here, before
  // the scheduler has seen any of the submission.
  Request r(Request::Kind::submit);
  r.units.resize(plan.size());
  for (std::uint32_t u = 0; u < plan.size(); ++u) {
    UnitSubmission& s = r.units[u];
    if (auto* f = dynamic_cast<const FutureTask*>(plan.task[u])) {
      s.existing = f->state();
      continue;
    }
    s.key = plan.task[u]->key();
    std::vector<Value> attached;
    dist::encode_unit(plan, u, s.wire, attached);
    if (!attached.empty()) s.attached = std::make_shared<const std::vector<Value>>(std::move(attached));
    auto ins = plan.inputs_of(u);
    s.inputs.assign(ins.begin(), ins.end());
    s.priority = options.priority;
    s.restriction = restriction;
    s.collective = plan.task[u]->collective();
    s.callbacks = callbacks;
    s.needs = needs;
    s.able = able;
    s.retries = options.retries;
  }
  std::vector<FutureStatePtr> states = root_states(plan);
  for (std::size_t i = 0; i < states.size(); ++i) {
    UnitSubmission& s = r.units[plan.root_units[i]];
    if (!s.existing) s.future = states[i];
  }
  std::lock_guard lock(mutex_);
  post(std::move(r));
  return states;
}

std::vector<FutureStatePtr> ClientImpl::run_local(std::span<const TaskRef> roots, const ExecPlan& plan,
                                                  std::vector<TaskPtr> externals) {
  std::vector<FutureStatePtr> states = root_states(plan);
  // The job plans again through execute(): externals are found in a graph.
  auto graph = std::make_shared<Graph>();
  for (TaskPtr& t : externals) graph->add(std::move(t));
  std::vector<TaskRef> job_roots(roots.begin(), roots.end());
  std::lock_guard lock(mutex_);
  local_jobs_.push_back([this, job_roots = std::move(job_roots), graph, states] {
    std::vector<Value> values;
    std::exception_ptr error;
    try {
      ComputeOptions co;
      co.scheduler = SchedulerKind::threads;
      values = execute(job_roots, graph.get(), co);
    } catch (...) {
      error = std::current_exception();
      // An input future was cancelled: so are these (as Dask cancels dependents).
      if (is_cancellation(error)) error = nullptr, values.clear();
    }
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < states.size(); ++i) {
      FutureState& s = *states[i];
      if (s.status != FutureStatus::pending) continue;  // cancelled, or a shared root
      if (!error && values.empty()) {
        s.status = FutureStatus::cancelled;
      } else if (error) {
        s.status = FutureStatus::error;
        s.error = error;
      } else {
        s.value = std::move(values[i]);
        s.status = FutureStatus::finished;
      }
    }
    changed_.notify_all();
  });
  changed_.notify_all();
  return states;
}

void ClientImpl::gather_one(FutureState& s) {
  FutureState* one = &s;
  gather_raw(std::span(&one, 1));
}

void ClientImpl::gather(std::span<const FutureStatePtr> states) {
  std::vector<FutureState*> raw;
  raw.reserve(states.size());
  for (const FutureStatePtr& s : states) raw.push_back(s.get());
  gather_raw(raw);
}

void ClientImpl::gather_raw(std::span<FutureState* const> states) {
  auto settled = [&] {
    return std::all_of(states.begin(), states.end(),
                       [](const FutureState* s) { return s->status != FutureStatus::pending; });
  };
  wait_until(settled);
  {
    std::lock_guard lock(mutex_);
    for (FutureState* s : states) {
      if (s->status == FutureStatus::error) std::rethrow_exception(s->error);
      if (s->status == FutureStatus::cancelled)
        throw RuntimeError("cancelled", "future '" + s->key.str() + "' was cancelled");
    }
    for (FutureState* s : states) {
      if (s->value.has_value() || s->gather_requested) continue;
      s->gather_requested = true;
      Request r(Request::Kind::gather);
      r.task = s->id;
      post(std::move(r));
    }
  }
  wait_until([&] {
    return std::all_of(states.begin(), states.end(),
                       [](const FutureState* s) { return s->value.has_value() || s->error; });
  });
  std::lock_guard lock(mutex_);
  for (FutureState* s : states)
    if (!s->value.has_value()) std::rethrow_exception(s->error);
}

void ClientImpl::cancel(FutureState& s) {
  std::lock_guard lock(mutex_);
  if (s.status != FutureStatus::pending) return;
  if (!distributed()) {
    s.status = FutureStatus::cancelled;  // the local job's result is dropped
    changed_.notify_all();
    return;
  }
  Request r(Request::Kind::cancel);
  r.task = s.id;
  post(std::move(r));
}

std::vector<FutureStatePtr> ClientImpl::scatter(std::vector<Value> values, const ScatterOptions& options) {
  if (options.worker && (*options.worker < 1 || *options.worker > nworkers_))
    throw ValueError("bad-worker", "worker rank " + std::to_string(*options.worker) +
                                       " does not exist: the workers are ranks 1 to " +
                                       std::to_string(nworkers_));
  std::vector<FutureStatePtr> states;
  states.reserve(values.size());
  std::lock_guard lock(mutex_);
  for (Value& v : values) {
    if (distributed() && !v.type()->serializable())
      throw TypeError("not-serializable", "cannot scatter a '" + v.type_name() +
                                              "': the type cannot be sent to another rank");
    Key key(literal_name(*v.type()->type), fresh_token());
    states.push_back(std::make_shared<FutureState>(*this, key));
    futures_by_key_[key] = states.back();
  }
  if (!distributed()) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      states[i]->value = std::move(values[i]);
      states[i]->status = FutureStatus::finished;
    }
    return states;
  }
  Request r(Request::Kind::scatter);
  r.values = std::move(values);
  r.futures = states;
  r.scatter = options;
  post(std::move(r));
  return states;
}

std::vector<Value> ClientImpl::run_on_workers(const Task& task) {
  if (!distributed()) {
    std::vector<Value> out;
    out.push_back(run_task(task, {}));
    return out;
  }
  std::vector<std::byte> wire;
  dist::encode_unit(task, wire);
  RunCall call = run_everywhere(std::move(wire), std::nullopt);
  std::vector<Value> results;
  for (std::size_t w = 0; w < call.asked.size(); ++w) {
    if (call.asked[w] != RunCall::Asked::answered) continue;
    if (!call.errors[w].first.empty())
      throw TaskError(task.key().str(), call.errors[w].second + " (on worker rank " + std::to_string(w + 1) + ")",
                      std::make_exception_ptr(RemoteError(call.errors[w].first, call.errors[w].second,
                                                          static_cast<int>(w + 1))));
    results.push_back(std::move(call.results[w]));
  }
  return results;
}

ClientImpl::RunCall ClientImpl::run_everywhere(std::vector<std::byte> wire, std::optional<std::string> plugin) {
  Request r(Request::Kind::run);
  r.wire = std::move(wire);
  r.plugin = std::move(plugin);
  std::uint32_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_run_++;
    RunCall& call = runs_[id];
    call.asked.resize(static_cast<std::size_t>(nworkers_), RunCall::Asked::no);
    call.results.resize(static_cast<std::size_t>(nworkers_));
    call.errors.resize(static_cast<std::size_t>(nworkers_));
    r.task = id;
    post(std::move(r));
  }
  wait_until([&] { return runs_[id].waiting == 0; });
  std::lock_guard lock(mutex_);
  RunCall call = std::move(runs_[id]);
  runs_.erase(id);
  return call;
}

void ClientImpl::call_on_comm_thread(std::function<void()> fn) {
  bool done = false;
  {
    std::lock_guard lock(mutex_);
    Request r(Request::Kind::call);
    r.call = [&, fn = std::move(fn)] {
      fn();
      std::lock_guard inner(mutex_);
      done = true;
      changed_.notify_all();
    };
    post(std::move(r));
  }
  wait_until([&] { return done; });
}

std::map<std::string, std::vector<int>> ClientImpl::who_has(std::span<const FutureStatePtr> states) {
  std::map<std::string, std::vector<int>> out;
  if (!distributed()) {
    for (const FutureStatePtr& s : states) out[s->key.str()];
    return out;
  }
  std::vector<std::pair<std::string, dist::TaskId>> ids;
  {
    std::lock_guard lock(mutex_);
    for (const FutureStatePtr& s : states) ids.emplace_back(s->key.str(), s->id);
  }
  call_on_comm_thread([&] {
    for (auto& [key, id] : ids) {
      std::vector<int>& ranks = out[key];
      if (id == dist::kNoTask) continue;
      for (dist::WorkerId w : state_->holders(id)) ranks.push_back(static_cast<int>(w) + 1);
    }
  });
  return out;
}

std::map<int, std::vector<std::string>> ClientImpl::has_what() {
  std::map<int, std::vector<std::string>> out;
  if (!distributed()) return out;
  call_on_comm_thread([&] {
    for (int w = 0; w < nworkers_; ++w) {
      std::vector<std::string>& keys = out[w + 1];
      for (dist::TaskId id : state_->held_by(static_cast<dist::WorkerId>(w))) keys.push_back(records_[id].key.str());
    }
  });
  return out;
}

SchedulerInfo ClientImpl::scheduler_info() {
  SchedulerInfo info;
  if (!distributed()) return info;
  call_on_comm_thread([&] {
    const auto now = std::chrono::steady_clock::now();
    for (int w = 0; w < nworkers_; ++w) {
      const Heartbeat& h = heartbeats_[static_cast<std::size_t>(w)];
      WorkerInfo& out = info.workers[w + 1];
      out.rank = w + 1;
      out.heartbeats = h.count;
      if (h.count == 0) continue;
      out.metrics = h.metrics;
      out.last_seen = std::chrono::duration<double>(now - h.at).count();
    }
  });
  return info;
}

void ClientImpl::restart() {
  if (!distributed()) {
    // Local jobs run to the end; their futures are dropped all the same.
    std::lock_guard lock(mutex_);
    for (auto& [key, weak] : futures_by_key_) {
      if (FutureStatePtr s = weak.lock()) {
        s->status = FutureStatus::cancelled;
        s->value = Value();
      }
    }
    futures_by_key_.clear();
    changed_.notify_all();
    return;
  }
  // The reports (cancelled) reach the futures before the call returns.
  call_on_comm_thread([this] {
    state_->restart();
    apply_instructions();
  });
}

void ClientImpl::retire_workers(const std::vector<int>& ranks) {
  std::vector<dist::WorkerId> workers;
  for (int rank : ranks) {
    if (!distributed())
      throw ValueError("bad-worker", "cannot retire worker rank " + std::to_string(rank) +
                                         ": there are no worker ranks (tasks run on this process's threads)");
    if (rank < 1 || rank > nworkers_)
      throw ValueError("bad-worker", "worker rank " + std::to_string(rank) +
                                         " does not exist: the workers are ranks 1 to " + std::to_string(nworkers_));
    workers.push_back(static_cast<dist::WorkerId>(rank - 1));
  }
  if (workers.empty()) return;
  call_on_comm_thread([&] {
    state_->retire_workers(workers);
    retiring_.insert(retiring_.end(), workers.begin(), workers.end());
    finish_moves();
  });
  wait_until([this] { return moves_done_; });
}

std::vector<dist::TaskId> ClientImpl::finished_ids(std::span<const FutureStatePtr> states) {
  wait_until([&] {
    return std::none_of(states.begin(), states.end(),
                        [](const FutureStatePtr& s) { return s->status == FutureStatus::pending; });
  });
  std::vector<dist::TaskId> ids;
  std::lock_guard lock(mutex_);
  for (const FutureStatePtr& s : states)
    if (s->status == FutureStatus::finished && s->id != dist::kNoTask) ids.push_back(s->id);
  return ids;
}

void ClientImpl::replicate(std::span<const FutureStatePtr> states, std::uint32_t n) {
  if (!distributed()) return;  // one process holds every result once
  const std::vector<dist::TaskId> ids = finished_ids(states);
  call_on_comm_thread([&] {
    for (dist::TaskId id : ids)
      if (state_->state(id) == dist::TaskState::memory) state_->replicate(id, n);
    finish_moves();
  });
  wait_until([this] { return moves_done_; });
}

void ClientImpl::rebalance(std::span<const FutureStatePtr> states, bool all) {
  if (!distributed()) return;  // one process holds every result
  std::vector<dist::TaskId> ids = finished_ids(states);
  call_on_comm_thread([&] {
    if (all) {
      ids.clear();
      for (dist::TaskId id = 0; id < records_.size(); ++id)
        if (state_->state(id) == dist::TaskState::memory && !records_[id].broadcast) ids.push_back(id);
    } else {
      std::erase_if(ids, [this](dist::TaskId id) {
        return state_->state(id) != dist::TaskState::memory || records_[id].broadcast;
      });
    }
    state_->rebalance(ids);
    finish_moves();
  });
  wait_until([this] { return moves_done_; });
}

std::vector<Value> ClientImpl::compute_plan(const ExecPlan& plan, const std::vector<CallbackPtr>& callbacks) {
  std::vector<FutureStatePtr> states = submit_plan(
      plan, SubmitOptions{}, callbacks.empty() ? nullptr : std::make_shared<const std::vector<CallbackPtr>>(callbacks));
  gather(states);
  std::vector<Value> values;
  values.reserve(states.size());
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < states.size(); ++i) {
    // A root listed twice shares one state: copy all but its last use; a
    // root that is a future of the user's keeps its value.
    bool keep = dynamic_cast<const FutureTask*>(plan.task[plan.root_units[i]]) != nullptr ||
                std::find(states.begin() + static_cast<std::ptrdiff_t>(i) + 1, states.end(), states[i]) !=
                    states.end();
    values.push_back(keep ? states[i]->value.clone() : std::move(states[i]->value));
  }
  return values;
}

}  // namespace detail
}  // namespace weft
