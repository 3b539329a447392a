// A worker rank: data store, local readiness, peer-to-peer fetch.
#include "worker.hpp"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <typeinfo>

#include "coordinate.hpp"
#include "runtime_signals.hpp"
#include "weft/collective.hpp"
#include "weft/detail/demangle.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft {
namespace detail {
namespace {
thread_local const CollectiveContext* current_collective = nullptr;
thread_local std::span<const int> current_owners;
}  // namespace
const CollectiveContext* running_collective() noexcept { return current_collective; }
std::span<const int> running_owners() noexcept { return current_owners; }
}  // namespace detail

namespace dist {

namespace {

std::atomic<bool> rank0_signal_read{false};  // the comm loop read kStopSignalTag
// The transport's communicator while this thread (the comm thread) runs a
// collective step, else MPI_COMM_NULL: where rank0_stopped probes.
thread_local MPI_Comm collective_transport_comm = MPI_COMM_NULL;

}  // namespace

bool rank0_stopped() noexcept {
  if (rank0_signal_read) return true;
  if (collective_transport_comm == MPI_COMM_NULL) return false;
  // Probed, not received: the comm loop reads it after the step. Twice:
  // Open MPI's MPI_Iprobe (ob1) matches only what it has already taken in
  // and progresses after a miss, so a first probe misses a message still in
  // the shared-memory queue (io_interrupted.sh saw a write kept whole after
  // rank 0's SIGTERM, about once in three runs, when no other MPI call had
  // run on this rank since the message came).
  int arrived = 0;
  for (int probe = 0; probe < 2 && arrived == 0; ++probe)
    MPI_Iprobe(0, kStopSignalTag, collective_transport_comm, &arrived, MPI_STATUS_IGNORE);
  return arrived != 0;
}

namespace {

// `text` of rank `root` on every rank of `comm`.
std::string broadcast_text(std::string text, int root, MPI_Comm comm) {
  auto size = static_cast<std::uint64_t>(text.size());
  MPI_Bcast(&size, 1, MPI_UINT64_T, root, comm);
  text.resize(size);
  MPI_Bcast(text.data(), static_cast<int>(size), MPI_CHAR, root, comm);
  return text;
}

std::string processor_name() {
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(host, &length);
  return std::string(host, static_cast<std::size_t>(length));
}

// Spill files go to <local-directory>/weft-worker-<rank>-<pid>/, from the
// target fraction of the memory limit on.
DataStore::Options store_options(const WorkerOptions& options, int rank, const std::string& host) {
  DataStore::Options o;
  o.directory = std::filesystem::path(options.local_directory) /
                ("weft-worker-" + std::to_string(rank) + "-" + std::to_string(getpid()));
  const double target = config::get<double>("distributed.worker.memory.target");
  if (options.memory_limit != 0 && target > 0)
    o.target_bytes = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(target * static_cast<double>(options.memory_limit)));
  o.owner = "worker rank " + std::to_string(rank) + " (" + host + ")";
  return o;
}

// What a worker plugin's setup is told about this worker.
WorkerContext plugin_context(const WorkerOptions& options, WorkerId self, const std::string& host) {
  WorkerContext c;
  c.rank = static_cast<int>(self) + 1;
  c.host = host;
  c.name = worker_name(options, self);
  c.nthreads = std::max(1u, options.nthreads);
  c.memory_limit = options.memory_limit;
  c.local_directory = options.local_directory;
  c.resources = options.resources;
  return c;
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
  const std::uint64_t nbytes = store_.put(task, std::move(result));
  to_scheduler_.op(Op::done);
  to_scheduler_.put(task);
  to_scheduler_.put(nbytes);
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

Worker::Worker(Transport& transport, MPI_Comm workers, const WorkerOptions& options)
    : transport_(transport),
      self_(static_cast<WorkerId>(transport.rank() - 1)),
      workers_(workers),
      host_(processor_name()),
      store_(store_options(options, static_cast<int>(self_) + 1, host_)),
      resources_(options.resources),
      available_(options.resources),
      lifetime_seconds_(options.lifetime_seconds),
      plugins_(plugin_context(options, self_, host_), false) {
  if (auto shared = shared_file_system(options.local_directory))
    std::fprintf(stderr,
                 "weft: warning: worker rank %d (%s): the local directory %s is on a shared file system (%s); "
                 "spilled results will load the file server: give --local-directory a node-local folder\n",
                 static_cast<int>(self_) + 1, host_.c_str(), options.local_directory.c_str(), shared->c_str());
  // The rank's compute threads (and the other ranks on the node) already
  // use its cores: a block's BLAS call runs on its own thread, or OpenBLAS's
  // threads would oversubscribe them (and spin).
  openblas_set_num_threads(1);
  threads_.reserve(options.nthreads);
  for (unsigned i = 0; i < std::max(1u, options.nthreads); ++i) threads_.emplace_back([this] { compute_loop(); });
  nanny_.emplace(static_cast<NannyHost&>(*this), NannyOptions::from_config(options.memory_limit));
  set_serving_worker(this);
  set_serving_plugins(&plugins_);
}

Worker::~Worker() {
  set_serving_worker(nullptr);
  set_serving_plugins(nullptr);
  nanny_.reset();
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
    busy |= progress_drain();
    busy |= plugins_.deliver();
    busy |= flush_outgoing();
    transport_.idle(busy);
  }
  nanny_.reset();
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    work_ready_.notify_all();
    coord_answered_.notify_all();  // tasks waiting for rank 0 give up
    // A task that never returns (hung) must not keep the job from ending.
    // After a drain its grace has been given already.
    const auto deadline = drain_deadline_.value_or(
        std::chrono::steady_clock::now() +
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(config::get_seconds("distributed.worker.stop-grace"))));
    abandoned_ = !work_ready_.wait_until(lock, deadline, [this] { return executing_ == 0; });
  }
  if (abandoned_) {
    std::fprintf(stderr, "weft: worker rank %d (%s): %u tasks still running after distributed.worker.%s; "
                 "exiting without them\n", static_cast<int>(self_) + 1, host_.c_str(), executing_,
                 drain_deadline_ ? "lifetime-grace" : "stop-grace");
    store_.remove_files();  // the process leaves without destroying this worker
  } else {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }
  // The plugins hear the last transitions, then are torn down (also when
  // tasks were abandoned: what a teardown flushes must not be lost).
  plugins_.deliver();
  plugins_.teardown_all();
  flush_outgoing();
  transport_.flush(on_message);
  return status_;
}

