// Rank 0's comm thread: drives SchedulerState with the client's requests and
// the workers' messages, and turns its instructions into batches.
#include <algorithm>
#include <cstdio>

#include "client_impl.hpp"
#include "nanny.hpp"
#include "runtime_signals.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::detail {

using dist::BatchReader;
using dist::BatchWriter;
using dist::Instruction;
using dist::Op;
using dist::TaskId;
using dist::WorkerId;

ClientImpl::ClientImpl(std::unique_ptr<dist::Transport> transport, dist::SchedulerOptions options)
    : transport_(std::move(transport)), nworkers_(transport_->size() - 1) {
  state_.emplace(options);
  to_workers_.resize(static_cast<std::size_t>(nworkers_));
  // Start-up: every worker says how many threads it runs. Workers are added
  // in rank order, so worker w is rank w + 1.
  std::vector<std::uint32_t> nthreads(static_cast<std::size_t>(nworkers_), 0);
  worker_resources_.resize(static_cast<std::size_t>(nworkers_));
  heartbeats_.resize(static_cast<std::size_t>(nworkers_));
  int heard = 0;
  auto on_hello = [&](dist::InMessage& m) {
    BatchReader in(m.body, m.buffers, m.source);
    if (m.source < 1) in.fail("expected a hello from a worker");
    // A worker that said hello already may heartbeat while others still start.
    if (in.op() != Op::hello) return handle_message(m);
    auto w = static_cast<std::size_t>(m.source - 1);
    nthreads[w] = std::max<std::uint32_t>(1, in.get<std::uint32_t>());
    auto nresources = in.get<std::uint32_t>();
    for (std::uint32_t i = 0; i < nresources; ++i) {
      std::string name = in.string();
      worker_resources_[w][name] = in.get<double>();
    }
    ++heard;
  };
  while (heard < nworkers_) transport_->idle(transport_->poll(on_hello));
  for (std::uint32_t n : nthreads) state_->add_worker(n);
  last_heard_.assign(static_cast<std::size_t>(nworkers_), std::chrono::steady_clock::now());
  worker_ttl_ = config::get_seconds("distributed.scheduler.worker-ttl");
  drain_grace_ = config::get_seconds("distributed.worker.lifetime-grace");
  comm_thread_ = std::thread([this] { comm_loop(); });
}

int ClientImpl::shutdown(int status) {
  {
    std::lock_guard lock(mutex_);
    Request r(Request::Kind::stop);
    r.status = status;
    post(std::move(r));
  }
  comm_thread_.join();
  return stop_status_;
}

void ClientImpl::send_stop(std::int32_t status) {
  for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
    BatchWriter& out = to_worker(w);
    out.op(Op::stop);
    out.put(status);
  }
  stop_status_ = status;
  stopping_ = true;
}

void ClientImpl::start_drain(std::int32_t status, std::string reason) {
  if (drain_ || stopping_) return;
  drain_.emplace();
  drain_->status = status;
  drain_->reason = reason;
  drain_->answered.assign(static_cast<std::size_t>(nworkers_), false);
  for (TaskId t = 0; t < records_.size(); ++t) {
    const dist::TaskState st = state_->state(t);
    drain_->unfinished += st == dist::TaskState::waiting || st == dist::TaskState::queued ||
                          st == dist::TaskState::processing;
  }
  for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
    if (state_->removed(w)) continue;
    BatchWriter& out = to_worker(w);
    out.op(Op::drain);
    out.put(drain_grace_);
  }
  std::lock_guard lock(mutex_);
  terminated_ = true;
  drain_reason_ = std::move(reason);
  changed_.notify_all();
}

void ClientImpl::drain_on_signal() {
  const int sig = dist::stop_signal();
  if (sig == 0 || signal_told_) return;
  signal_told_ = true;
  // Apart from the drain's batch, which a worker inside a collective write
  // step reads only after the step: the step discards its output on it.
  for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w)
    if (!stopping_ && !state_->removed(w)) transport_->send(static_cast<int>(w) + 1, dist::kStopSignalTag, {});
  start_drain(128 + sig, dist::signal_name(sig));
}

