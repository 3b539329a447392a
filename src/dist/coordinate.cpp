// Coordination calls: routing to the CoordinationState, the in-process
// driver, rank 0's and the workers' ends, and fire_and_forget.
#include "coordinate.hpp"

#include <atomic>
#include <thread>

#include "client_impl.hpp"
#include "weft/coordination.hpp"
#include "worker.hpp"

namespace weft {

namespace dist {

namespace {
std::atomic<Worker*> serving_worker{nullptr};

// The answer `reply` as it can travel to `rank`: a value that cannot be
// encoded (a dataset holding a Future) becomes a TypeError for the caller.
CoordReply sendable(CoordReply reply, int rank, const std::string& name) {
  if (reply.status != CoordReply::Status::ok || !reply.value.has_value() || reply.value.type()->serializable())
    return reply;
  return failed_coord_reply(reply.caller,
                            TypeError("not-serializable", "'" + name + "' holds a '" + reply.value.type_name() +
                                                              "', which cannot be sent to worker rank " +
                                                              std::to_string(rank) +
                                                              " (a Future: pass it to the task as an argument)"));
}
}  // namespace

void set_serving_worker(Worker* worker) noexcept { serving_worker.store(worker); }

void throw_on_comm_thread(int rank) {
  throw RuntimeError("coordination-on-comm-thread",
                     "a Lock, Semaphore, Queue, Variable, Event or dataset call was made on rank " +
                         std::to_string(rank) +
                         "'s comm thread (a Client::run function, a collective step or a callback), "
                         "which delivers the answers: it would wait for ever");
}

void LocalCoordinator::collect() {
  state_.take_replies(scratch_);
  for (CoordReply& r : scratch_) answers_.emplace(r.caller.request, std::move(r));
  if (!scratch_.empty()) answered_.notify_all();
}

std::optional<Value> LocalCoordinator::call(detail::CoordRequest request) {
  std::unique_lock lock(mutex_);
  const std::uint64_t id = next_request_++;
  state_.handle(CoordCaller{0, id}, std::move(request), CoordClock::now());
  collect();
  while (true) {
    if (auto it = answers_.find(id); it != answers_.end()) {
      CoordReply reply = std::move(it->second);
      answers_.erase(it);
      lock.unlock();
      return open_coord_reply(std::move(reply));
    }
    // Whoever wakes first at the earliest deadline answers its waiters.
    CoordinationState::TimePoint deadline = state_.next_deadline();
    if (deadline == CoordinationState::TimePoint::max()) answered_.wait(lock);
    else answered_.wait_until(lock, deadline);
    state_.expire(CoordClock::now());
    collect();
  }
}

// --- a worker rank: tasks' calls travel to rank 0 ---------------------------

std::optional<Value> Worker::coordinate(detail::CoordRequest request) {
  if (std::this_thread::get_id() == comm_thread_) throw_on_comm_thread(transport_.rank());
  if (request.value.has_value() && !request.value.type()->serializable())
    throw TypeError("not-serializable", "a '" + request.value.type_name() + "' cannot be sent to rank 0 for '" +
                                            request.name + "'");
  std::unique_lock lock(mutex_);
  const std::uint64_t id = next_coord_request_++;
  write_coord_request(to_scheduler_, id, std::move(request));
  transport_.wake();
  coord_answered_.wait(lock, [&] { return coord_answers_.contains(id) || stopping_; });
  auto it = coord_answers_.find(id);
  if (it == coord_answers_.end())
    throw RuntimeError("terminated", "worker rank " + std::to_string(transport_.rank()) +
                                         " is stopping: a coordination call is abandoned");
  CoordReply reply = std::move(it->second);
  coord_answers_.erase(it);
  lock.unlock();
  return open_coord_reply(std::move(reply));
}

void Worker::on_coord_reply(CoordReply reply) {
  std::lock_guard lock(mutex_);
  coord_answers_.emplace(reply.caller.request, std::move(reply));
  coord_answered_.notify_all();
}

}  // namespace dist

// --- rank 0 ---------------------------------------------------------------

namespace detail {

std::optional<Value> ClientImpl::coordinate(CoordRequest request) {
  if (!distributed()) return local_coordination_.call(std::move(request));
  if (std::this_thread::get_id() == comm_thread_.get_id()) dist::throw_on_comm_thread(0);
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    id = next_coord_request_++;
    Request r(Request::Kind::call);
    // std::function needs a copyable callable; the request holds a Value.
    r.call = [this, id, shared = std::make_shared<CoordRequest>(std::move(request))] {
      coord_handle(0, id, std::move(*shared));
    };
    post(std::move(r));
  }
  wait_until([&] { return coord_answers_.contains(id); });
  dist::CoordReply reply;
  {
    std::lock_guard lock(mutex_);
    auto it = coord_answers_.find(id);
    reply = std::move(it->second);
    coord_answers_.erase(it);
  }
  return dist::open_coord_reply(std::move(reply));
}

void ClientImpl::coord_handle(int rank, std::uint64_t request_id, CoordRequest request) {
  const dist::CoordCaller caller{rank, request_id};
  std::string name = request.name;
  try {
    coordination_.handle(caller, std::move(request), dist::CoordClock::now());
  } catch (const Error& e) {
    coord_deliver(dist::failed_coord_reply(caller, e), name);
  }
  coord_route(name);
}

bool ClientImpl::coord_expire() {
  if (coordination_.next_deadline() > dist::CoordClock::now()) return false;
  coordination_.expire(dist::CoordClock::now());
  coord_route({});  // timeouts carry no value
  return true;
}

void ClientImpl::coord_route(const std::string& name) {
  coordination_.take_replies(coord_replies_);
  for (dist::CoordReply& r : coord_replies_) coord_deliver(std::move(r), name);
  coord_replies_.clear();
}

void ClientImpl::coord_deliver(dist::CoordReply reply, const std::string& name) {
  const int rank = reply.caller.rank;
  if (rank == 0) {
    std::lock_guard lock(mutex_);
    coord_answers_.emplace(reply.caller.request, std::move(reply));
    changed_.notify_all();
    return;
  }
  dist::write_coord_reply(to_worker(static_cast<dist::WorkerId>(rank - 1)), dist::sendable(std::move(reply), rank, name));
}

void ClientImpl::fire_and_forget(FutureStatePtr state) {
  // Local jobs run to the end whoever holds their futures.
  if (!distributed()) return;
  std::lock_guard lock(mutex_);
  Request r(Request::Kind::call);
  r.call = [this, state = std::move(state)] {
    dist::TaskId id;
    {
      std::lock_guard inner(mutex_);
      id = state->id;
    }
    // Cancelled (no id), or already forgotten: nothing is left to run.
    if (id == dist::kNoTask || state_->state(id) == dist::TaskState::forgotten) return;
    // The scheduler's own reference, dropped when the task is reported done.
    state_->want(id);
    fire_and_forget_.insert(id);
  };
  post(std::move(r));
}

void ClientImpl::release_fired(std::span<const dist::Instruction> reports) {
  std::vector<dist::TaskId> finished;
  for (const dist::Instruction& ins : reports) {
    if (ins.kind != dist::Instruction::Kind::report || fire_and_forget_.erase(ins.task) == 0) continue;
    // A cancelled task's references went with it.
    if (ins.state == dist::TaskState::memory || ins.state == dist::TaskState::erred) finished.push_back(ins.task);
  }
  for (dist::TaskId t : finished) state_->release(t);
}

}  // namespace detail

