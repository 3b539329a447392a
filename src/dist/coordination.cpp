// CoordinationState: named coordination objects as a state machine.
#include "coordination.hpp"

#include <algorithm>

namespace weft::dist {

using detail::CoordOp;
using detail::CoordRequest;

namespace {

std::string quoted(const std::string& kind, const std::string& name) { return kind + " '" + name + "'"; }

}  // namespace

void CoordinationState::answer(const CoordCaller& caller, Value value) {
  replies_.push_back(CoordReply{caller, CoordReply::Status::ok, std::move(value), {}, {}, false, {}});
}

void CoordinationState::park(Waiters& list, const CoordCaller& caller, const CoordRequest& request, TimePoint now,
                             Value value) {
  if (request.timeout && *request.timeout <= 0) {
    replies_.push_back(CoordReply{caller, CoordReply::Status::timed_out, {}, {}, {}, false, {}});
    return;
  }
  TimePoint deadline = TimePoint::max();
  if (request.timeout) {
    auto wait = std::chrono::duration_cast<CoordClock::duration>(std::chrono::duration<double>(*request.timeout));
    // A timeout too long to add is no timeout.
    if (wait < TimePoint::max() - now) deadline = now + wait;
  }
  const bool batch = request.op == CoordOp::queue_get_batch;
  list.push_back(Waiter{caller, deadline, request.owner, std::move(value), batch ? request.count : 1, batch});
  if (deadline == TimePoint::max()) ++without_deadline_;
  else deadlines_.emplace(deadline, caller, &list);
}

CoordinationState::Waiter CoordinationState::unpark_front(Waiters& list) {
  Waiter w = std::move(list.front());
  list.pop_front();
  if (w.deadline == TimePoint::max()) --without_deadline_;
  else deadlines_.erase({w.deadline, w.caller, &list});
  return w;
}

void CoordinationState::expire(TimePoint now) {
  while (!deadlines_.empty() && std::get<0>(*deadlines_.begin()) <= now) {
    auto [deadline, caller, list] = *deadlines_.begin();
    deadlines_.erase(deadlines_.begin());
    list->erase(std::find_if(list->begin(), list->end(), [&](const Waiter& w) { return w.caller == caller; }));
    replies_.push_back(CoordReply{caller, CoordReply::Status::timed_out, {}, {}, {}, false, {}});
    // Leaving unblocks nobody, as a list holds waiters only while its object
    // is full (leases, queue puts) or empty (unset variables and events) ...
    // except a queue's getters: the next may want fewer items than the one that left.
    for (auto& [name, q] : queues_)
      if (&q.getters == list) serve_queue(q);
  }
}

void CoordinationState::remove_rank(int rank) {
  auto drop = [&](Waiters& list) {
    for (auto w = list.begin(); w != list.end();) {
      if (w->caller.rank != rank) {
        ++w;
        continue;
      }
      if (w->deadline == TimePoint::max()) --without_deadline_;
      else deadlines_.erase({w->deadline, w->caller, &list});
      w = list.erase(w);
    }
  };
  for (auto* objects : {&locks_, &semaphores_}) {
    for (auto& [name, l] : *objects) {
      drop(l.waiting);
      for (auto h = l.by_holder.begin(); h != l.by_holder.end();) {
        if (h->first.first == rank) {
          l.held -= h->second;
          h = l.by_holder.erase(h);
        } else {
          ++h;
        }
      }
      grant_waiters(l);
    }
  }
  for (auto& [name, q] : queues_) {
    drop(q.getters);
    drop(q.putters);
    serve_queue(q);
  }
  for (auto& [name, v] : variables_) drop(v.getters);
  for (auto& [name, e] : events_) drop(e.waiting);
}

CoordinationState::TimePoint CoordinationState::next_deadline() const noexcept {
  return deadlines_.empty() ? TimePoint::max() : std::get<0>(*deadlines_.begin());
}

void CoordinationState::take_replies(std::vector<CoordReply>& out) {
  out.clear();
  out.swap(replies_);
}

CoordinationState::Leases& CoordinationState::leases(const CoordRequest& request) {
  const bool lock = request.op == CoordOp::lock_acquire || request.op == CoordOp::lock_release ||
                    request.op == CoordOp::lock_locked;
  auto& objects = lock ? locks_ : semaphores_;
  auto it = objects.find(request.name);
  if (it == objects.end()) {
    it = objects.emplace(request.name, Leases{}).first;
    it->second.max_leases = lock ? 1 : request.limit;
  } else if (!lock && it->second.max_leases != request.limit) {
    throw ValueError("semaphore-max-leases",
                     quoted("Semaphore", request.name) + " has max_leases " + std::to_string(it->second.max_leases) +
                         "; an object with max_leases " + std::to_string(request.limit) +
                         " used the same name (inconsistent max leases)");
  }
  return it->second;
}

void CoordinationState::acquire(Leases& l, const CoordCaller& caller, const CoordRequest& request, TimePoint now) {
  // Earlier waiters go first: a free lease with waiters is already theirs.
  if (l.held < l.max_leases && l.waiting.empty()) {
    ++l.held;
    ++l.by_holder[{caller.rank, request.owner}];
    answer(caller);
    return;
  }
  park(l.waiting, caller, request, now);
}

void CoordinationState::release(Leases& l, const CoordCaller& caller, const CoordRequest& request) {
  auto it = l.by_holder.find({caller.rank, request.owner});
  if (it == l.by_holder.end()) {
    const bool lock = request.op == CoordOp::lock_release;
    throw RuntimeError("released-too-often", quoted(lock ? "Lock" : "Semaphore", request.name) +
                                                 " was released by an object that holds " +
                                                 (lock ? "no lock" : "no lease") + " on it (released too often)");
  }
  if (--it->second == 0) l.by_holder.erase(it);
  --l.held;
  answer(caller);
  grant_waiters(l);
}

void CoordinationState::grant_waiters(Leases& l) {
  while (l.held < l.max_leases && !l.waiting.empty()) {
    Waiter w = unpark_front(l.waiting);
    ++l.held;
    ++l.by_holder[{w.caller.rank, w.owner}];
    answer(w.caller);
  }
}

void CoordinationState::queue_put(QueueState& q, const CoordCaller& caller, CoordRequest& request, TimePoint now) {
  if ((q.maxsize == 0 || q.items.size() < q.maxsize) && q.putters.empty()) {
    q.items.push_back(std::move(request.value));
    serve_queue(q);  // a waiting getter hears first
    answer(caller);
  } else {
    park(q.putters, caller, request, now, std::move(request.value));
  }
}

void CoordinationState::queue_get(QueueState& q, const CoordCaller& caller, const CoordRequest& request,
                                  TimePoint now) {
  const bool batch = request.op == CoordOp::queue_get_batch;
  if (batch && request.count == 0) {  // Dask's batch=True: what is there, without waiting
    hand_items(q, caller, static_cast<std::uint32_t>(q.items.size()), true);
  } else {
    const std::uint32_t count = batch ? request.count : 1;
    if (q.maxsize != 0 && count > q.maxsize)
      throw ValueError("queue-batch", quoted("Queue", request.name) + " holds at most " + std::to_string(q.maxsize) +
                                          " items: a batch of " + std::to_string(count) + " would wait for ever");
    // Earlier getters go first.
    if (!q.getters.empty() || q.items.size() < count) {
      park(q.getters, caller, request, now);
      return;
    }
    hand_items(q, caller, count, batch);
  }
  serve_queue(q);
}

void CoordinationState::hand_items(QueueState& q, const CoordCaller& caller, std::uint32_t count, bool batch) {
  if (!batch) {
    answer(caller, std::move(q.items.front()));
    q.items.pop_front();
    return;
  }
  CoordReply reply{caller, CoordReply::Status::ok, {}, {}, {}, true, {}};
  reply.items.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    reply.items.push_back(std::move(q.items.front()));
    q.items.pop_front();
  }
  replies_.push_back(std::move(reply));
}