void ClientImpl::progress_drain() {
  if (!drain_ || drain_->finished) return;
  for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w)
    if (!drain_->answered[w] && !state_->removed(w)) return;
  drain_->finished = true;
  // Of the tasks unfinished when the drain began, those running then ended
  // or were abandoned; the others never started (the client, unwinding, may
  // have released them since).
  const std::size_t gone = drain_->ended + drain_->abandoned;
  const std::size_t not_started = drain_->unfinished - std::min(drain_->unfinished, gone);
  std::string abandoned;
  if (drain_->abandoned != 0)
    abandoned = std::to_string(drain_->abandoned) + " abandoned after distributed.worker.lifetime-grace, ";
  std::fprintf(stderr, "weft: draining: %llu tasks done, %zu not started, %s%s\n",
               static_cast<unsigned long long>(tasks_done_), not_started, abandoned.c_str(),
               drain_->reason.c_str());
  std::fflush(stderr);
  if (drain_->stop_requested) send_stop(drain_->status);
}

BatchWriter& ClientImpl::to_worker(WorkerId w) { return to_workers_[w]; }

void ClientImpl::comm_loop() {
  auto on_message = [this](dist::InMessage& m) { handle_message(m); };
  while (!stopping_) {
    bool busy = transport_->poll(on_message);
    std::deque<Request> requests;
    {
      std::lock_guard lock(mutex_);
      requests.swap(requests_);
    }
    if (!requests.empty()) {
      busy = true;
      handle_requests(requests);
      requests.clear();  // futures held by requests die here, outside the lock
    }
    busy |= coord_expire();
    check_workers();
    apply_instructions();
    drain_on_signal();
    progress_drain();
    busy |= send_batches();
    if (!stopping_) transport_->idle(busy);
  }
  transport_->flush(on_message);
}