void Worker::handle(InMessage& m) {
  if (m.tag == kStopSignalTag) {
    rank0_signal_read = true;
    return;
  }
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
      case Op::acquire: {
        auto task = in.get<TaskId>();
        on_acquire(task, in.get<WorkerId>());
        break;
      }
      case Op::run: on_run(in); break;
      case Op::plugin: on_plugin(in); break;
      case Op::coord_reply: on_coord_reply(read_coord_reply(in)); break;
      case Op::drain: on_drain(in.get<double>()); break;
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
  // The values of the unit's constant tasks. One this rank cannot rebuild
  // fails the unit below; a malformed message (RuntimeError) ends the batch.
  auto nattached = in.get<std::uint32_t>();
  std::vector<Value> attached;
  std::exception_ptr undecodable;
  for (std::uint32_t i = 0; i < nattached; ++i) {
    try {
      attached.push_back(in.value());
    } catch (const RuntimeError&) {
      throw;
    } catch (const Error&) {
      if (!undecodable) undecodable = std::current_exception();
      attached.emplace_back();
    }
  }
  std::lock_guard lock(mutex_);
  try {
    if (undecodable) std::rethrow_exception(undecodable);
    a.program = std::make_shared<const UnitProgram>(wire, attached);
  } catch (const std::exception& e) {
    // A unit this rank cannot rebuild (a type another binary has, bad bytes):
    // the task fails with the reason, the worker carries on.
    report_failure(task, {"task " + std::to_string(task), detail::demangle(typeid(e)),
                          std::string("cannot decode it here: ") + e.what()});
    return;
  }
  if (collective) {
    // A partitioned step's parts: each is read only by its holder (its
    // owner); the others see a null input and never fetch it.
    const std::size_t nparts = a.program->partitioned_inputs();
    a.owners.resize(nparts);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < holders.size(); ++i) {
      if (i < nparts) a.owners[i] = static_cast<int>(holders[i].second);
      if (i < nparts && holders[i].second != self_) a.inputs[i] = kNoTask;
      else holders[kept++] = holders[i];
    }
    holders.resize(kept);
  }
  // An input this worker was to make but has not got, nor is making, failed
  // here before this task arrived: the scheduler errs the task itself.
  for (auto [input, holder] : holders)
    if (holder == self_ && !store_.contains(input) && !assigned_.contains(input)) return;
  for (auto [input, holder] : holders) {
    if (store_.contains(input)) {
      if (auto r = replica_users_.find(input); r != replica_users_.end()) ++r->second;
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
  plugins_.record(task, it->second.program->key(), WorkerTaskState::released, WorkerTaskState::waiting);
  if (it->second.missing == 0) make_ready(task, it->second);
}

void Worker::make_ready(TaskId task, Assigned& a) {
  plugins_.record(task, a.program->key(), WorkerTaskState::waiting, WorkerTaskState::ready);
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
  if (store_.erase(task)) {
    plugins_.record_released(task);
    return;
  }
  auto it = assigned_.find(task);
  if (it == assigned_.end() || it->second.running) return;  // running: its done comes, then a free
  release_replicas(it->second.inputs);
  record_dropped(task, it->second);
  assigned_.erase(it);
  to_scheduler_.op(Op::released);
  to_scheduler_.put(task);
}

void Worker::record_dropped(TaskId task, const Assigned& a) {
  plugins_.record(task, a.program->key(), a.missing == 0 ? WorkerTaskState::ready : WorkerTaskState::waiting,
                  WorkerTaskState::released);
}

void Worker::on_steal(TaskId task) {
  std::lock_guard lock(mutex_);
  auto it = assigned_.find(task);
  bool given_up = it != assigned_.end() && !it->second.running;
  if (given_up) {
    release_replicas(it->second.inputs);
    record_dropped(task, it->second);
    assigned_.erase(it);  // a ready_ entry left behind is skipped
  }
  to_scheduler_.op(Op::stolen);
  to_scheduler_.put(task);
  to_scheduler_.put<std::uint8_t>(given_up ? 1 : 0);
}

void Worker::send_value(int dest, TaskId task) {
  std::shared_ptr<const Value> value;
  try {
    value = store_.get(task);  // reads a spilled value back
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft: worker rank %d (%s): %s\n", static_cast<int>(self_) + 1, host_.c_str(), e.what());
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
  std::lock_guard lock(mutex_);
  fetching_.erase(task);
  const bool keep = acquiring_.erase(task) > 0;
  auto w = waiting_for_.find(task);
  const bool waited = w != waiting_for_.end() && !w->second.empty();
  if (!keep && !waited) return;  // its tasks were freed or stolen meanwhile
  if (!keep) replica_users_[task] = static_cast<std::uint32_t>(w->second.size());
  store_.put(task, std::move(value));
  if (keep) report_acquired(task, true);
  if (waited) satisfy(task);
}

void Worker::on_acquire(TaskId task, WorkerId holder) {
  std::lock_guard lock(mutex_);
  if (store_.contains(task)) {  // fetched as an input already: kept from now on
    replica_users_.erase(task);
    report_acquired(task, true);
    return;
  }
  // A second acquire of a task names another holder: the first was removed
  // and may never answer. One acquired answers both.
  const bool retry = !acquiring_.insert(task).second;
  if (fetching_.insert(task).second || retry) {
    BatchWriter& w = to_rank_[static_cast<int>(holder) + 1];
    w.op(Op::fetch);
    w.put(task);
  }
}

void Worker::report_acquired(TaskId task, bool ok) {
  to_scheduler_.op(Op::acquired);
  to_scheduler_.put(task);
  to_scheduler_.put<std::uint8_t>(ok ? 1 : 0);
}

void Worker::on_store(TaskId task, Value value) {
  std::lock_guard lock(mutex_);
  store_.put(task, std::move(value));
  satisfy(task);
}

void Worker::on_missing(TaskId task, int holder) {
  std::lock_guard lock(mutex_);
  fetching_.erase(task);
  if (acquiring_.erase(task) > 0) report_acquired(task, false);
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
    plugins_.record(t, it->second.program->key(), WorkerTaskState::waiting, WorkerTaskState::error);
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    report_failure(t, failure);
  }
}

void Worker::on_run(BatchReader& in) {
  auto request = in.get<std::uint32_t>();
  std::span<const std::byte> wire = in.bytes();
  plugins_.deliver();  // fn may read plugins: they have heard everything before it
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
  answer_run(request, std::move(result), error);
}

void Worker::on_plugin(BatchReader& in) {
  auto request = in.get<std::uint32_t>();
  std::string name = in.string();
  std::span<const std::byte> wire = in.bytes();
  plugins_.deliver();  // a plugin being replaced hears what happened before
  std::shared_ptr<Value> result;
  std::optional<std::pair<std::string, std::string>> error;  // id, text
  try {
    if (wire.empty()) {
      result = std::make_shared<Value>(Value::of(plugins_.remove(name)));
    } else {
      plugins_.install(name, [&] { return UnitProgram(wire).run({}); });
      result = std::make_shared<Value>(Value::of(true));
    }
  } catch (const Error& e) {
    error = {e.id(), e.text()};
  }
  answer_run(request, std::move(result), error);
}

void Worker::answer_run(std::uint32_t request, std::shared_ptr<Value> result,
                        const std::optional<std::pair<std::string, std::string>>& error) {
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
  std::vector<TaskId> inputs;
  std::vector<int> owners;
  {
    std::lock_guard lock(mutex_);
    Assigned& a = assigned_.at(task);
    program = a.program;
    inputs = a.inputs;
    plugins_.record(task, program->key(), WorkerTaskState::ready, WorkerTaskState::executing);
    owners = a.owners;
  }
  std::vector<std::shared_ptr<const Value>> held;

  // Run this rank's part, and encode it while failures can still be agreed on.
  std::vector<std::byte> part;
  std::optional<Failure> failure;
  CollectiveContext ctx{workers_, rank, size};
  detail::current_collective = &ctx;
  detail::current_owners = owners;
  collective_transport_comm = transport_.comm();
  try {
    part = flatten(program->run(read_inputs(inputs, held)));
  } catch (...) {
    failure = current_failure(*program);
  }
  detail::current_collective = nullptr;
  detail::current_owners = {};
  collective_transport_comm = MPI_COMM_NULL;
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
                                                           static_cast<std::size_t>(counts[r])), "a collective step's part"));
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
  // The first worker holds the result and answers for all; the others' parts went to it.
  plugins_.record(task, program->key(), WorkerTaskState::executing,
                  rank != 0 ? WorkerTaskState::released : failure ? WorkerTaskState::error : WorkerTaskState::memory);
  if (rank != 0) return;
  if (failure) report_failure(task, *failure);
  else report_done(task, std::move(result));
}

