// The I/O threads behind read_ahead: a new one starts when a read is asked
// for and none is idle (so each read task's read runs at once, however
// many tasks a rank runs), idle ones wait on a condition variable (never
// spinning), and none is stopped (a read may be asked for while static
// destructors run).
#include "read_ahead.hpp"

#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

namespace weft::io::detail {
namespace {

class IoThreads {
 public:
  static IoThreads& instance() {
    static IoThreads* threads = new IoThreads;
    return *threads;
  }

  std::future<ReadResult> submit(std::packaged_task<ReadResult()> read) {
    std::future<ReadResult> result = read.get_future();
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(read));
      if (idle_ < queue_.size() && threads_ < kMaxThreads) {
        ++threads_;
        std::thread([this] { serve(); }).detach();
      }
    }
    ready_.notify_one();
    return result;
  }

 private:
  static constexpr std::size_t kMaxThreads = 64;

  IoThreads() = default;

  void serve() {
    for (;;) {
      std::packaged_task<ReadResult()> read;
      {
        std::unique_lock lock(mutex_);
        ++idle_;
        ready_.wait(lock, [this] { return !queue_.empty(); });
        --idle_;
        read = std::move(queue_.front());
        queue_.pop_front();
      }
      read();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<ReadResult()>> queue_;
  std::size_t threads_ = 0;  // started
  std::size_t idle_ = 0;     // waiting for a read
};

}  // namespace

std::future<ReadResult> read_ahead(int fd, void* into, std::size_t bytes, off_t offset) {
  return IoThreads::instance().submit(std::packaged_task<ReadResult()>([=] {
    ssize_t got;
    do got = ::pread(fd, into, bytes, offset);
    while (got < 0 && errno == EINTR);
    return ReadResult{got, got < 0 ? errno : 0};
  }));
}

}  // namespace weft::io::detail