void ClientImpl::handle_requests(std::deque<Request>& requests) {
  for (Request& r : requests) {
    // A forget must reach records_ before a later request reuses its id.
    apply_instructions();
    switch (r.kind) {
      case Request::Kind::submit: {
        std::vector<TaskId> ids(r.units.size());
        std::vector<TaskId> inputs;
        for (std::size_t u = 0; u < r.units.size(); ++u) {
          UnitSubmission& s = r.units[u];
          if (s.existing) {
            std::lock_guard lock(mutex_);
            ids[u] = s.existing->id;
            continue;
          }
          inputs.clear();
          for (std::uint32_t i : s.inputs) inputs.push_back(ids[i]);
          dist::TaskSpec spec;
          spec.inputs = inputs;
          spec.user_priority = s.priority;
          spec.restriction = s.restriction;
          if (!s.needs.empty() && spec.restriction == dist::kNoWorker &&
              s.able.size() < static_cast<std::size_t>(nworkers_)) {
            // Only some workers have the resources: the least busy of them.
            spec.restriction = *std::min_element(s.able.begin(), s.able.end(), [&](WorkerId a, WorkerId b) {
              return state_->processing_on(a) < state_->processing_on(b);
            });
          }
          spec.collective = s.collective;
          spec.wanted = s.future != nullptr;
          spec.retries = s.retries;
          // Record first: add_task may already have decided where it runs.
          TaskId id = state_->add_task(spec);
          ids[u] = id;
          if (records_.size() <= id) records_.resize(id + 1);
          records_[id] = Record{std::move(s.wire), std::move(s.attached), s.key, s.priority, {}, {}, {}, 0, false, std::move(s.callbacks),
                                std::move(s.needs)};
          if (s.future) {
            std::lock_guard lock(mutex_);
            s.future->id = id;
            futures_by_id_[id] = s.future.get();
          }
        }
        break;
      }
      case Request::Kind::release:
        if (state_->state(r.task) != dist::TaskState::forgotten) state_->release(r.task);
        break;
      case Request::Kind::cancel:
        if (r.task != dist::kNoTask && state_->state(r.task) != dist::TaskState::forgotten)
          state_->cancel(r.task);
        break;
      case Request::Kind::gather: request_gather(r.task); break;
      case Request::Kind::scatter: {
        for (std::size_t i = 0; i < r.values.size(); ++i) {
          auto value = std::make_shared<Value>(std::move(r.values[i]));
          WorkerId home;
          if (r.scatter.worker) {
            home = static_cast<WorkerId>(*r.scatter.worker - 1);
          } else {
            home = next_scatter_worker_;
            next_scatter_worker_ = (next_scatter_worker_ + 1) % static_cast<WorkerId>(nworkers_);
          }
          // Data goes to the next worker that is left when its home was removed.
          for (int tries = 1; state_->removed(home) && tries < nworkers_; ++tries)
            home = (home + 1) % static_cast<WorkerId>(nworkers_);
          TaskId id = state_->add_data(home, value->nbytes(), true);
          if (records_.size() <= id) records_.resize(id + 1);
          records_[id] = Record{{}, nullptr, r.futures[i]->key, 0, {}, {}, {}, 0, r.scatter.broadcast, nullptr, {}};
          for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
            if (w != home && !r.scatter.broadcast) continue;
            BatchWriter& out = to_worker(w);
            out.op(Op::store);
            out.put(id);
            out.value(*value, value);
          }
          std::lock_guard lock(mutex_);
          r.futures[i]->id = id;
          r.futures[i]->status = FutureStatus::finished;
          futures_by_id_[id] = r.futures[i].get();
          changed_.notify_all();
        }
        break;
      }
      case Request::Kind::run: {
        // Removed (and retired) workers hear nothing more: they are not asked.
        std::lock_guard lock(mutex_);
        RunCall& call = runs_[static_cast<std::uint32_t>(r.task)];
        call.waiting = 0;
        for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
          if (state_->removed(w)) continue;
          call.asked[w] = RunCall::Asked::waiting;
          ++call.waiting;
          BatchWriter& out = to_worker(w);
          out.op(r.plugin ? Op::plugin : Op::run);
          out.put(static_cast<std::uint32_t>(r.task));
          if (r.plugin) out.string(*r.plugin);
          out.bytes(r.wire);
        }
        changed_.notify_all();
        break;
      }
      case Request::Kind::call: r.call(); break;
      case Request::Kind::stop:
        // A signal the client saw first must still drain the job.
        drain_on_signal();
        if (!drain_) send_stop(r.status);
        else if (drain_->finished) send_stop(drain_->status);
        else drain_->stop_requested = true;
        break;
    }
  }
}

