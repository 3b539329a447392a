// weft/coordination.hpp - Dask's coordination primitives: Lock, Semaphore,
// Queue, Variable and Event, shared by name between the client and tasks.
//
// Each object is a handle on state kept in one place: on rank 0 when
// weft::main runs on several ranks (a task on a worker sends its request
// through the worker's comm thread and blocks until rank 0 answers), in this
// process otherwise. Objects with the same name (and kind) are the same
// object wherever they are made, so a task may make its own `Lock("db")` or
// receive one as an argument. Waiting callers are served in arrival order.
//
//   weft::Lock lock("counter");
//   weft::Variable<long> count("count");
//   auto add_one = [](long) {
//     weft::Lock lock("counter");
//     weft::Variable<long> count("count");
//     lock.acquire();
//     count.set(count.get() + 1);
//     lock.release();
//     return 0L;
//   };
//
// Timeouts are durations (`std::chrono::milliseconds(50)`, `0.5s`); none
// waits for ever, zero tries without waiting. As in Dask, acquire() and wait()
// return false when the timeout passes; Queue::get/put and Variable::get throw
// TimeoutError. Values travel as weft::Value (weft/serialize.hpp): a T used
// from tasks on worker ranks must be serialisable.
//
// Lock and Semaphore leases belong to the object that took them (copies of
// an object share its identity; an object that travels to another rank as a
// task argument is a new holder there, as a pickled Dask lock is): releasing
// a lease the object does not hold is RuntimeError "released-too-often".
// When rank 0 removes a worker rank (lost, hung or retired), the leases its
// objects held are released to the next waiters and its waiting calls are
// dropped; a task that throws while holding a lease keeps it (release it in
// a handler).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/error.hpp"
#include "weft/future.hpp"
#include "weft/tokenize.hpp"
#include "weft/value.hpp"

namespace weft {

/// How long a blocking call may wait; nullopt: for ever.
using Timeout = std::optional<std::chrono::duration<double>>;

namespace detail {

/// The operations the coordination state answers (src/dist/coordination.hpp).
enum class CoordOp : std::uint8_t {
  lock_acquire, lock_release, lock_locked,
  semaphore_acquire, semaphore_release, semaphore_value,
  queue_put, queue_get, queue_size, queue_get_batch,
  variable_set, variable_get, variable_delete,
  event_set, event_clear, event_wait, event_is_set,
  dataset_publish, dataset_get, dataset_unpublish, dataset_list,
};

struct CoordRequest {
  CoordOp op = CoordOp::lock_locked;
  std::string name;
  std::uint64_t owner = 0;       ///< Lock/Semaphore: the object holding leases (unique in its process)
  std::uint32_t limit = 0;       ///< Semaphore: max_leases; Queue: maxsize (0: unbounded)
  std::uint32_t count = 0;       ///< queue_get_batch: items wanted (0: all there are now)
  bool override_existing = false;  ///< dataset_publish
  std::optional<double> timeout;   ///< seconds a blocking operation may wait; nullopt: for ever
  Value value;                   ///< queue_put, variable_set, dataset_publish
};

/// A Queue::get_batch answer as the caller receives it (move-only: the items
/// are Values).
struct CoordItems {
  std::vector<Value> items;
  CoordItems() = default;
  explicit CoordItems(std::vector<Value> v) noexcept : items(std::move(v)) {}
  CoordItems(CoordItems&&) noexcept = default;
  CoordItems& operator=(CoordItems&&) noexcept = default;
  CoordItems(const CoordItems&) = delete;
  CoordItems& operator=(const CoordItems&) = delete;
};

/// Sends `request` to the coordination state and waits for the answer: its
/// value (empty for operations that return nothing), or nullopt when the
/// timeout passed. Errors the state raises are rethrown here with their class.
std::optional<Value> coordinate(CoordRequest request);
/// A holder identity for a new Lock or Semaphore object.
std::uint64_t new_coordination_owner() noexcept;
/// Seconds of a timeout; ValueError "bad-timeout" when negative.
std::optional<double> timeout_seconds(const Timeout& timeout);

/// What the primitives share: a name, and a cereal form that carries only
/// the name (`Holder` objects get a new identity where they arrive).
class NamedObject {
 public:
  const std::string& name() const noexcept { return name_; }
  void tokenize(Hasher& h) const { tokenize_into(h, name_); }

 protected:
  NamedObject() = default;
  explicit NamedObject(std::string name) : name_(std::move(name)) {}
  std::optional<Value> call(CoordOp op, CoordRequest request = {}) const {
    request.op = op;
    request.name = name_;
    return coordinate(std::move(request));
  }
  std::string name_;
};

/// A named object that holds leases (Lock, Semaphore).
class LeaseHolder : public NamedObject {
 public:
  template <class Archive>
  void save(Archive& ar) const {
    ar(name_, max_leases_);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(name_, max_leases_);
    owner_ = new_coordination_owner();
  }

