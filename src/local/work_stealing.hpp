// Building blocks of the threads scheduler: a work-stealing deque of unit
// ids and an event count for sleeping without lost wake-ups.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace weft::detail {

/// Chase-Lev deque (Le, Pop, Cohen, Zappa Nardelli, PPoPP 2013): the owner
/// pushes and pops at the bottom (LIFO: depth-first), thieves take from the
/// top (the oldest work: breadth). Grows by doubling; old buffers are kept
/// until the deque dies, since a thief may still be reading one.
class WorkStealingDeque {
 public:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  explicit WorkStealingDeque(std::size_t capacity = 1024);

  /// Owner only.
  void push(std::uint32_t item);
  /// Owner only; kNone when empty.
  std::uint32_t pop();
  /// Any thread; kNone when empty or when it lost a race (try again later).
  std::uint32_t steal();
  bool looks_empty() const {
    return bottom_.load(std::memory_order_relaxed) <= top_.load(std::memory_order_relaxed);
  }

 private:
  struct Buffer {
    explicit Buffer(std::size_t cap) : mask(cap - 1), items(new std::atomic<std::uint32_t>[cap]) {}
    std::size_t mask;
    std::unique_ptr<std::atomic<std::uint32_t>[]> items;
    std::atomic<std::uint32_t>& at(std::int64_t i) { return items[static_cast<std::size_t>(i) & mask]; }
  };
  Buffer* grow(Buffer* old, std::int64_t top, std::int64_t bottom);

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  alignas(64) std::atomic<Buffer*> buffer_;
  std::vector<std::unique_ptr<Buffer>> buffers_;  // owner only
};

/// Sleep until notified, without missing a notification that races with
/// going to sleep: prepare_wait(), check for work once more, then
/// commit_wait() or cancel_wait(). Blocks in the kernel (futex), never spins.
class EventCount {
 public:
  std::uint32_t prepare_wait() {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with notify_one's fence
    return epoch_.load(std::memory_order_seq_cst);
  }
  void cancel_wait() { waiters_.fetch_sub(1, std::memory_order_seq_cst); }
  void commit_wait(std::uint32_t epoch) {
    epoch_.wait(epoch, std::memory_order_seq_cst);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }
  /// Wakes one sleeper, if there is one (cheap when there is none).
  void notify_one() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_seq_cst) == 0) return;
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    epoch_.notify_one();
  }
  void notify_all() {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    epoch_.notify_all();
  }

 private:
  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace weft::detail