void ClientImpl::handle_message(dist::InMessage& m) {
  BatchReader in(m.body, m.buffers, m.source);
  const auto worker = static_cast<WorkerId>(m.source - 1);
  // Any message shows the worker alive; a removed worker's answers about
  // tasks are stale (they wait again elsewhere) and are dropped.
  if (worker < last_heard_.size()) last_heard_[worker] = std::chrono::steady_clock::now();
  const bool gone = worker < state_->num_workers() && state_->removed(worker);
  try {
    while (!in.at_end()) {
      switch (in.op()) {
        case Op::done: {
          auto task = in.get<TaskId>();
          auto nbytes = in.get<std::uint64_t>();
          if (gone) break;
          ++tasks_done_;
          if (drain_) ++drain_->ended;
          tell_callbacks(task, worker, false);
          state_->task_finished(task, worker, nbytes);
          break;
        }
        case Op::erred: {
          auto task = in.get<TaskId>();
          std::string key = in.string(), type = in.string(), message = in.string();
          if (gone) break;
          Record& rec = records_.at(task);
          rec.error_key = std::move(key);
          rec.error_type = std::move(type);
          rec.error_message = std::move(message);
          rec.error_rank = m.source;
          if (drain_) ++drain_->ended;
          tell_callbacks(task, worker, true);
          state_->task_erred(task, worker);
          break;
        }
        case Op::released: {
          auto task = in.get<TaskId>();
          if (!gone) state_->worker_released(task, worker);
          break;
        }
        case Op::stolen: {
          auto task = in.get<TaskId>();
          bool given_up = in.get<std::uint8_t>() != 0;
          if (!gone) state_->steal_response(task, worker, given_up);
          break;
        }
        case Op::data: {
          auto task = in.get<TaskId>();
          gathering_.erase(task);
          Value v = in.value();
          std::lock_guard lock(mutex_);
          auto it = futures_by_id_.find(task);
          if (it != futures_by_id_.end()) {
            it->second->value = std::move(v);
            changed_.notify_all();
          }
          break;
        }
        case Op::missing: {
          auto task = in.get<TaskId>();
          gathering_.erase(task);
          std::lock_guard lock(mutex_);
          auto it = futures_by_id_.find(task);
          if (it != futures_by_id_.end()) {
            it->second->error = std::make_exception_ptr(
                RuntimeError("lost", "the result of '" + it->second->key.str() + "' is no longer on worker rank " +
                                         std::to_string(m.source)));
            changed_.notify_all();
          }
          break;
        }
        case Op::ran: {
          auto call = in.get<std::uint32_t>();
          bool ok = in.get<std::uint8_t>() != 0;
          Value v;
          std::pair<std::string, std::string> error;
          if (ok) {
            v = in.value();
          } else {
            error.first = in.string();
            error.second = in.string();
          }
          std::lock_guard lock(mutex_);
          auto it = runs_.find(call);
          // A worker removed meanwhile is no longer waited for.
          if (it == runs_.end() || it->second.asked[worker] != RunCall::Asked::waiting) break;
          RunCall& rc = it->second;
          rc.asked[worker] = RunCall::Asked::answered;
          rc.results[worker] = std::move(v);
          rc.errors[worker] = std::move(error);
          --rc.waiting;
          changed_.notify_all();
          break;
        }
        case Op::acquired: {
          auto task = in.get<TaskId>();
          bool ok = in.get<std::uint8_t>() != 0;
          if (gone) break;
          state_->task_acquired(task, worker, ok);
          finish_moves();
          break;
        }
        case Op::heartbeat: record_heartbeat(worker, in); break;
        case Op::terminating: worker_terminating(worker, in); break;
        case Op::drain: {
          auto status = in.get<std::int32_t>();
          std::string reason = in.string();
          drain_on_signal();  // rank 0's own signal, when it has one, names the reason
          if (!gone) start_drain(status, std::move(reason));
          break;
        }
        case Op::drained: {
          auto abandoned = in.get<std::uint32_t>();
          if (!drain_ || gone) break;
          drain_->answered[worker] = true;
          drain_->abandoned += abandoned;
          break;
        }
        case Op::coord: {
          std::uint64_t request_id;
          detail::CoordRequest request = dist::read_coord_request(in, request_id);
          coord_handle(m.source, request_id, std::move(request));
          break;
        }
        default: in.fail("rank 0 cannot handle this operation");
      }
    }
  } catch (const std::exception& e) {
    // A malformed message or an impossible transition is a bug: stop the job
    // loudly rather than compute on from a state nobody can trust.
    std::fprintf(stderr, "weft: rank 0: fatal: %s\n", e.what());
    MPI_Abort(transport_->comm(), 70);
  }
}

void ClientImpl::tell_callbacks(TaskId task, WorkerId worker, bool failed) {
  if (task >= records_.size() || !records_[task].callbacks) return;
  for (const CallbackPtr& cb : *records_[task].callbacks) cb->task_finish(records_[task].key, worker, failed);
}

void ClientImpl::record_heartbeat(WorkerId worker, BatchReader& in) {
  Heartbeat& h = heartbeats_.at(worker);
  h.metrics = dist::read_heartbeat(in);
  h.at = std::chrono::steady_clock::now();
  ++h.count;
}

void ClientImpl::worker_terminating(WorkerId worker, BatchReader& in) {
  const dist::MemoryExceeded e = dist::read_terminating(in);
  const std::string message = dist::describe(e, static_cast<int>(worker) + 1, [this](TaskId task) {
    return task < records_.size() && !records_[task].key.str().empty() ? records_[task].key.str()
                                                                        : "task " + std::to_string(task);
  });
  std::fprintf(stderr, "weft: %s\n", message.c_str());
  std::lock_guard lock(mutex_);
  if (!cluster_error_) cluster_error_ = std::make_exception_ptr(MemoryError("memory-exceeded", message));
  changed_.notify_all();
}

