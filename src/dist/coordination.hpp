// CoordinationState: the named Locks, Semaphores, Queues, Variables, Events
// and datasets of weft/coordination.hpp (docs/architecture.md, "Coordination"),
// as a pure state machine: no MPI, no threads, no clock of its own.
//
// Callers are (rank, request number) pairs. handle() either answers a request
// at once or parks it with the object it waits for; a later request (a
// release, a put, a set) may answer parked ones. Every answer is queued as a
// CoordReply for the driver to deliver: rank 0's comm thread (to the client
// thread or, as coord_reply operations, to workers), or the in-process driver
// of weft::coordinate when there are no worker ranks. Waiters of one object
// are served in arrival order (a waiting acquire is not overtaken by a later
// one, nor a waiting put by a later put). A parked request with a timeout is
// answered timed_out by expire(now) once its deadline passes; next_deadline()
// tells the driver when to call it, so nobody polls.
//
// Errors (release of a lease not held, a dataset published twice, a missing
// dataset, inconsistent max_leases, a batch larger than its queue) are thrown
// by handle() at once, as weft::Error; the driver passes them to the caller.
//
// A queue's getters wait in arrival order for as many items as each asks
// (one, or a batch of n): the oldest is served as soon as the queue holds
// enough, so a queue holds items while getters wait only when the oldest
// wants more than it has.
//
// remove_rank(rank) forgets a worker rank that was removed: its parked
// requests, and the leases its holders had, which go to the next waiters
// (Dask's lease timeouts, here at the moment rank 0 gives up on the worker).
//
// The wire form of requests and replies (the coord / coord_reply operations of
// protocol.hpp) is at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "protocol.hpp"
#include "weft/coordination.hpp"

namespace weft::dist {

using CoordClock = std::chrono::steady_clock;

struct CoordCaller {
  int rank = 0;
  std::uint64_t request = 0;
  auto operator<=>(const CoordCaller&) const = default;
};

struct CoordReply {
  enum class Status : std::uint8_t { ok, timed_out, failed };
  CoordCaller caller;
  Status status = Status::ok;
  Value value;             ///< ok: the answer (empty for operations returning nothing, or a batch)
  std::string error_id;    ///< failed: "<kind>.<id>" of the weft::Error
  std::string error_text;  ///< failed: its text
  bool batch = false;       ///< ok: the answer is `items` (Queue::get_batch)
  std::vector<Value> items;
};

class CoordinationState {
 public:
  using TimePoint = CoordClock::time_point;

  /// Answers `request` now or parks it (then its timeout counts from `now`).
  /// Throws weft::Error for a request that cannot be served; nothing changed then.
  void handle(const CoordCaller& caller, detail::CoordRequest request, TimePoint now);
  /// Answers timed_out to every parked request whose deadline is at or before `now`.
  void expire(TimePoint now);
  /// The earliest deadline of a parked request; TimePoint::max() when none has one.
  TimePoint next_deadline() const noexcept;
  /// Moves the queued answers to `out` (cleared first).
  void take_replies(std::vector<CoordReply>& out);
  /// Parked requests, of every object.
  std::size_t waiting() const noexcept { return deadlines_.size() + without_deadline_; }
  /// Worker rank `rank` was removed: its parked requests are dropped (a
  /// parked put's item with it) and its Lock and Semaphore leases released
  /// to the next waiters.
  void remove_rank(int rank);

 private:
  struct Waiter {
    CoordCaller caller;
    TimePoint deadline;        ///< TimePoint::max(): none
    std::uint64_t owner = 0;   ///< lease acquires
    Value value;               ///< parked puts
    std::uint32_t count = 1;   ///< queue gets: items it waits for
    bool batch = false;        ///< queue gets: answered with a list (get_batch)
  };
  using Waiters = std::deque<Waiter>;
  struct Leases {
    std::uint32_t max_leases = 1;
    std::uint64_t held = 0;
    std::map<std::pair<int, std::uint64_t>, std::uint64_t> by_holder;  ///< (rank, owner) -> leases
    Waiters waiting;
  };
  struct QueueState {
    std::uint32_t maxsize = 0;
    std::deque<Value> items;
    Waiters getters;  ///< only while items is empty
    Waiters putters;  ///< only while it is full
  };
  struct VariableState {
    std::optional<Value> value;
    Waiters getters;
  };
  struct EventState {
    bool set = false;
    Waiters waiting;
  };
  void answer(const CoordCaller& caller, Value value = {});
  /// Parks a request, or answers timed_out at once when its timeout is zero.
  void park(Waiters& list, const CoordCaller& caller, const detail::CoordRequest& request, TimePoint now,
            Value value = {});
  /// The first waiter of `list`, taken off it and off the deadline index.
  Waiter unpark_front(Waiters& list);
  Leases& leases(const detail::CoordRequest& request);
  void acquire(Leases& l, const CoordCaller& caller, const detail::CoordRequest& request, TimePoint now);
  void release(Leases& l, const CoordCaller& caller, const detail::CoordRequest& request);
  void grant_waiters(Leases& l);
  void queue_put(QueueState& q, const CoordCaller& caller, detail::CoordRequest& request, TimePoint now);
  void queue_get(QueueState& q, const CoordCaller& caller, const detail::CoordRequest& request, TimePoint now);
  /// Hands `count` items to a getter (a batch as a list).
  void hand_items(QueueState& q, const CoordCaller& caller, std::uint32_t count, bool batch);
  /// Moves parked puts into the room there is, then serves the oldest getters
  /// while the queue holds what they wait for.
  void serve_queue(QueueState& q);

  std::map<std::string, Leases> locks_;
  std::map<std::string, Leases> semaphores_;
  std::map<std::string, QueueState> queues_;
  std::map<std::string, VariableState> variables_;
  std::map<std::string, EventState> events_;
  std::map<std::string, Value> datasets_;
  /// Parked requests with a deadline, and the list each waits in.
  std::set<std::tuple<TimePoint, CoordCaller, Waiters*>> deadlines_;
  std::size_t without_deadline_ = 0;
  std::vector<CoordReply> replies_;
};

// --- wire form (protocol.hpp's coord and coord_reply) -------------------------

void write_coord_request(BatchWriter& w, std::uint64_t request_id, detail::CoordRequest request);
/// Reads the fields after Op::coord; `request_id` gets the caller's number.
detail::CoordRequest read_coord_request(BatchReader& in, std::uint64_t& request_id);
void write_coord_reply(BatchWriter& w, CoordReply reply);
/// Reads the fields after Op::coord_reply (the caller's rank is this rank).
CoordReply read_coord_reply(BatchReader& in);

/// A reply as the caller sees it: the value, nullopt for a timeout, or the
/// error rethrown with its class (RuntimeError, ValueError, TypeError, ...).
std::optional<Value> open_coord_reply(CoordReply reply);
/// The failed reply for the weft::Error being handled (call inside a catch).
CoordReply failed_coord_reply(const CoordCaller& caller, const Error& e);

}  // namespace weft::dist