void CoordinationState::serve_queue(QueueState& q) {
  while (true) {
    while (!q.putters.empty() && (q.maxsize == 0 || q.items.size() < q.maxsize)) {
      Waiter w = unpark_front(q.putters);
      q.items.push_back(std::move(w.value));
      answer(w.caller);
    }
    if (q.getters.empty() || q.items.size() < q.getters.front().count) return;
    Waiter g = unpark_front(q.getters);
    hand_items(q, g.caller, g.count, g.batch);
  }
}

void CoordinationState::handle(const CoordCaller& caller, CoordRequest request, TimePoint now) {
  switch (request.op) {
    case CoordOp::lock_acquire:
    case CoordOp::semaphore_acquire: acquire(leases(request), caller, request, now); break;
    case CoordOp::lock_release:
    case CoordOp::semaphore_release: release(leases(request), caller, request); break;
    case CoordOp::lock_locked: answer(caller, Value::of(leases(request).held != 0)); break;
    case CoordOp::semaphore_value: answer(caller, Value::of(std::uint64_t{leases(request).held})); break;
    case CoordOp::queue_put:
    case CoordOp::queue_get:
    case CoordOp::queue_get_batch:
    case CoordOp::queue_size: {
      auto it = queues_.find(request.name);
      if (it == queues_.end()) it = queues_.emplace(request.name, QueueState{request.limit, {}, {}, {}}).first;
      QueueState& q = it->second;
      if (request.op == CoordOp::queue_put) queue_put(q, caller, request, now);
      else if (request.op != CoordOp::queue_size) queue_get(q, caller, request, now);
      else answer(caller, Value::of(std::uint64_t{q.items.size()}));
      break;
    }
    case CoordOp::variable_set: {
      VariableState& v = variables_[request.name];
      while (!v.getters.empty()) answer(unpark_front(v.getters).caller, request.value.clone());
      v.value = std::move(request.value);
      answer(caller);
      break;
    }
    case CoordOp::variable_get: {
      VariableState& v = variables_[request.name];
      if (v.value) answer(caller, v.value->clone());
      else park(v.getters, caller, request, now);
      break;
    }
    case CoordOp::variable_delete:
      variables_[request.name].value.reset();
      answer(caller);
      break;
    case CoordOp::event_set: {
      EventState& e = events_[request.name];
      e.set = true;
      while (!e.waiting.empty()) answer(unpark_front(e.waiting).caller);
      answer(caller);
      break;
    }
    case CoordOp::event_clear:
      events_[request.name].set = false;
      answer(caller);
      break;
    case CoordOp::event_wait: {
      EventState& e = events_[request.name];
      if (e.set) answer(caller);
      else park(e.waiting, caller, request, now);
      break;
    }
    case CoordOp::event_is_set: answer(caller, Value::of(events_[request.name].set)); break;
    case CoordOp::dataset_publish: {
      auto [it, added] = datasets_.try_emplace(request.name);
      if (!added && !request.override_existing)
        throw ValueError("dataset-exists", "dataset '" + request.name +
                                               "' already exists (publish with override to replace it)");
      it->second = std::move(request.value);
      answer(caller);
      break;
    }
    case CoordOp::dataset_get: {
      auto it = datasets_.find(request.name);
      if (it == datasets_.end()) {
        std::string names;
        for (const auto& [name, value] : datasets_) names += (names.empty() ? "'" : ", '") + name + "'";
        throw ValueError("no-dataset", "dataset '" + request.name + "' not found (" +
                                           (names.empty() ? "none is published" : "published: " + names) + ")");
      }
      answer(caller, it->second.clone());
      break;
    }
    case CoordOp::dataset_unpublish:
      datasets_.erase(request.name);
      answer(caller);
      break;
    case CoordOp::dataset_list: {
      std::vector<std::string> names;
      for (const auto& [name, value] : datasets_) names.push_back(name);
      answer(caller, Value::of(std::move(names)));
      break;
    }
  }
}