void ClientImpl::apply_instructions() {
  state_->take_instructions(instructions_);
  if (instructions_.empty()) return;
  bool reported = false;
  std::unique_lock lock(mutex_, std::defer_lock);
  for (const Instruction& ins : instructions_) {
    switch (ins.kind) {
      case Instruction::Kind::assign: {
        // A collective goes to every worker; they run it together.
        const bool everyone = ins.worker == dist::kAllWorkers;
        for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w)
          if (everyone || w == ins.worker) write_assign(to_worker(w), ins.task, everyone);
        break;
      }
      case Instruction::Kind::free: {
        bool everywhere = records_[ins.task].broadcast;
        for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
          if (w != ins.worker && !everywhere) continue;
          to_worker(w).op(Op::free);
          to_worker(w).put(ins.task);
        }
        break;
      }
      case Instruction::Kind::steal:
        to_worker(ins.worker).op(Op::steal);
        to_worker(ins.worker).put(ins.task);
        break;
      case Instruction::Kind::report: {
        if (!lock.owns_lock()) lock.lock();
        auto it = futures_by_id_.find(ins.task);
        if (it == futures_by_id_.end()) break;
        FutureState& f = *it->second;
        if (ins.state == dist::TaskState::memory) {
          f.status = FutureStatus::finished;
          auto later = std::find(gather_later_.begin(), gather_later_.end(), ins.task);
          if (later != gather_later_.end()) {
            gather_later_.erase(later);
            request_gather(ins.task);
          }
        } else if (ins.state == dist::TaskState::waiting) {
          // Lost with its worker and being computed again.
          if (!f.value.has_value()) f.status = FutureStatus::pending;
        } else if (ins.state == dist::TaskState::erred && state_->lost(ins.cause)) {
          f.status = FutureStatus::error;
          f.error = lost_error(ins.cause, *state_->lost(ins.cause));
        } else if (ins.state == dist::TaskState::erred) {
          const Record& cause = records_[ins.cause];
          f.status = FutureStatus::error;
          f.error = std::make_exception_ptr(TaskError(
              cause.error_key,
              cause.error_message + " (" + cause.error_type + " on worker rank " +
                  std::to_string(cause.error_rank) + ")",
              std::make_exception_ptr(RemoteError(cause.error_type, cause.error_message, cause.error_rank))));
        } else {
          // Cancelled: the scheduler dropped the client's reference and may
          // reuse the id, so this future must not release it again.
          f.status = FutureStatus::cancelled;
          f.id = dist::kNoTask;
          futures_by_id_.erase(it);
        }
        reported = true;
        break;
      }
      case Instruction::Kind::forget:
        records_[ins.task] = Record{};
        break;
      case Instruction::Kind::acquire:
        to_worker(ins.worker).op(Op::acquire);
        to_worker(ins.worker).put(ins.task);
        to_worker(ins.worker).put(ins.source);
        break;
    }
  }
  if (reported) changed_.notify_all();
  release_fired(instructions_);
  instructions_.clear();
}

void ClientImpl::write_assign(BatchWriter& w, TaskId task, bool collective) {
  const Record& rec = records_[task];
  w.op(collective ? Op::collective : Op::compute);
  w.put(task);
  w.put(rec.priority);
  w.put(static_cast<std::uint32_t>(rec.needs.size()));
  for (const auto& [name, amount] : rec.needs) {
    w.string(name);
    w.put(amount);
  }
  std::span<const TaskId> inputs = state_->inputs_of(task);
  w.put(static_cast<std::uint32_t>(inputs.size()));
  for (TaskId input : inputs) {
    w.put(input);
    w.put(state_->worker_of(input));
  }
  w.bytes(rec.wire);
  const std::size_t nattached = rec.attached ? rec.attached->size() : 0;
  w.put(static_cast<std::uint32_t>(nattached));
  for (std::size_t i = 0; i < nattached; ++i) w.value((*rec.attached)[i], rec.attached);
}

