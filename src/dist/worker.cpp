// A worker rank: data store, local readiness, peer-to-peer fetch.
#include "worker.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <typeinfo>

#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft::dist {

namespace {

// The demangled type and message of a failed task's original exception.
std::pair<std::string, std::string> describe(const TaskError& e) {
  try {
    e.rethrow_original();
  } catch (const TaskError& same) {
    return {"weft::TaskError", same.original_message()};
  } catch (const std::exception& original) {
    return {detail::demangle(typeid(original)), e.original_message()};
  } catch (...) {
    return {"unknown exception", e.original_message()};
  }
}

}  // namespace

Worker::Worker(Transport& transport, unsigned nthreads)
    : transport_(transport), self_(static_cast<WorkerId>(transport.rank() - 1)) {
  threads_.reserve(nthreads);
  for (unsigned i = 0; i < std::max(1u, nthreads); ++i) threads_.emplace_back([this] { compute_loop(); });
}

Worker::~Worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

int Worker::serve() {
  auto on_message = [this](InMessage& m) { handle(m); };
  BatchWriter hello;
  hello.op(Op::hello);
  hello.put(static_cast<std::uint32_t>(threads_.size()));
  transport_.send(0, kBatchTag, hello.take().body);
  while (!stop_received_) {
    bool busy = transport_.poll(on_message);
    busy |= flush_outgoing();
    transport_.idle(busy);
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  flush_outgoing();
  transport_.flush(on_message);
  return status_;
}

void Worker::handle(InMessage& m) {
  BatchReader in(m.body, m.buffers, m.source);
  while (!in.at_end()) {
    switch (in.op()) {
      case Op::compute: on_compute(in); break;
      case Op::free: on_free(in.get<TaskId>()); break;
      case Op::steal: on_steal(in.get<TaskId>()); break;
      case Op::gather:
      case Op::fetch: send_value(m.source, in.get<TaskId>()); break;
      case Op::data: {
        auto task = in.get<TaskId>();
        on_data(task, in.value());
        break;
      }
      case Op::store: {
        auto task = in.get<TaskId>();
        on_store(task, in.value());
        break;
      }
      case Op::missing: on_missing(in.get<TaskId>(), m.source); break;
      case Op::run: on_run(in); break;
      case Op::stop:
        status_ = in.get<std::int32_t>();
        stop_received_ = true;
        break;
      default: in.fail("a worker cannot handle this operation");
    }
  }
}

void Worker::on_compute(BatchReader& in) {
  auto task = in.get<TaskId>();
  Assigned a;
  a.priority = in.get<std::int32_t>();
  auto ninputs = in.get<std::uint32_t>();
  std::vector<std::pair<TaskId, WorkerId>> holders(ninputs);
  a.inputs.resize(ninputs);
  for (std::uint32_t i = 0; i < ninputs; ++i) {
    holders[i].first = a.inputs[i] = in.get<TaskId>();
    holders[i].second = in.get<WorkerId>();
  }
  std::span<const std::byte> wire = in.bytes();
  std::lock_guard lock(mutex_);
  try {
    a.program = std::make_shared<const UnitProgram>(wire);
  } catch (const std::exception& e) {
    // A unit this rank cannot rebuild (a type another binary has, bad bytes):
    // the task fails with the reason, the worker carries on.
    to_scheduler_.op(Op::erred);
    to_scheduler_.put(task);
    to_scheduler_.string("task " + std::to_string(task));
    to_scheduler_.string(detail::demangle(typeid(e)));
    to_scheduler_.string(std::string("cannot decode it here: ") + e.what());
    drop_waiters(task);
    return;
  }
  // An input this worker was to make but has not got, nor is making, failed
  // here before this task arrived: the scheduler errs the task itself.
  for (auto [input, holder] : holders)
    if (holder == self_ && !store_.contains(input) && !assigned_.contains(input)) return;
  for (auto [input, holder] : holders) {
    auto it = store_.find(input);
    if (it != store_.end()) {
      if (it->second.replica) ++it->second.users;
      continue;
    }
    ++a.missing;
    waiting_for_[input].push_back(task);
    if (holder != self_ && fetching_.insert(input).second) {
      BatchWriter& w = to_rank_[static_cast<int>(holder) + 1];
      w.op(Op::fetch);
      w.put(input);
    }
  }
  auto [it, inserted] = assigned_.insert_or_assign(task, std::move(a));
  if (it->second.missing == 0) make_ready(task, it->second);
}

void Worker::make_ready(TaskId task, Assigned& a) {
  ready_.push(ReadyItem{a.priority, task});
  work_ready_.notify_one();
}

void Worker::on_free(TaskId task) {
  std::lock_guard lock(mutex_);
  if (store_.erase(task) != 0) return;
  auto it = assigned_.find(task);
  if (it == assigned_.end() || it->second.running) return;  // running: its done comes, then a free
  release_replicas(it->second.inputs);
  assigned_.erase(it);
  to_scheduler_.op(Op::released);
  to_scheduler_.put(task);
}

void Worker::on_steal(TaskId task) {
  std::lock_guard lock(mutex_);
  auto it = assigned_.find(task);
  bool given_up = it != assigned_.end() && !it->second.running;
  if (given_up) {
    release_replicas(it->second.inputs);
    assigned_.erase(it);  // a ready_ entry left behind is skipped
  }
  to_scheduler_.op(Op::stolen);
  to_scheduler_.put(task);
  to_scheduler_.put<std::uint8_t>(given_up ? 1 : 0);
}

void Worker::send_value(int dest, TaskId task) {
  std::shared_ptr<const Value> value;
  {
    std::lock_guard lock(mutex_);
    auto it = store_.find(task);
    if (it != store_.end()) value = it->second.value;
  }
  BatchWriter& w = to_rank_[dest];
  if (!value) {
    w.op(Op::missing);
    w.put(task);
    return;
  }
  w.op(Op::data);
  w.put(task);
  w.value(*value, value);
}

void Worker::on_data(TaskId task, Value value) {
  fetching_.erase(task);
  std::lock_guard lock(mutex_);
  Stored s;
  s.nbytes = value.nbytes();
  s.value = std::make_shared<const Value>(std::move(value));
  s.replica = true;
  auto w = waiting_for_.find(task);
  s.users = w == waiting_for_.end() ? 0 : static_cast<std::uint32_t>(w->second.size());
  if (s.users == 0) return;  // its tasks were freed or stolen meanwhile
  store_.insert_or_assign(task, std::move(s));
  satisfy(task);
}

void Worker::on_store(TaskId task, Value value) {
  std::lock_guard lock(mutex_);
  Stored s;
  s.nbytes = value.nbytes();
  s.value = std::make_shared<const Value>(std::move(value));
  store_.insert_or_assign(task, std::move(s));
  satisfy(task);
}

void Worker::on_missing(TaskId task, int holder) {
  fetching_.erase(task);
  std::lock_guard lock(mutex_);
  auto w = waiting_for_.find(task);
  if (w == waiting_for_.end()) return;
  std::vector<TaskId> waiters = std::move(w->second);
  waiting_for_.erase(w);
  for (TaskId t : waiters) {
    auto it = assigned_.find(t);
    if (it == assigned_.end()) continue;
    to_scheduler_.op(Op::erred);
    to_scheduler_.put(t);
    to_scheduler_.string(it->second.program->key().str());
    to_scheduler_.string("weft::RuntimeError");
    to_scheduler_.string("input " + std::to_string(task) + " was not on worker rank " +
                         std::to_string(holder) + " when it was fetched");
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    drop_waiters(t);
  }
}

void Worker::on_run(BatchReader& in) {
  auto request = in.get<std::uint32_t>();
  BatchWriter& w = to_rank_[0];
  w.op(Op::ran);
  w.put(request);
  try {
    UnitProgram program(in.bytes());
    auto result = std::make_shared<Value>(program.run({}));
    w.put<std::uint8_t>(1);
    w.value(*result, result);
  } catch (const TaskError& e) {
    auto [type, message] = describe(e);
    w.put<std::uint8_t>(0);
    w.string(type);
    w.string(message);
  }
}

void Worker::satisfy(TaskId task) {
  auto w = waiting_for_.find(task);
  if (w == waiting_for_.end()) return;
  std::vector<TaskId> waiters = std::move(w->second);
  waiting_for_.erase(w);
  for (TaskId t : waiters) {
    auto it = assigned_.find(t);
    if (it != assigned_.end() && --it->second.missing == 0) make_ready(t, it->second);
  }
}

void Worker::drop_waiters(TaskId task) {
  auto w = waiting_for_.find(task);
  if (w == waiting_for_.end()) return;
  std::vector<TaskId> waiters = std::move(w->second);
  waiting_for_.erase(w);
  for (TaskId t : waiters) {
    auto it = assigned_.find(t);
    if (it == assigned_.end()) continue;
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    drop_waiters(t);
  }
}

void Worker::release_replicas(const std::vector<TaskId>& inputs) {
  for (TaskId input : inputs) {
    auto it = store_.find(input);
    if (it != store_.end() && it->second.replica && --it->second.users == 0) store_.erase(it);
  }
}

bool Worker::flush_outgoing() {
  bool sent = false;
  BatchWriter::Parts to_scheduler;
  {
    std::lock_guard lock(mutex_);
    if (!to_scheduler_.empty()) to_scheduler = to_scheduler_.take();
  }
  if (!to_scheduler.body.empty()) {
    transport_.send(0, kBatchTag, std::move(to_scheduler.body), std::move(to_scheduler.buffers),
                    std::move(to_scheduler.keep_alive));
    sent = true;
  }
  for (auto& [rank, writer] : to_rank_) {
    if (writer.empty()) continue;
    BatchWriter::Parts p = writer.take();
    transport_.send(rank, kBatchTag, std::move(p.body), std::move(p.buffers), std::move(p.keep_alive));
    sent = true;
  }
  return sent;
}

void Worker::compute_loop() {
  std::unique_lock lock(mutex_);
  std::vector<std::shared_ptr<const Value>> held;
  std::vector<const Value*> args;
  while (true) {
    work_ready_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    TaskId task = ready_.top().task;
    ready_.pop();
    auto it = assigned_.find(task);
    if (it == assigned_.end() || it->second.running) continue;  // stolen or freed meanwhile
    Assigned& a = it->second;
    a.running = true;
    held.clear();
    for (TaskId input : a.inputs) held.push_back(store_.at(input).value);
    std::shared_ptr<const UnitProgram> program = a.program;
    lock.unlock();

    args.assign(held.size(), nullptr);
    std::transform(held.begin(), held.end(), args.begin(), [](const auto& v) { return v.get(); });
    Value result;
    std::string failed_key, type, message;
    try {
      result = program->run(args);
    } catch (const TaskError& e) {
      failed_key = e.key();
      std::tie(type, message) = describe(e);
    } catch (const std::exception& e) {  // a malformed unit
      failed_key = program->key().str();
      type = detail::demangle(typeid(e));
      message = e.what();
    }
    held.clear();

    lock.lock();
    it = assigned_.find(task);
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    if (failed_key.empty()) {
      Stored s;
      s.nbytes = result.nbytes();
      s.value = std::make_shared<const Value>(std::move(result));
      to_scheduler_.op(Op::done);
      to_scheduler_.put(task);
      to_scheduler_.put(s.nbytes);
      store_.insert_or_assign(task, std::move(s));
      satisfy(task);
    } else {
      to_scheduler_.op(Op::erred);
      to_scheduler_.put(task);
      to_scheduler_.string(failed_key);
      to_scheduler_.string(type);
      to_scheduler_.string(message);
      drop_waiters(task);
    }
    transport_.wake();
  }
}

}  // namespace weft::dist