bool Worker::progress_collective() {
  TaskId task;
  bool draining;
  {
    std::lock_guard lock(mutex_);
    task = collective_ready_;
    draining = draining_;
  }
  if (task == kNoTask) return false;
  if (collective_barrier_ == MPI_REQUEST_NULL) {
    if (draining) return false;  // a step not entered yet does not start
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

bool Worker::progress_drain() {
  const auto now = std::chrono::steady_clock::now();
  const int rank = static_cast<int>(self_) + 1;
  if (!drain_asked_) {
    std::int32_t status = 0;
    std::string reason;
    if (const int sig = stop_signal(); sig != 0) {
      status = 128 + sig;
      reason = signal_name(sig) + " on worker rank " + std::to_string(rank);
    } else if (lifetime_seconds_ &&
               std::chrono::duration<double>(now - started_).count() >= *lifetime_seconds_) {
      status = kLifetimeStatus;
      char text[128];
      std::snprintf(text, sizeof text, "worker rank %d reached its lifetime (%gs)", rank, *lifetime_seconds_);
      reason = text;
    }
    if (status != 0) {
      drain_asked_ = true;
      std::lock_guard lock(mutex_);
      to_scheduler_.op(Op::drain);
      to_scheduler_.put(status);
      to_scheduler_.string(reason);
      return true;
    }
  }
  if (!drain_deadline_ || drained_sent_) return false;
  std::lock_guard lock(mutex_);
  if (executing_ != 0 && now < *drain_deadline_) return false;
  drained_sent_ = true;
  to_scheduler_.op(Op::drained);
  to_scheduler_.put<std::uint32_t>(executing_);
  return true;
}

void Worker::on_drain(double grace_seconds) {
  drain_deadline_ = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(grace_seconds));
  std::lock_guard lock(mutex_);
  draining_ = true;
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
    plugins_.record(t, it->second.program->key(), WorkerTaskState::waiting, WorkerTaskState::released);
    assigned_.erase(it);
    drop_waiters(t);
  }
}