void ClientImpl::check_workers() {
  if (worker_ttl_ <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
    if (state_->removed(w)) continue;
    // An idle worker owes nothing: its silence counts from when it gets work.
    if (state_->processing_on(w) == 0) {
      last_heard_[w] = now;
      continue;
    }
    const double silent = std::chrono::duration<double>(now - last_heard_[w]).count();
    if (silent > worker_ttl_) {
      char reason[160];
      std::snprintf(reason, sizeof reason,
                    "stopped heartbeating: nothing heard for %.0f s while it had %u tasks (distributed.scheduler.worker-ttl)",
                    silent, state_->processing_on(w));
      remove_worker(w, reason);
    }
  }
}

void ClientImpl::remove_worker(WorkerId w, const std::string& reason) {
  std::fprintf(stderr, "weft: rank 0: removed worker rank %d: %s\n", static_cast<int>(w) + 1, reason.c_str());
  state_->remove_worker(w, reason);
  // Gathers it will not answer go to another holder, or wait for the
  // result computed again.
  std::vector<TaskId> unanswered;
  for (auto it = gathering_.begin(); it != gathering_.end();) {
    if (it->second == w) {
      unanswered.push_back(it->first);
      it = gathering_.erase(it);
    } else {
      ++it;
    }
  }
  for (TaskId task : unanswered) request_gather(task);
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, call] : runs_) {
      if (call.asked.empty() || call.asked[w] != RunCall::Asked::waiting) continue;
      call.asked[w] = RunCall::Asked::no;
      --call.waiting;
    }
    changed_.notify_all();
  }
  // Leases its tasks held go to the next waiters; its waiting calls are dropped.
  coordination_.remove_rank(static_cast<int>(w) + 1);
  coord_route({});
  // Moves to or from it were sent elsewhere or ended.
  finish_moves();
}

void ClientImpl::finish_moves() {
  const bool done = state_->moves_pending() == 0;
  if (done) {
    // remove_worker comes back here: take the list first.
    std::vector<WorkerId> retired = std::move(retiring_);
    retiring_.clear();
    for (WorkerId w : retired)
      if (!state_->removed(w)) remove_worker(w, "retired (Client::retire_workers)");
  }
  std::lock_guard lock(mutex_);
  moves_done_ = done;
  if (done) changed_.notify_all();
}

void ClientImpl::request_gather(TaskId task) {
  WorkerId holder = state_->worker_of(task);
  if (state_->state(task) != dist::TaskState::memory) {  // lost, being computed again
    gather_later_.push_back(task);
    return;
  }
  gathering_[task] = holder;
  BatchWriter& w = to_worker(holder);
  w.op(Op::gather);
  w.put(task);
}

std::exception_ptr ClientImpl::lost_error(TaskId cause, const dist::LostTask& lost) const {
  std::string ranks;
  for (WorkerId w : lost.workers) ranks += (ranks.empty() ? "" : ", ") + std::to_string(w + 1);
  const std::string key = records_[cause].key.str();
  if (!lost.killed)
    return std::make_exception_ptr(RuntimeError(
        "lost", "the result of '" + key + "' was only on worker rank " + ranks + ", which was removed (" +
                    lost.reason + "); scattered data cannot be computed again"));
  return std::make_exception_ptr(KilledWorker(
      key, "task '" + key + "' was on worker rank" + (lost.workers.size() > 1 ? "s " : " ") + ranks +
               " when " + (lost.workers.size() > 1 ? "each was" : "it was") + " removed (last: " + lost.reason +
               "): more often than distributed.scheduler.allowed-failures allows, or it may run on no other worker"));
}

bool ClientImpl::send_batches() {
  bool sent = false;
  for (std::size_t w = 0; w < to_workers_.size(); ++w) {
    if (to_workers_[w].empty()) continue;
    BatchWriter::Parts p = to_workers_[w].take();
    // A removed worker hears nothing more but stop.
    if (!stopping_ && state_->removed(static_cast<WorkerId>(w))) continue;
    transport_->send(static_cast<int>(w) + 1, dist::kBatchTag, std::move(p.body), std::move(p.buffers),
                     std::move(p.keep_alive));
    sent = true;
  }
  return sent;
}

}  // namespace weft::detail
