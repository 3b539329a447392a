// ProgressBar: counts finished tasks on the scheduler's threads (one atomic
// increment each) and writes from a timer thread that lives only while a
// computation runs and sleeps on a condition variable between writes.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "weft/config.hpp"
#include "weft/diagnostics.hpp"
#include "weft/error.hpp"

namespace weft::diagnostics {
namespace {

using Clock = std::chrono::steady_clock;

Seconds option_or_config(const std::optional<Seconds>& option, const char* key) {
  return option ? *option : Seconds(config::get_seconds(key));
}

Seconds positive(Seconds period, const char* name) {
  // A zero period would turn the timer thread into a busy loop.
  if (period <= Seconds::zero()) {
    throw ValueError("progress-option", std::string("ProgressBar: ") + name +
                                            " must be positive, got " +
                                            std::to_string(period.count()) + "s");
  }
  return period;
}

/// Dask's format_time: " 1.2s", " 2min  5.3s", " 1hr  2min  5.3s". `padded`
/// keeps the width fixed so that a redrawn bar does not jitter.
std::string format_time(Seconds t, bool padded) {
  double s = t.count();
  const int h = static_cast<int>(s / 3600);
  s -= h * 3600.0;
  const int m = static_cast<int>(s / 60);
  s -= m * 60.0;
  const int wi = padded ? 2 : 0;
  const int wf = padded ? 4 : 0;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%*dhr %*dmin %*.1fs", wi, h, wi, m, wf, s);
  } else if (m > 0) {
    std::snprintf(buf, sizeof buf, "%*dmin %*.1fs", wi, m, wf, s);
  } else {
    std::snprintf(buf, sizeof buf, "%*.1fs", wf, s);
  }
  return buf;
}

}  // namespace

namespace detail {

class ProgressListener final : public Callback {
 public:
  explicit ProgressListener(const ProgressBarOptions& options)
      : minimum_(option_or_config(options.minimum, "diagnostics.progress.minimum")),
        out_(options.out),
        width_(options.width),
        terminal_(options.mode == ProgressMode::terminal ||
                  (options.mode == ProgressMode::automatic && out_ && isatty(fileno(out_)))),
        period_(positive(terminal_ ? option_or_config(options.interval,
                                                      "diagnostics.progress.interval")
                                   : option_or_config(options.log_interval,
                                                      "diagnostics.progress.log-interval"),
                         terminal_ ? "interval" : "log_interval")) {
    if (!out_) throw ValueError("progress-option", "ProgressBar: out is null");
  }

  ~ProgressListener() override { stop_timer(); }

  void start(const ComputeStart& info) override {
    std::lock_guard run(run_mutex_);
    if (active_++ > 0) {  // another computation while one runs: count its tasks too
      total_ += info.ntasks;
      return;
    }
    done_ = 0;
    total_ = info.ntasks;
    started_ = Clock::now();
    stopping_ = false;
    timer_ = std::thread(&ProgressListener::run_timer, this);
  }

  void task_finish(const Key& /*key*/, unsigned /*thread*/, bool /*failed*/) override {
    done_.fetch_add(1, std::memory_order_relaxed);
  }

  void finish(bool failed) override {
    std::lock_guard run(run_mutex_);
    if (--active_ > 0) return;
    stop_timer();
    last_duration_ = Clock::now() - started_;
    if (last_duration_ < minimum_) return;
    if (terminal_) {
      draw_bar(failed ? fraction() : 1.0, last_duration_);
      std::fputc('\n', out_);
    } else {
      write_line(failed ? fraction() : 1.0, failed ? done() : total_.load(),
                 (failed ? "failed after " : "done in ") + format_time(last_duration_, false));
    }
    std::fflush(out_);
  }

  Seconds last_duration() const {
    std::lock_guard run(run_mutex_);
    return last_duration_;
  }

 private:
  void run_timer() {
    std::unique_lock lock(timer_mutex_);
    while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
      const Seconds elapsed = Clock::now() - started_;
      if (elapsed < minimum_) continue;
      if (terminal_) {
        draw_bar(fraction(), elapsed);
      } else {
        write_line(fraction(), done(), format_time(elapsed, false) + " elapsed");
      }
      std::fflush(out_);
    }
  }

  void stop_timer() {
    if (!timer_.joinable()) return;
    {
      std::lock_guard lock(timer_mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    timer_.join();
  }

  std::size_t done() const {
    // Never above 100%, even if a scheduler reports more tasks than it announced.
    return std::min(done_.load(std::memory_order_relaxed), total_.load());
  }

  double fraction() const {
    const std::size_t total = total_.load();
    return total ? static_cast<double>(done()) / static_cast<double>(total) : 0.0;
  }

  void draw_bar(double fraction, Seconds elapsed) {
    const std::string bar(static_cast<std::size_t>(width_ * fraction), '#');
    std::fprintf(out_, "\r[%-*s] | %d%% Completed | %s", static_cast<int>(width_), bar.c_str(),
                 static_cast<int>(100 * fraction), format_time(elapsed, true).c_str());
  }

  void write_line(double fraction, std::size_t done, const std::string& when) {
    std::fprintf(out_, "[weft] %d%% %zu/%zu tasks, %s\n", static_cast<int>(100 * fraction), done,
                 total_.load(), when.c_str());
  }

  const Seconds minimum_;
  std::FILE* const out_;
  const unsigned width_;
  const bool terminal_;
  const Seconds period_;  // between writes: interval or log_interval

  std::atomic<std::size_t> done_{0};
  std::atomic<std::size_t> total_{0};
  Clock::time_point started_;  // written before the timer thread starts

  mutable std::mutex run_mutex_;  // serialises start() and finish()
  unsigned active_ = 0;           // computations running (nested ones included)
  Seconds last_duration_{0};
  std::thread timer_;

  std::mutex timer_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

}  // namespace detail

ProgressBar::ProgressBar(ProgressBarOptions options)
    : listener_(std::make_shared<detail::ProgressListener>(options)), scope_(listener_) {}

Seconds ProgressBar::last_duration() const { return listener_->last_duration(); }

}  // namespace weft::diagnostics
