// Idle threads helping a running task: the board of offers and run_parts().
#include "task_help.hpp"

#include <algorithm>

namespace weft::detail {

namespace {
thread_local HelpSource* t_help_source = nullptr;
}

unsigned SharedParts::claim() noexcept {
  if (next_.load(std::memory_order_relaxed) >= count_) return kNone;
  const unsigned i = next_.fetch_add(1, std::memory_order_acq_rel);
  return i < count_ ? i : kNone;
}

void SharedParts::run(unsigned i) noexcept {
  std::exception_ptr error;
  try {
    part_(i);
  } catch (...) {
    error = std::current_exception();
  }
  // Notified under the lock: the owner may destroy this object as soon as it
  // sees the last part finished, which it cannot before the lock is released.
  std::lock_guard lock(mutex_);
  if (error && !error_) error_ = error;
  ++finished_;
  finished_cv_.notify_all();
}

void SharedParts::wait_and_rethrow() {
  std::unique_lock lock(mutex_);
  const unsigned taken = std::min(next_.load(std::memory_order_acquire), count_);
  finished_cv_.wait(lock, [&] { return finished_ == taken; });
  if (error_) std::rethrow_exception(error_);
}

void HelpBoard::open(SharedParts& parts) {
  std::lock_guard lock(mutex_);
  open_.push_back(&parts);
  open_count_.store(open_.size(), std::memory_order_release);
}

void HelpBoard::close(SharedParts& parts) {
  std::lock_guard lock(mutex_);
  open_.erase(std::remove(open_.begin(), open_.end(), &parts), open_.end());
  open_count_.store(open_.size(), std::memory_order_release);
}

bool HelpBoard::has_unclaimed() {
  if (open_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard lock(mutex_);
  return std::any_of(open_.begin(), open_.end(), [](const SharedParts* p) { return !p->all_claimed(); });
}

bool HelpBoard::help_one() {
  if (open_count_.load(std::memory_order_acquire) == 0) return false;
  SharedParts* parts = nullptr;
  unsigned part = SharedParts::kNone;
  {
    // Parts are claimed under the lock, so that once close() returns no
    // helper still holds a pointer to the offer without having claimed.
    std::lock_guard lock(mutex_);
    for (SharedParts* p : open_)
      if ((part = p->claim()) != SharedParts::kNone) {
        parts = p;
        break;
      }
  }
  if (!parts) return false;
  parts->run(part);
  return true;
}

HelpSourceScope::HelpSourceScope(HelpSource* source) noexcept : saved_(t_help_source) { t_help_source = source; }

HelpSourceScope::~HelpSourceScope() { t_help_source = saved_; }

unsigned idle_helpers() noexcept { return t_help_source ? t_help_source->idle_threads() : 0; }

void run_parts(unsigned count, const std::function<void(unsigned)>& part) {
  SharedParts parts(count, part);
  HelpSource* source = t_help_source;
  if (source && count > 1) source->offer(parts);
  for (unsigned i = parts.claim(); i != SharedParts::kNone; i = parts.claim()) parts.run(i);
  if (source && count > 1) source->withdraw(parts);
  parts.wait_and_rethrow();
}

}  // namespace weft::detail
