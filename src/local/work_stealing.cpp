#include "work_stealing.hpp"

namespace weft::detail {

WorkStealingDeque::WorkStealingDeque(std::size_t capacity) {
  std::size_t cap = 16;
  while (cap < capacity) cap <<= 1;
  buffers_.push_back(std::make_unique<Buffer>(cap));
  buffer_.store(buffers_.back().get(), std::memory_order_relaxed);
}

WorkStealingDeque::Buffer* WorkStealingDeque::grow(Buffer* old, std::int64_t top, std::int64_t bottom) {
  buffers_.push_back(std::make_unique<Buffer>((old->mask + 1) * 2));
  Buffer* bigger = buffers_.back().get();
  for (std::int64_t i = top; i < bottom; ++i)
    bigger->at(i).store(old->at(i).load(std::memory_order_relaxed), std::memory_order_relaxed);
  buffer_.store(bigger, std::memory_order_release);
  return bigger;
}

void WorkStealingDeque::push(std::uint32_t item) {
  std::int64_t b = bottom_.load(std::memory_order_relaxed);
  std::int64_t t = top_.load(std::memory_order_acquire);
  Buffer* buf = buffer_.load(std::memory_order_relaxed);
  if (b - t > static_cast<std::int64_t>(buf->mask)) buf = grow(buf, t, b);
  buf->at(b).store(item, std::memory_order_relaxed);
  // A release store rather than the paper's release fence: the same on x86,
  // and ThreadSanitizer (which ignores fences) sees that a thief's acquire of
  // bottom_ publishes everything the owner wrote before the push.
  bottom_.store(b + 1, std::memory_order_release);
}

std::uint32_t WorkStealingDeque::pop() {
  std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
  Buffer* buf = buffer_.load(std::memory_order_relaxed);
  bottom_.store(b, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::int64_t t = top_.load(std::memory_order_relaxed);
  if (t > b) {  // empty
    bottom_.store(b + 1, std::memory_order_relaxed);
    return kNone;
  }
  std::uint32_t item = buf->at(b).load(std::memory_order_relaxed);
  if (t == b) {  // the last item: race the thieves for it
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
      item = kNone;
    bottom_.store(b + 1, std::memory_order_relaxed);
  }
  return item;
}

std::uint32_t WorkStealingDeque::steal() {
  std::int64_t t = top_.load(std::memory_order_acquire);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  std::int64_t b = bottom_.load(std::memory_order_acquire);
  if (t >= b) return kNone;
  Buffer* buf = buffer_.load(std::memory_order_acquire);
  std::uint32_t item = buf->at(t).load(std::memory_order_relaxed);
  if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
    return kNone;
  return item;
}

}  // namespace weft::detail
