// A worker rank: data store, local readiness, peer-to-peer fetch.
#include "worker.hpp"

#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <optional>
#include <typeinfo>

#include "weft/collective.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft {
namespace detail {
namespace {
thread_local const CollectiveContext* current_collective = nullptr;
}  // namespace
const CollectiveContext* running_collective() noexcept { return current_collective; }
}  // namespace detail

namespace dist {

namespace {

// `text` of rank `root` on every rank of `comm`.
std::string broadcast_text(std::string text, int root, MPI_Comm comm) {
  auto size = static_cast<std::uint64_t>(text.size());
  MPI_Bcast(&size, 1, MPI_UINT64_T, root, comm);
  text.resize(size);
  MPI_Bcast(text.data(), static_cast<int>(size), MPI_CHAR, root, comm);
  return text;
}

// A Value as one byte string: [u64 header size][header][u64 nbuffers]{[u64 size][bytes]}*.
std::vector<std::byte> flatten(const Value& v) {
  Encoded e = encode(v);
  std::vector<std::byte> out;
  auto put = [&](std::uint64_t n) { detail::append_bytes(out, &n, sizeof n); };
  put(e.header.size());
  out.insert(out.end(), e.header.begin(), e.header.end());
  put(e.buffers.size());
  for (std::span<const std::byte> b : e.buffers) {
    put(b.size());
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

Value unflatten(std::span<const std::byte> in) {
  auto take = [&](std::size_t n) {
    if (n > in.size()) throw RuntimeError("bad-message", "a collective step's part is cut short");
    std::span<const std::byte> out = in.first(n);
    in = in.subspan(n);
    return out;
  };
  auto u64 = [&] {
    std::uint64_t n;
    std::memcpy(&n, take(sizeof n).data(), sizeof n);
    return n;
  };
  std::span<const std::byte> header = take(u64());
  std::vector<std::span<const std::byte>> buffers(u64());
  for (auto& b : buffers) b = take(u64());
  return decode(header, buffers);
}

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

Worker::Failure Worker::current_failure(const UnitProgram& program) {
  try {
    throw;
  } catch (const TaskError& e) {
    auto [type, message] = describe(e);
    return {e.key(), std::move(type), std::move(message)};
  } catch (const std::exception& e) {
    return {program.key().str(), detail::demangle(typeid(e)), e.what()};
  }
}

void Worker::report_done(TaskId task, Value result) {
  Stored s;
  s.nbytes = result.nbytes();
  s.value = std::make_shared<const Value>(std::move(result));
  to_scheduler_.op(Op::done);
  to_scheduler_.put(task);
  to_scheduler_.put(s.nbytes);
  store_.insert_or_assign(task, std::move(s));
  satisfy(task);
}

void Worker::report_failure(TaskId task, const Failure& failure) {
  to_scheduler_.op(Op::erred);
  to_scheduler_.put(task);
  to_scheduler_.string(failure.key);
  to_scheduler_.string(failure.type);
  to_scheduler_.string(failure.message);
  drop_waiters(task);
}

Worker::Worker(Transport& transport, unsigned nthreads, MPI_Comm workers, std::map<std::string, double> resources)
    : transport_(transport),
      self_(static_cast<WorkerId>(transport.rank() - 1)),
      workers_(workers),
      resources_(resources),
      available_(std::move(resources)) {
  // The rank's compute threads (and the other ranks on the node) already
  // use its cores: a block's BLAS call runs on its own thread, or OpenBLAS's
  // threads would oversubscribe them (and spin).
  openblas_set_num_threads(1);
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
  hello.put(static_cast<std::uint32_t>(resources_.size()));
  for (const auto& [name, amount] : resources_) {
    hello.string(name);
    hello.put(amount);
  }
  transport_.send(0, kBatchTag, hello.take().body);
  while (!stop_received_) {
    bool busy = transport_.poll(on_message);
    busy |= progress_collective();
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
      case Op::compute: on_compute(in, false); break;
      case Op::collective: on_compute(in, true); break;
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

void Worker::on_compute(BatchReader& in, bool collective) {
  auto task = in.get<TaskId>();
  Assigned a;
  a.collective = collective;
  a.priority = in.get<std::int32_t>();
  auto nneeds = in.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < nneeds; ++i) {
    std::string name = in.string();
    a.needs.emplace_back(std::move(name), in.get<double>());
  }
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
    report_failure(task, {"task " + std::to_string(task), detail::demangle(typeid(e)),
                          std::string("cannot decode it here: ") + e.what()});
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
  if (a.collective) {
    collective_ready_ = task;  // the comm thread runs it (it alone makes MPI calls)
    transport_.wake();
    return;
  }
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
    Failure failure{it->second.program->key().str(), "weft::RuntimeError",
                    "input " + std::to_string(task) + " was not on worker rank " + std::to_string(holder) +
                        " when it was fetched"};
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    report_failure(t, failure);
  }
}

void Worker::on_run(BatchReader& in) {
  auto request = in.get<std::uint32_t>();
  std::span<const std::byte> wire = in.bytes();
  // Settle the outcome before writing: a half-written operation would spoil
  // the whole batch, and an escaping exception would end this comm thread.
  std::shared_ptr<Value> result;
  std::optional<std::pair<std::string, std::string>> error;  // type, message
  try {
    UnitProgram program(wire);
    result = std::make_shared<Value>(program.run({}));
    if (!result->type()->serializable())
      throw TypeError("not-serializable", "the result of '" + program.key().str() + "', a '" +
                                              result->type_name() + "', cannot be sent to rank 0");
  } catch (const TaskError& e) {
    error = describe(e);
  } catch (const std::exception& e) {
    error = {detail::demangle(typeid(e)), e.what()};
  }
  BatchWriter& w = to_rank_[0];
  w.op(Op::ran);
  w.put(request);
  w.put<std::uint8_t>(error ? 0 : 1);
  if (error) {
    w.string(error->first);
    w.string(error->second);
  } else {
    w.value(*result, result);
  }
}

void Worker::run_collective(TaskId task) {
  int rank = 0, size = 1;
  MPI_Comm_rank(workers_, &rank);
  MPI_Comm_size(workers_, &size);
  std::shared_ptr<const UnitProgram> program;
  std::vector<std::shared_ptr<const Value>> held;
  {
    std::lock_guard lock(mutex_);
    Assigned& a = assigned_.at(task);
    program = a.program;
    for (TaskId input : a.inputs) held.push_back(store_.at(input).value);
  }
  std::vector<const Value*> args;
  for (const auto& v : held) args.push_back(v.get());

  // Run this rank's part, and encode it while failures can still be agreed on.
  std::vector<std::byte> part;
  std::optional<Failure> failure;
  CollectiveContext ctx{workers_, rank, size};
  detail::current_collective = &ctx;
  try {
    part = flatten(program->run(args));
  } catch (...) {
    failure = current_failure(*program);
  }
  detail::current_collective = nullptr;
  held.clear();

  // Every rank learns whether any failed (the lowest failing rank's error wins),
  // so none is left waiting in the gather below.
  int mine = failure ? rank : size, first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, workers_);
  Value result;
  if (first < size) {
    Failure own = failure.value_or(Failure{});
    failure = Failure{broadcast_text(own.key, first, workers_), broadcast_text(own.type, first, workers_),
                      broadcast_text(own.message, first, workers_) + " (in the collective step on worker rank " +
                          std::to_string(first + 1) + ")"};
  } else {
    // The parts meet on the first worker, in rank order.
    int count = static_cast<int>(part.size());
    std::vector<int> counts(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
    MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, workers_);
    std::vector<std::byte> all;
    if (rank == 0) {
      for (int r = 1; r < size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
      all.resize(static_cast<std::size_t>(offsets.back() + counts.back()));
    }
    MPI_Gatherv(part.data(), count, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, 0, workers_);
    if (rank == 0) {
      try {
        std::vector<Value> parts;
        for (int r = 0; r < size; ++r)
          parts.push_back(unflatten(std::span(all).subspan(static_cast<std::size_t>(offsets[r]),
                                                           static_cast<std::size_t>(counts[r]))));
        result = program->combine(std::move(parts));
      } catch (...) {
        failure = current_failure(*program);
      }
    }
  }

  std::lock_guard lock(mutex_);
  auto it = assigned_.find(task);
  release_replicas(it->second.inputs);
  assigned_.erase(it);
  if (rank != 0) return;  // the first worker holds the result and answers for all
  if (failure) report_failure(task, *failure);
  else report_done(task, std::move(result));
}

bool Worker::progress_collective() {
  TaskId task;
  {
    std::lock_guard lock(mutex_);
    task = collective_ready_;
  }
  if (task == kNoTask) return false;
  if (collective_barrier_ == MPI_REQUEST_NULL) {
    MPI_Ibarrier(workers_, &collective_barrier_);
    return true;
  }
  int done = 0;
  MPI_Test(&collective_barrier_, &done, MPI_STATUS_IGNORE);
  if (!done) return false;
  {
    std::lock_guard lock(mutex_);
    collective_ready_ = kNoTask;
  }
  run_collective(task);
  return true;
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
    // A constrained task waits while its resources are held by others.
    if (std::any_of(a.needs.begin(), a.needs.end(),
                    [this](const auto& need) { return available_[need.first] < need.second; })) {
      deferred_.push_back(ReadyItem{a.priority, task});
      continue;
    }
    for (const auto& [name, amount] : a.needs) available_[name] -= amount;
    a.running = true;
    held.clear();
    for (TaskId input : a.inputs) held.push_back(store_.at(input).value);
    std::shared_ptr<const UnitProgram> program = a.program;
    lock.unlock();

    args.assign(held.size(), nullptr);
    std::transform(held.begin(), held.end(), args.begin(), [](const auto& v) { return v.get(); });
    Value result;
    std::optional<Failure> failure;
    try {
      result = program->run(args);
    } catch (...) {
      failure = current_failure(*program);
    }
    held.clear();

    lock.lock();
    it = assigned_.find(task);
    if (!it->second.needs.empty()) {
      for (const auto& [name, amount] : it->second.needs) available_[name] += amount;
      for (const ReadyItem& item : deferred_) ready_.push(item);
      deferred_.clear();
      work_ready_.notify_all();
    }
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    if (failure) report_failure(task, *failure);
    else report_done(task, std::move(result));
    transport_.wake();
  }
}

}  // namespace dist
}  // namespace weft
