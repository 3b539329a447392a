// Profiler: each scheduler thread appends to its own log (an uncontended lock,
// a time stamp and a Key copy per task); key strings are rendered only when
// results are read.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "weft/diagnostics.hpp"

#include "../core/atomic_file.hpp"
#include "weft/error.hpp"

namespace weft::diagnostics {
namespace {

using Clock = std::chrono::steady_clock;

struct Span {
  Key key;
  Clock::time_point start;
  Clock::time_point end;
  bool failed;
};

/// What one scheduler thread number recorded. The lock is uncontended unless
/// two computations overlap or results are read while one runs.
struct ThreadLog {
  std::mutex mutex;
  std::vector<Clock::time_point> running;  // start times of tasks not finished, innermost last
  std::vector<Span> spans;
};

/// Logs for thread numbers 0, 1, 2, ...: segment s holds 2^s logs, so that a
/// log never moves once made and finding one takes no lock.
class ThreadLogs {
 public:
  ThreadLogs() = default;
  ThreadLogs(const ThreadLogs&) = delete;
  ThreadLogs& operator=(const ThreadLogs&) = delete;
  ~ThreadLogs() {
    for (auto& segment : segments_) delete[] segment.load();
  }

  ThreadLog& operator[](unsigned thread) {
    const auto [segment, offset] = locate(thread);
    ThreadLog* logs = segments_[segment].load(std::memory_order_acquire);
    if (!logs) logs = make_segment(segment);
    return logs[offset];
  }

  /// Calls f(thread, log) for every log made so far.
  template <class F>
  void for_each(F&& f) {
    for (unsigned segment = 0; segment < kSegments; ++segment) {
      ThreadLog* logs = segments_[segment].load(std::memory_order_acquire);
      if (!logs) continue;
      const std::size_t first = (std::size_t{1} << segment) - 1;
      for (std::size_t i = 0; i < (std::size_t{1} << segment); ++i) {
        f(static_cast<unsigned>(first + i), logs[i]);
      }
    }
  }

 private:
  // Thread numbers are unsigned: thread + 1 has at most 33 bits.
  static constexpr unsigned kSegments = 33;

  static std::pair<unsigned, std::size_t> locate(unsigned thread) {
    const std::size_t n = std::size_t{thread} + 1;
    const auto segment = static_cast<unsigned>(std::bit_width(n) - 1);
    return {segment, n - (std::size_t{1} << segment)};
  }

  ThreadLog* make_segment(unsigned segment) {
    std::lock_guard lock(grow_mutex_);
    ThreadLog* logs = segments_[segment].load(std::memory_order_acquire);
    if (!logs) {
      logs = new ThreadLog[std::size_t{1} << segment];
      segments_[segment].store(logs, std::memory_order_release);
    }
    return logs;
  }

  std::array<std::atomic<ThreadLog*>, kSegments> segments_{};
  std::mutex grow_mutex_;
};

}  // namespace

namespace detail {

class ProfileRecorder final : public Callback {
 public:
  /// A span with its thread number, times still as clock values.
  struct Entry {
    unsigned thread;
    Span span;
  };

  void start(const ComputeStart& /*info*/) override {
    std::lock_guard lock(origin_mutex_);
    if (!origin_) origin_ = Clock::now();
  }

  void task_start(const Key& /*key*/, unsigned thread) override {
    const auto now = Clock::now();
    ThreadLog& log = logs_[thread];
    std::lock_guard lock(log.mutex);
    log.running.push_back(now);
  }

  void task_finish(const Key& key, unsigned thread, bool failed) override {
    const auto now = Clock::now();
    ThreadLog& log = logs_[thread];
    std::lock_guard lock(log.mutex);
    // A task_finish without its task_start (a scheduler bug) gets zero length.
    const auto started = log.running.empty() ? now : log.running.back();
    if (!log.running.empty()) log.running.pop_back();
    log.spans.push_back({key, started, now, failed});
  }

  /// Every span so far ordered by start, and the time they are measured from.
  std::pair<std::vector<Entry>, Clock::time_point> entries() {
    std::vector<Entry> entries;
    logs_.for_each([&](unsigned thread, ThreadLog& log) {
      std::lock_guard lock(log.mutex);
      for (const Span& span : log.spans) entries.push_back({thread, span});
    });
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.span.start, a.thread) < std::tie(b.span.start, b.thread);
    });
    std::lock_guard lock(origin_mutex_);
    // No origin: clear() was called while a computation ran.
    const auto origin = origin_ ? *origin_ : entries.empty() ? Clock::now() : entries[0].span.start;
    return {std::move(entries), origin};
  }

  void clear() {
    logs_.for_each([](unsigned /*thread*/, ThreadLog& log) {
      std::lock_guard lock(log.mutex);
      log.spans.clear();
    });
    std::lock_guard lock(origin_mutex_);
    origin_.reset();
  }

 private:
  ThreadLogs logs_;
  std::mutex origin_mutex_;
  std::optional<Clock::time_point> origin_;  // start of the first computation recorded
};

}  // namespace detail

namespace {

std::int64_t microseconds(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

Profiler::Profiler()
    : recorder_(std::make_shared<detail::ProfileRecorder>()), scope_(recorder_) {}

std::vector<TaskRecord> Profiler::results() const {
  const auto [entries, origin] = recorder_->entries();
  std::vector<TaskRecord> records;
  records.reserve(entries.size());
  for (const auto& [thread, span] : entries) {
    records.push_back({span.key.str(), microseconds(span.start - origin),
                       microseconds(span.end - origin), thread, span.failed});
  }
  return records;
}

void Profiler::clear() { recorder_->clear(); }

void Profiler::write_chrome_trace(const std::filesystem::path& path) const {
  const auto [entries, origin] = recorder_->entries();
  nlohmann::json events = nlohmann::json::array();
  std::set<unsigned> threads;
  for (const auto& entry : entries) threads.insert(entry.thread);
  for (unsigned thread : threads) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", 0},
                      {"tid", thread},
                      {"args", {{"name", "thread " + std::to_string(thread)}}}});
  }
  for (const auto& [thread, span] : entries) {
    const std::string key = span.key.str();
    const std::int64_t start = microseconds(span.start - origin);
    events.push_back({{"name", key},
                      {"cat", span.key.name()},
                      {"ph", "X"},
                      {"ts", start},
                      {"dur", microseconds(span.end - origin) - start},
                      {"pid", 0},  // one process until ranks record too
                      {"tid", thread},
                      {"args", {{"key", key}, {"failed", span.failed}}}});
  }
  const nlohmann::json trace = {{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}};
  weft::detail::write_file_atomically(path, trace.dump(), "Chrome trace");
}

}  // namespace weft::diagnostics