void Worker::release_replicas(const std::vector<TaskId>& inputs) {
  for (TaskId input : inputs) {
    auto it = replica_users_.find(input);
    if (it == replica_users_.end() || --it->second != 0) continue;
    replica_users_.erase(it);
    store_.erase(input);
  }
}

std::vector<const Value*> Worker::read_inputs(const std::vector<TaskId>& inputs,
                                              std::vector<std::shared_ptr<const Value>>& held) {
  held.clear();
  for (TaskId input : inputs) {
    if (input == kNoTask) {  // a part of a partitioned collective step held by another worker
      held.emplace_back();
      continue;
    }
    held.push_back(store_.get(input));  // a spilled input is read back
    if (!held.back())
      throw RuntimeError("lost", "input " + std::to_string(input) + " is not in the store of worker rank " +
                                     std::to_string(static_cast<int>(self_) + 1));
  }
  std::vector<const Value*> args(held.size());
  std::transform(held.begin(), held.end(), args.begin(), [](const auto& v) { return v.get(); });
  return args;
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

void Worker::offer(detail::SharedParts& parts) {
  help_board_.open(parts);
  // A compute thread that found the board empty under mutex_ is asleep by
  // now, or it sees the offer: taking mutex_ orders the open before its check.
  { std::lock_guard lock(mutex_); }
  work_ready_.notify_all();
}

void Worker::compute_loop() {
  detail::HelpSourceScope help(this);
  std::unique_lock lock(mutex_);
  std::vector<std::shared_ptr<const Value>> held;
  std::vector<TaskId> inputs;
  auto can_start = [this] { return !paused_ && !draining_ && !ready_.empty(); };
  while (true) {
    if (!stopping_ && !can_start()) {
      idle_threads_.fetch_add(1, std::memory_order_relaxed);
      work_ready_.wait(lock, [&] { return stopping_ || can_start() || help_board_.has_unclaimed(); });
      idle_threads_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (stopping_) return;
    if (!can_start()) {
      // Woken by an offer: help a running task (outside mutex_, which its
      // thread may need meanwhile).
      lock.unlock();
      help_board_.help_one();
      lock.lock();
      continue;
    }
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
    plugins_.record(task, a.program->key(), WorkerTaskState::ready, WorkerTaskState::executing);
    if (executing_++ == 0) last_progress_ = std::chrono::steady_clock::now();
    inputs = a.inputs;
    std::shared_ptr<const UnitProgram> program = a.program;
    lock.unlock();

    Value result;
    std::optional<Failure> failure;
    try {
      result = program->run(read_inputs(inputs, held));
    } catch (...) {
      failure = current_failure(*program);
    }
    held.clear();

    lock.lock();
    if (--executing_ == 0 && stopping_) work_ready_.notify_all();  // serve() waits for it
    last_progress_ = std::chrono::steady_clock::now();
    it = assigned_.find(task);
    if (!it->second.needs.empty()) {
      for (const auto& [name, amount] : it->second.needs) available_[name] += amount;
      for (const ReadyItem& item : deferred_) ready_.push(item);
      deferred_.clear();
      work_ready_.notify_all();
    }
    release_replicas(it->second.inputs);
    assigned_.erase(it);
    plugins_.record(task, program->key(), WorkerTaskState::executing,
                    failure ? WorkerTaskState::error : WorkerTaskState::memory);
    if (failure) report_failure(task, *failure);
    else report_done(task, std::move(result));
    transport_.wake();
    lock.unlock();
    store_.spill_to_target();  // file writes outside mutex_
    lock.lock();
  }
}

WorkerMetrics Worker::metrics() {
  std::lock_guard lock(mutex_);
  WorkerMetrics m;
  const DataStore::Stats stored = store_.stats();
  m.managed_bytes = stored.managed_bytes;
  m.spilled_bytes = stored.spilled_bytes;
  m.spilled_bytes_total = stored.spilled_bytes_total;
  m.spilled_count = stored.spilled_count;
  m.executing = executing_;
  m.ready = static_cast<std::uint32_t>(ready_.size() + deferred_.size());
  m.in_flight = static_cast<std::uint32_t>(fetching_.size());
  return m;
}

bool Worker::hung(double ttl) {
  std::lock_guard lock(mutex_);
  return executing_ > 0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - last_progress_).count() > ttl;
}

void Worker::send_heartbeat(const WorkerMetrics& m) {
  {
    std::lock_guard lock(mutex_);
    to_scheduler_.op(Op::heartbeat);
    write_heartbeat(to_scheduler_, m);
  }
  transport_.wake();
}

bool Worker::spill_one() { return store_.spill_one(); }

void Worker::set_paused(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused || terminated_;
  }
  if (!paused) work_ready_.notify_all();
}

void Worker::terminate(std::uint64_t rss, std::uint64_t limit) {
  {
    std::lock_guard lock(mutex_);
    terminated_ = paused_ = true;
    MemoryExceeded e{rss, limit, host_, store_.largest(5)};
    to_scheduler_.op(Op::terminating);
    write_terminating(to_scheduler_, e);
  }
  transport_.wake();
}

}  // namespace dist
}  // namespace weft