 protected:
  LeaseHolder() = default;
  LeaseHolder(std::string name, std::uint32_t max_leases)
      : NamedObject(std::move(name)), owner_(new_coordination_owner()), max_leases_(max_leases) {}
  std::optional<Value> lease_call(CoordOp op, const Timeout& timeout = std::nullopt) const {
    CoordRequest r;
    r.owner = owner_;
    r.limit = max_leases_;
    r.timeout = timeout_seconds(timeout);
    return call(op, std::move(r));
  }
  std::uint64_t owner_ = 0;
  std::uint32_t max_leases_ = 1;
};

}  // namespace detail

/// A named mutual-exclusion lock (dask.distributed.Lock).
class Lock : public detail::LeaseHolder {
 public:
  explicit Lock(std::string name) : LeaseHolder(std::move(name), 1) {}
  Lock() = default;  ///< nameless: only for decoding one that travelled
  /// Waits for the lock; false when `timeout` passed first (zero: just try).
  bool acquire(const Timeout& timeout = std::nullopt) {
    return lease_call(detail::CoordOp::lock_acquire, timeout).has_value();
  }
  /// RuntimeError "released-too-often" when this object does not hold it.
  void release() { lease_call(detail::CoordOp::lock_release); }
  /// Whether anyone holds it now.
  bool locked() const { return lease_call(detail::CoordOp::lock_locked)->get<bool>(); }

};

/// At most `max_leases` holders at once (dask.distributed.Semaphore). Every
/// object with the name must give the same max_leases (ValueError
/// "semaphore-max-leases" otherwise). One object may hold several leases.
class Semaphore : public detail::LeaseHolder {
 public:
  Semaphore() = default;  ///< nameless: only for decoding one that travelled
  Semaphore(std::uint32_t max_leases, std::string name) : LeaseHolder(std::move(name), max_leases) {
    if (max_leases == 0) throw ValueError("semaphore-max-leases", "Semaphore '" + name_ + "': max_leases must be positive");
  }
  /// Waits for a lease; false when `timeout` passed first.
  bool acquire(const Timeout& timeout = std::nullopt) {
    return lease_call(detail::CoordOp::semaphore_acquire, timeout).has_value();
  }
  /// Gives back one of this object's leases (RuntimeError "released-too-often" when it has none).
  void release() { lease_call(detail::CoordOp::semaphore_release); }
  /// Leases held now, by all holders (Dask's get_value).
  std::uint64_t get_value() const {
    return lease_call(detail::CoordOp::semaphore_value)->get<std::uint64_t>();
  }
  std::uint32_t max_leases() const noexcept { return max_leases_; }

};

/// A named first-in first-out queue of T (dask.distributed.Queue). With
/// maxsize > 0, put() waits while it is full; the first object to use a name
/// sets its maxsize, as in Dask.
template <class T>
class Queue : public detail::NamedObject {
 public:
  explicit Queue(std::string name, std::uint32_t maxsize = 0) : NamedObject(std::move(name)), maxsize_(maxsize) {}
  Queue() = default;  ///< nameless: only for decoding one that travelled
  /// TimeoutError "queue-put" when it stays full for `timeout`.
  void put(T item, const Timeout& timeout = std::nullopt) {
    detail::CoordRequest r = request(timeout);
    r.value = Value::of(std::move(item));
    if (!call(detail::CoordOp::queue_put, std::move(r)))
      throw TimeoutError("queue-put", "Queue '" + name_ + "' stayed full for the timeout");
  }
  /// The oldest item; TimeoutError "queue-get" when it stays empty for `timeout`.
  T get(const Timeout& timeout = std::nullopt) {
    std::optional<Value> v = call(detail::CoordOp::queue_get, request(timeout));
    if (!v) throw TimeoutError("queue-get", "Queue '" + name_ + "' stayed empty for the timeout");
    return v->template take<T>();
  }
  /// Dask's get(batch=...): with n = 0 (batch=True) every item in the queue
  /// now, oldest first, without waiting (maybe none); with n > 0 (batch=n)
  /// the n oldest items, waiting until the queue has n: TimeoutError
  /// "queue-get" when it has not within `timeout`, and then none is taken.
  /// n above a bounded queue's maxsize is ValueError "queue-batch".
  std::vector<T> get_batch(std::uint32_t n = 0, const Timeout& timeout = std::nullopt) {
    detail::CoordRequest r = request(timeout);
    r.count = n;
    std::optional<Value> v = call(detail::CoordOp::queue_get_batch, std::move(r));
    if (!v)
      throw TimeoutError("queue-get", "Queue '" + name_ + "' did not have " + std::to_string(n) +
                                          " items within the timeout");
    std::vector<T> items;
    for (Value& item : v->template take<detail::CoordItems>().items) items.push_back(item.template take<T>());
    return items;
  }
  std::uint64_t qsize() const { return call(detail::CoordOp::queue_size, request())->template get<std::uint64_t>(); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name_, maxsize_);
  }