// --- wire form --------------------------------------------------------------

void write_coord_request(BatchWriter& w, std::uint64_t request_id, CoordRequest request) {
  w.op(Op::coord);
  w.put(request_id);
  w.put(static_cast<std::uint8_t>(request.op));
  w.string(request.name);
  w.put(request.owner);
  w.put(request.limit);
  w.put(request.count);
  w.put<std::uint8_t>(request.override_existing ? 1 : 0);
  w.put(request.timeout.value_or(-1.0));
  w.put<std::uint8_t>(request.value.has_value() ? 1 : 0);
  if (request.value.has_value()) {
    auto value = std::make_shared<Value>(std::move(request.value));
    w.value(*value, value);
  }
}

CoordRequest read_coord_request(BatchReader& in, std::uint64_t& request_id) {
  request_id = in.get<std::uint64_t>();
  CoordRequest r;
  auto op = in.get<std::uint8_t>();
  if (op > static_cast<std::uint8_t>(CoordOp::dataset_list))
    in.fail("coordination operation " + std::to_string(op) + " is unknown");
  r.op = static_cast<CoordOp>(op);
  r.name = in.string();
  r.owner = in.get<std::uint64_t>();
  r.limit = in.get<std::uint32_t>();
  r.count = in.get<std::uint32_t>();
  r.override_existing = in.get<std::uint8_t>() != 0;
  if (auto timeout = in.get<double>(); timeout >= 0) r.timeout = timeout;
  if (in.get<std::uint8_t>() != 0) r.value = in.value();
  return r;
}

