// weft/diagnostics.hpp - local diagnostics: a progress bar and a task profiler.
//
// Mirrors dask.diagnostics.ProgressBar and dask.diagnostics.Profiler. Both are
// callbacks (weft/callbacks.hpp) that register themselves for the lifetime of
// the object, as Dask's `with ProgressBar():` does:
//
// @code
//   {
//     weft::diagnostics::ProgressBar bar;
//     weft::diagnostics::Profiler prof;
//     x.compute();
//     prof.write_chrome_trace("trace.json");   // open in chrome://tracing or Perfetto
//   }
// @endcode
//
// They listen to one computation at a time: overlapping computations (a task
// that computes something itself, two client threads) are counted together.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weft/callbacks.hpp"

namespace weft::diagnostics {

using Seconds = std::chrono::duration<double>;

namespace detail {
class ProgressListener;
class ProfileRecorder;
}  // namespace detail

/// How a ProgressBar writes.
enum class ProgressMode {
  automatic,  ///< `terminal` when the output is a terminal, else `log`
  terminal,   ///< one line redrawn with '\r', as Dask draws it
  log,        ///< a plain line now and then, for batch job logs
};

struct ProgressBarOptions {
  /// Print nothing for computations shorter than this
  /// (default: config diagnostics.progress.minimum).
  std::optional<Seconds> minimum;
  /// Redraw period in terminal mode (default: config diagnostics.progress.interval).
  std::optional<Seconds> interval;
  /// Period of the lines in log mode (default: config diagnostics.progress.log-interval).
  std::optional<Seconds> log_interval;
  /// Where to write; not closed by the bar.
  std::FILE* out = stderr;
  /// Characters between the brackets in terminal mode.
  unsigned width = 40;
  ProgressMode mode = ProgressMode::automatic;
};

/// Shows how many tasks of the running computation have finished.
///
/// In terminal mode: `[####################                    ] | 50% Completed |  1.2s`,
/// redrawn every `interval`, ending at 100% (or where it failed) and a newline.
/// In log mode: `[weft] 42% 16800/40000 tasks, 3.1s elapsed` every `log_interval`, then
/// `[weft] 100% 40000/40000 tasks, done in 12.3s` or `[weft] 42% ..., failed after 3.1s`.
/// A task's cost is one atomic increment; a timer thread, alive only while a
/// computation runs, does the writing.
class ProgressBar {
 public:
  /// Registers the bar until it is destroyed. Reads the config for unset options.
  explicit ProgressBar(ProgressBarOptions options = {});
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Wall time of the last computation that finished (Dask's `last_duration`);
  /// zero before the first.
  Seconds last_duration() const;

 private:
  std::shared_ptr<detail::ProgressListener> listener_;
  CallbackScope scope_;
};

/// One task as the Profiler saw it. Times are microseconds since the start of
/// the first computation recorded (since construction or clear()), so that
/// several computations lie on one time line.
struct TaskRecord {
  std::string key;
  std::int64_t start_us;
  std::int64_t end_us;
  unsigned thread;  ///< the scheduler's thread number
  bool failed;      ///< the task threw
};

/// Records when each task ran and on which thread (Dask's Profiler). Results
/// accumulate over the computations run while it is alive.
class Profiler {
 public:
  /// Registers the profiler until it is destroyed.
  Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  /// Every task recorded so far, ordered by start time. Thread-safe.
  std::vector<TaskRecord> results() const;
  /// Forgets the records; the next computation starts a new time line.
  void clear();
  /// Writes the records in Chrome's trace event format (chrome://tracing,
  /// Perfetto): one complete ("X") event per task, named by its key, with the
  /// key's name as category, plus one thread_name event per thread. The file
  /// appears whole or not at all (written beside `path`, then renamed).
  /// @throws IoError "cannot-write" naming `path` when it cannot be written.
  void write_chrome_trace(const std::filesystem::path& path) const;

 private:
  std::shared_ptr<detail::ProfileRecorder> recorder_;
  CallbackScope scope_;
};

}  // namespace weft::diagnostics