 private:
  detail::CoordRequest request(const Timeout& timeout = std::nullopt) const {
    detail::CoordRequest r;
    r.limit = maxsize_;
    r.timeout = detail::timeout_seconds(timeout);
    return r;
  }
  std::uint32_t maxsize_ = 0;
};

/// A named value any caller can set and read (dask.distributed.Variable).
/// As in Dask it may hold a Future (the client's): the variable then keeps
/// its result on the cluster until it is set again or removed, and get()
/// reads the result (a Variable<Future<T>> reads the future itself). A task
/// on a worker rank cannot receive a Future this way (TypeError
/// "type.not-serializable"; pass the future to it as an argument).
template <class T>
class Variable : public detail::NamedObject {
 public:
  explicit Variable(std::string name) : NamedObject(std::move(name)) {}
  Variable() = default;  ///< nameless: only for decoding one that travelled
  /// Sets it; callers waiting in get() receive it.
  void set(T value) { set_value(Value::of(std::move(value))); }
  /// Holds `future` (Dask's Variable.set(future)); get() waits for its result.
  void set(Future<T> future)
    requires(!std::is_base_of_v<FutureBase, T>)
  {
    set_value(Value::of(std::move(future)));
  }
  /// Its value; waits while it is unset (TimeoutError "variable-get" after `timeout`).
  T get(const Timeout& timeout = std::nullopt) const {
    detail::CoordRequest r;
    r.timeout = detail::timeout_seconds(timeout);
    std::optional<Value> v = call(detail::CoordOp::variable_get, std::move(r));
    if (!v) throw TimeoutError("variable-get", "Variable '" + name_ + "' was not set within the timeout");
    if constexpr (!std::is_base_of_v<FutureBase, T>) {
      if (v->template holds<Future<T>>()) return v->template get<Future<T>>().result();
    }
    return v->template take<T>();
  }
  /// Unsets it (Dask's delete()); a future it held lets its result go.
  void remove() { call(detail::CoordOp::variable_delete); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name_);
  }

 private:
  void set_value(Value value) {
    detail::CoordRequest r;
    r.value = std::move(value);
    call(detail::CoordOp::variable_set, std::move(r));
  }
};

/// A named flag callers wait for (dask.distributed.Event).
class Event : public detail::NamedObject {
 public:
  explicit Event(std::string name) : NamedObject(std::move(name)) {}
  Event() = default;  ///< nameless: only for decoding one that travelled

  /// Sets the flag and wakes every waiter.
  void set() { call(detail::CoordOp::event_set); }
  void clear() { call(detail::CoordOp::event_clear); }
  /// Waits until it is set; false when `timeout` passed first.
  bool wait(const Timeout& timeout = std::nullopt) const {
    detail::CoordRequest r;
    r.timeout = detail::timeout_seconds(timeout);
    return call(detail::CoordOp::event_wait, std::move(r)).has_value();
  }
  bool is_set() const { return call(detail::CoordOp::event_is_set)->get<bool>(); }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name_);
  }

};

/// Publishes `value` under `name` for any caller (Dask's publish_dataset):
/// a value, or a Future, whose result then stays on the cluster while it is
/// published. ValueError "dataset-exists" when the name is taken, unless
/// `override_existing`.
template <class T>
void publish_dataset(const std::string& name, T value, bool override_existing = false) {
  detail::CoordRequest r;
  r.op = detail::CoordOp::dataset_publish;
  r.name = name;
  r.override_existing = override_existing;
  r.value = Value::of(std::move(value));
  detail::coordinate(std::move(r));
}

/// The dataset `name` (ValueError "no-dataset" naming it when there is none).
/// A published Future<T> is read as Future<T>, or as T (its result).
template <class T>
T get_dataset(const std::string& name) {
  detail::CoordRequest r;
  r.op = detail::CoordOp::dataset_get;
  r.name = name;
  Value v = *detail::coordinate(std::move(r));
  if constexpr (!std::is_base_of_v<FutureBase, T>) {
    if (v.holds<Future<T>>()) return v.get<Future<T>>().result();
  }
  return v.take<T>();
}

/// Removes the dataset `name`, if there is one (Dask's unpublish_dataset).
void unpublish_dataset(const std::string& name);
/// The names of the published datasets, sorted.
std::vector<std::string> list_datasets();

}  // namespace weft
