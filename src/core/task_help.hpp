// Idle threads helping a running task at the task's own split points.
//
// Schedulers balance whole tasks; a computation of a few long tasks still ends
// with threads idle while others finish. A kernel that can split what remains
// of its work (disjoint parts) asks idle_helpers() at its split points and,
// when threads are idle, runs the parts with run_parts(): idle threads of the
// executor that runs the task take some, the task's thread the rest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

namespace weft::detail {

/// Parts of one task's work, open to idle threads while the task offers them.
class SharedParts {
 public:
  SharedParts(unsigned count, const std::function<void(unsigned)>& part) : count_(count), part_(part) {}
  SharedParts(const SharedParts&) = delete;
  SharedParts& operator=(const SharedParts&) = delete;

  static constexpr unsigned kNone = ~0u;
  /// A part no one has taken yet, now taken by the caller; kNone when none is left.
  unsigned claim() noexcept;
  bool all_claimed() const noexcept { return next_.load(std::memory_order_relaxed) >= count_; }
  /// Runs a claimed part, keeping its exception for wait_and_rethrow().
  void run(unsigned i) noexcept;
  /// Blocks until every taken part finished, then rethrows the first error.
  void wait_and_rethrow();

 private:
  const unsigned count_;
  const std::function<void(unsigned)>& part_;
  std::atomic<unsigned> next_{0};
  std::mutex mutex_;
  std::condition_variable finished_cv_;
  unsigned finished_ = 0;
  std::exception_ptr error_;
};

/// The offers open on one executor. Thread-safe.
class HelpBoard {
 public:
  void open(SharedParts& parts);
  /// After close() returns, no thread takes a part of `parts`.
  void close(SharedParts& parts);
  /// Runs one part of an open offer; false when there is nothing to take.
  bool help_one();
  /// Whether an open offer has a part left to take (what an idle thread
  /// checks before it sleeps).
  bool has_unclaimed();

 private:
  std::mutex mutex_;
  std::vector<SharedParts*> open_;
  std::atomic<std::size_t> open_count_{0};
};

/// What runs tasks and lends its idle threads: the threads scheduler's job, a
/// worker rank's compute threads.
class HelpSource {
 public:
  /// Threads with nothing to run right now.
  virtual unsigned idle_threads() const noexcept = 0;
  /// Puts `parts` on the board and wakes the idle threads.
  virtual void offer(SharedParts& parts) = 0;
  /// Takes `parts` off the board; no thread takes one of them afterwards.
  virtual void withdraw(SharedParts& parts) = 0;

 protected:
  ~HelpSource() = default;
};

/// The source for tasks run on this thread, for the scope's lifetime.
class HelpSourceScope {
 public:
  explicit HelpSourceScope(HelpSource* source) noexcept;
  ~HelpSourceScope();
  HelpSourceScope(const HelpSourceScope&) = delete;
  HelpSourceScope& operator=(const HelpSourceScope&) = delete;

 private:
  HelpSource* saved_;
};

/// Idle threads that could help the task running on this thread now (0 on the
/// sync scheduler or outside any task).
unsigned idle_helpers() noexcept;

/// Runs part(i) for every i in [0, count): idle threads take some, this thread
/// runs every part no one else took, and waits for the others. Rethrows the
/// first exception of any part after all have ended.
void run_parts(unsigned count, const std::function<void(unsigned)>& part);

}  // namespace weft::detail
