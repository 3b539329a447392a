// weft/future.hpp - Future<T>: a task running on the cluster now (Dask's
// futures interface), made by Client::submit, map, scatter and compute.
//
// A Future holds a reference on its task: while any Future for a key lives,
// the scheduler keeps the result on the worker that made it; when the last
// one goes, the result is freed. Futures are passed as arguments to submit()
// (and to other futures' tasks) without moving data through rank 0: the
// worker that runs the dependent fetches the value from the worker holding it.
//
// result() waits, then brings the value to rank 0 (cached: asking again does
// not move it again). A task that threw makes result() throw TaskError naming
// the key, the worker rank and the original message; a cancelled future throws
// RuntimeError "cancelled".
#pragma once

#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "weft/key.hpp"
#include "weft/task.hpp"
#include "weft/tokenize.hpp"
#include "weft/value.hpp"

namespace weft {

enum class FutureStatus : std::uint8_t { pending, finished, error, cancelled };
const char* to_string(FutureStatus s) noexcept;

namespace detail {
class ClientImpl;

/// What a Future refers to; shared by every Future of one key. The client
/// implementation owns its fields (see src/dist/client_impl.hpp).
struct FutureState;
using FutureStatePtr = std::shared_ptr<FutureState>;

const Key& future_key(const FutureState& s) noexcept;
FutureStatus future_status(const FutureState& s);
/// Waits for the task, fetches its value once, returns it; throws its error.
const Value& future_value(FutureState& s);
/// Waits; returns the error (null when it finished or was cancelled).
std::exception_ptr future_exception(FutureState& s);
void future_cancel(FutureState& s);
}  // namespace detail

/// Untyped base: what wait() and as_completed() need.
class FutureBase {
 public:
  FutureBase() = default;
  explicit FutureBase(detail::FutureStatePtr state) : state_(std::move(state)) {}

  bool valid() const noexcept { return state_ != nullptr; }
  const Key& key() const noexcept { return detail::future_key(*state_); }
  FutureStatus status() const { return detail::future_status(*state_); }
  /// finished, erred or cancelled (Dask's done()).
  bool done() const { return status() != FutureStatus::pending; }
  bool cancelled() const { return status() == FutureStatus::cancelled; }
  /// Waits; the task's error (a TaskError), or null.
  std::exception_ptr exception() const { return detail::future_exception(*state_); }
  /// Cancels the task and everything depending on it (if not yet finished).
  void cancel() const { detail::future_cancel(*state_); }
  const detail::FutureStatePtr& state() const noexcept { return state_; }

 protected:
  detail::FutureStatePtr state_;
};

template <class T>
class Future : public FutureBase {
 public:
  using value_type = T;
  Future() = default;
  explicit Future(detail::FutureStatePtr state) : FutureBase(std::move(state)) {}

  /// Waits and returns a copy of the result (void: waits and checks).
  T result() const {
    if constexpr (std::is_void_v<T>) detail::future_value(*state_);
    else return detail::future_value(*state_).template get<T>();
  }
};

/// wait(): which futures to wait for (Dask's return_when).
enum class ReturnWhen : std::uint8_t { all_completed, first_completed };

namespace detail {
/// Blocks until all (or the first not in `skip`) of `states` are done;
/// returns the index of one that is done (all_completed: the last index).
std::size_t wait_states(std::span<const FutureState* const> states, ReturnWhen when,
                        std::span<const bool> skip = {});

/// Future<T> arguments of submit() and delayed calls are dependencies: the
/// task reads the result where it runs.
template <class T>
struct ArgTraits<Future<T>> : DependencyArgTraits<T> {};
}  // namespace detail

/// The dependency a Future argument makes (found by argument-dependent lookup).
template <class T>
TaskRef dependency_ref(const Future<T>& f) {
  return TaskRef{f.key(), nullptr};
}

template <class T>
struct Tokenizer<Future<T>> {
  static void apply(Hasher& h, const Future<T>& f) { tokenize_into(h, f.key()); }
};

/// Waits until all (or the first) of `futures` are done (dask.distributed.wait).
template <class T>
void wait(const std::vector<Future<T>>& futures, ReturnWhen when = ReturnWhen::all_completed) {
  std::vector<const detail::FutureState*> states;
  states.reserve(futures.size());
  for (const Future<T>& f : futures) states.push_back(f.state().get());
  if (!states.empty()) detail::wait_states(states, when);
}

/// Futures in the order they finish (dask.distributed.as_completed):
/// `for (auto& f : weft::as_completed(fs)) use(f.result());`
template <class T>
class AsCompleted {
 public:
  explicit AsCompleted(std::vector<Future<T>> futures)
      : futures_(std::move(futures)), taken_(std::make_unique<bool[]>(futures_.size())) {}

  /// The next future to finish; nullopt when all were returned.
  std::optional<Future<T>> next() {
    if (returned_ == futures_.size()) return std::nullopt;
    std::vector<const detail::FutureState*> states;
    states.reserve(futures_.size());
    for (const Future<T>& f : futures_) states.push_back(f.state().get());
    std::size_t i = detail::wait_states(states, ReturnWhen::first_completed,
                                        std::span<const bool>(taken_.get(), futures_.size()));
    taken_[i] = true;
    ++returned_;
    return futures_[i];
  }

  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    explicit iterator(AsCompleted* owner) : owner_(owner) { advance(); }
    const Future<T>& operator*() const { return *current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(std::default_sentinel_t) const { return !current_; }

   private:
    void advance() { current_ = owner_->next(); }
    AsCompleted* owner_;
    std::optional<Future<T>> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::vector<Future<T>> futures_;
  std::unique_ptr<bool[]> taken_;  // returned already
  std::size_t returned_ = 0;
};

template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> futures) {
  return AsCompleted<T>(std::move(futures));
}

}  // namespace weft