void fire_and_forget(const FutureBase& future) { future.state()->client->fire_and_forget(future.state()); }

void unpublish_dataset(const std::string& name) {
  detail::CoordRequest r;
  r.op = detail::CoordOp::dataset_unpublish;
  r.name = name;
  detail::coordinate(std::move(r));
}

std::vector<std::string> list_datasets() {
  detail::CoordRequest r;
  r.op = detail::CoordOp::dataset_list;
  return detail::coordinate(std::move(r))->take<std::vector<std::string>>();
}

namespace detail {

std::optional<Value> coordinate(CoordRequest request) {
  if (dist::Worker* w = dist::serving_worker.load()) return w->coordinate(std::move(request));
  if (ClientImpl* c = active_client()) return c->coordinate(std::move(request));
  // Tasks on a local scheduler without weft::main or weft::init.
  static dist::LocalCoordinator process_wide;
  return process_wide.call(std::move(request));
}

std::uint64_t new_coordination_owner() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

std::optional<double> timeout_seconds(const Timeout& timeout) {
  if (!timeout) return std::nullopt;
  if (timeout->count() < 0)
    throw ValueError("bad-timeout", "a timeout of " + std::to_string(timeout->count()) + " s: it must not be negative");
  return timeout->count();
}

}  // namespace detail
}  // namespace weft