void write_coord_reply(BatchWriter& w, CoordReply reply) {
  for (const Value& item : reply.items) {
    if (item.type()->serializable()) continue;
    reply = failed_coord_reply(reply.caller, TypeError("not-serializable", "a queue item is a '" + item.type_name() +
                                                                               "', which cannot be sent to a worker rank"));
    break;
  }
  w.op(Op::coord_reply);
  w.put(reply.caller.request);
  w.put(static_cast<std::uint8_t>(reply.status));
  if (reply.status == CoordReply::Status::failed) {
    w.string(reply.error_id);
    w.string(reply.error_text);
  } else if (reply.batch) {
    w.put<std::uint8_t>(2);
    w.put(static_cast<std::uint32_t>(reply.items.size()));
    for (Value& item : reply.items) {
      auto value = std::make_shared<Value>(std::move(item));
      w.value(*value, value);
    }
  } else if (reply.status == CoordReply::Status::ok) {
    w.put<std::uint8_t>(reply.value.has_value() ? 1 : 0);
    if (reply.value.has_value()) {
      auto value = std::make_shared<Value>(std::move(reply.value));
      w.value(*value, value);
    }
  }
}

CoordReply read_coord_reply(BatchReader& in) {
  CoordReply r;
  r.caller.request = in.get<std::uint64_t>();
  auto status = in.get<std::uint8_t>();
  if (status > static_cast<std::uint8_t>(CoordReply::Status::failed))
    in.fail("coordination reply status " + std::to_string(status) + " is unknown");
  r.status = static_cast<CoordReply::Status>(status);
  if (r.status == CoordReply::Status::failed) {
    r.error_id = in.string();
    r.error_text = in.string();
  } else if (r.status == CoordReply::Status::ok) {
    // 0: no value, 1: a value, 2: a batch of items.
    auto form = in.get<std::uint8_t>();
    if (form == 1) {
      r.value = in.value();
    } else if (form == 2) {
      r.batch = true;
      auto n = in.get<std::uint32_t>();
      for (std::uint32_t i = 0; i < n; ++i) r.items.push_back(in.value());
    }
  }
  return r;
}

std::optional<Value> open_coord_reply(CoordReply reply) {
  switch (reply.status) {
    case CoordReply::Status::ok:
      if (reply.batch) return Value::of(detail::CoordItems(std::move(reply.items)));
      return std::move(reply.value);
    case CoordReply::Status::timed_out: return std::nullopt;
    case CoordReply::Status::failed: break;
  }
  // The error as the state raised it, with its class, wherever that was.
  const std::size_t dot = reply.error_id.find('.');
  const std::string kind = reply.error_id.substr(0, dot), id = reply.error_id.substr(dot + 1);
  if (kind == "value") throw ValueError(id, reply.error_text);
  if (kind == "type") throw TypeError(id, reply.error_text);
  throw RuntimeError(id, reply.error_text);
}

CoordReply failed_coord_reply(const CoordCaller& caller, const Error& e) {
  return CoordReply{caller, CoordReply::Status::failed, {}, e.id(), e.text(), false, {}};
}

}  // namespace weft::dist
