// Rank 0's comm thread: drives SchedulerState with the client's requests and
// the workers' messages, and turns its instructions into batches.
#include <algorithm>
#include <cstdio>

#include "client_impl.hpp"
#include "runtime_signals.hpp"
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
  int heard = 0;
  auto on_hello = [&](dist::InMessage& m) {
    BatchReader in(m.body, m.buffers, m.source);
    if (in.op() != Op::hello || m.source < 1) in.fail("expected a hello from a worker");
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
  comm_thread_ = std::thread([this] { comm_loop(); });
}

void ClientImpl::shutdown(int status) {
  {
    std::lock_guard lock(mutex_);
    Request r(Request::Kind::stop);
    r.status = status;
    post(std::move(r));
  }
  comm_thread_.join();
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
    apply_instructions();
    busy |= send_batches();
    if (dist::stop_signal() != 0) {
      std::lock_guard lock(mutex_);
      if (!terminated_) {
        terminated_ = true;
        changed_.notify_all();
      }
    }
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
          // Record first: add_task may already have decided where it runs.
          TaskId id = state_->add_task(spec);
          ids[u] = id;
          if (records_.size() <= id) records_.resize(id + 1);
          records_[id] = Record{std::move(s.wire), s.key, s.priority, {}, {}, {}, 0, false, std::move(s.callbacks),
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
      case Request::Kind::gather: {
        WorkerId holder = state_->worker_of(r.task);
        BatchWriter& w = to_worker(holder);
        w.op(Op::gather);
        w.put(r.task);
        break;
      }
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
          TaskId id = state_->add_data(home, value->nbytes(), true);
          if (records_.size() <= id) records_.resize(id + 1);
          records_[id] = Record{{}, r.futures[i]->key, 0, {}, {}, {}, 0, r.scatter.broadcast, nullptr, {}};
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
      case Request::Kind::run:
        for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
          BatchWriter& out = to_worker(w);
          out.op(Op::run);
          out.put(static_cast<std::uint32_t>(r.task));
          out.bytes(r.wire);
        }
        break;
      case Request::Kind::call: r.call(); break;
      case Request::Kind::stop:
        for (WorkerId w = 0; w < static_cast<WorkerId>(nworkers_); ++w) {
          BatchWriter& out = to_worker(w);
          out.op(Op::stop);
          out.put<std::int32_t>(r.status);
        }
        stopping_ = true;
        break;
    }
  }
}

void ClientImpl::handle_message(dist::InMessage& m) {
  BatchReader in(m.body, m.buffers, m.source);
  const auto worker = static_cast<WorkerId>(m.source - 1);
  try {
    while (!in.at_end()) {
      switch (in.op()) {
        case Op::done: {
          auto task = in.get<TaskId>();
          tell_callbacks(task, worker, false);
          state_->task_finished(task, worker, in.get<std::uint64_t>());
          break;
        }
        case Op::erred: {
          auto task = in.get<TaskId>();
          Record& rec = records_.at(task);
          rec.error_key = in.string();
          rec.error_type = in.string();
          rec.error_message = in.string();
          rec.error_rank = m.source;
          tell_callbacks(task, worker, true);
          state_->task_erred(task, worker);
          break;
        }
        case Op::released: state_->worker_released(in.get<TaskId>(), worker); break;
        case Op::stolen: {
          auto task = in.get<TaskId>();
          state_->steal_response(task, worker, in.get<std::uint8_t>() != 0);
          break;
        }
        case Op::data: {
          auto task = in.get<TaskId>();
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
          RunCall& rc = runs_[call];
          rc.errors.resize(static_cast<std::size_t>(nworkers_));
          rc.results[worker] = std::move(v);
          rc.errors[worker] = std::move(error);
          ++rc.answered;
          changed_.notify_all();
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
    }
  }
  if (reported) changed_.notify_all();
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
}

bool ClientImpl::send_batches() {
  bool sent = false;
  for (std::size_t w = 0; w < to_workers_.size(); ++w) {
    if (to_workers_[w].empty()) continue;
    BatchWriter::Parts p = to_workers_[w].take();
    transport_->send(static_cast<int>(w) + 1, dist::kBatchTag, std::move(p.body), std::move(p.buffers),
                     std::move(p.keep_alive));
    sent = true;
  }
  return sent;
}

}  // namespace weft::detail
