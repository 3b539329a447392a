// The threads scheduler: a persistent pool, one work-stealing deque per
// thread, the calling thread working too.
//
// A thread that finishes a unit runs the first dependent that became ready
// straight away and pushes the others onto its own deque, popping LIFO, so
// each thread works depth-first and intermediates are freed early; idle
// threads steal the oldest work of others. Threads with nothing to do sleep
// on a futex (EventCount): nothing spins, which matters when MPI ranks share
// cores.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "../core/task_help.hpp"
#include "schedulers.hpp"
#include "work_stealing.hpp"

namespace weft::detail {

namespace {

thread_local bool t_on_pool_thread = false;

struct PoolThreadMark {
  PoolThreadMark() { t_on_pool_thread = true; }
  ~PoolThreadMark() { t_on_pool_thread = false; }
};

// One computation on the pool. Its idle threads help long tasks that offer
// parts of their work (task_help.hpp).
class Job final : public HelpSource {
 public:
  Job(RunState& state, unsigned nthreads) : state_(state), deques_(nthreads) {
    std::vector<std::uint32_t> roots(state.plan().root_units);
    std::sort(roots.begin(), roots.end());
    roots_left_.store(static_cast<std::uint32_t>(std::unique(roots.begin(), roots.end()) - roots.begin()));
    // Pushed in reverse, so that the caller pops them in plan order.
    std::vector<std::uint32_t> ready = state.initial_ready();
    for (auto it = ready.rbegin(); it != ready.rend(); ++it) deques_[0].push(*it);
    if (state.plan().size() == 0) done_.store(true);
  }

  unsigned idle_threads() const noexcept override { return idle_.load(std::memory_order_relaxed); }
  void offer(SharedParts& parts) override {
    board_.open(parts);
    sleep_.notify_all();
  }
  void withdraw(SharedParts& parts) override { board_.close(parts); }

  // The loop each thread runs until the job is done.
  void work(unsigned self) {
    PoolThreadMark mark;
    HelpSourceScope help(this);
    std::minstd_rand rng(self + 1);
    bool stopped = false;
    while (!done_.load(std::memory_order_acquire)) {
      if (state_.failed() && !stopped) {
        // After an error nothing new starts; the job ends once every thread
        // has stopped (the ones still running a task finish it first).
        stopped = true;
        if (stopped_.fetch_add(1, std::memory_order_acq_rel) + 1 == deques_.size()) finish_job();
        continue;
      }
      std::uint32_t u = stopped ? WorkStealingDeque::kNone : find_work(self, rng);
      if (u == WorkStealingDeque::kNone) {
        if (!stopped && board_.help_one()) {
          state_.count_helped_part();
          continue;
        }
        idle_.fetch_add(1, std::memory_order_relaxed);
        std::uint32_t epoch = sleep_.prepare_wait();
        if (done_.load(std::memory_order_acquire) ||
            (!stopped && (any_work() || state_.failed() || board_.has_unclaimed()))) {
          sleep_.cancel_wait();
        } else {
          sleep_.commit_wait(epoch);
        }
        idle_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      run_chain(u, self);
    }
  }

 private:
  std::uint32_t find_work(unsigned self, std::minstd_rand& rng) {
    std::uint32_t u = deques_[self].pop();
    if (u != WorkStealingDeque::kNone) return u;
    const auto n = static_cast<unsigned>(deques_.size());
    unsigned start = n > 1 ? static_cast<unsigned>(rng() % n) : 0;
    for (unsigned i = 0; i < n; ++i) {
      unsigned victim = (start + i) % n;
      if (victim == self) continue;
      u = deques_[victim].steal();
      if (u != WorkStealingDeque::kNone) return u;
    }
    return WorkStealingDeque::kNone;
  }

  bool any_work() const {
    for (const auto& d : deques_)
      if (!d.looks_empty()) return true;
    return false;
  }

  // Runs u, then keeps going with one of the dependents it made ready.
  void run_chain(std::uint32_t u, unsigned self) {
    while (u != WorkStealingDeque::kNone && !state_.failed()) {
      if (!state_.execute(u, self)) {
        sleep_.notify_all();  // sleeping threads must see the error and stop
        return;
      }
      std::uint32_t next = WorkStealingDeque::kNone;
      bool pushed = false;
      state_.finish(u, [&](std::uint32_t d) {
        if (next == WorkStealingDeque::kNone) {
          next = d;
        } else {
          deques_[self].push(d);
          pushed = true;
        }
      });
      if (pushed) sleep_.notify_one();
      if (state_.plan().is_root[u] && roots_left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        finish_job();
        return;
      }
      u = next;
    }
  }

  void finish_job() {
    done_.store(true, std::memory_order_release);
    sleep_.notify_all();
  }

  RunState& state_;
  std::vector<WorkStealingDeque> deques_;
  EventCount sleep_;
  HelpBoard board_;
  std::atomic<unsigned> idle_{0};  // threads that found no work
  std::atomic<bool> done_{false};
  std::atomic<std::uint32_t> roots_left_{0};
  std::atomic<std::size_t> stopped_{0};  // threads that saw the error and stopped
};

// The pool's threads wait for a job, work on it, and report back.
class ThreadPool {
 public:
  ~ThreadPool() { resize(0); }

  void run(RunState& state, unsigned nthreads) {
    std::lock_guard one_job_at_a_time(run_mutex_);
    if (nthreads == 0) nthreads = 1;
    if (threads_.size() + 1 != nthreads) resize(nthreads - 1);
    Job job(state, nthreads);
    active_.store(static_cast<std::uint32_t>(threads_.size()), std::memory_order_relaxed);
    job_.store(&job, std::memory_order_release);
    job_epoch_.fetch_add(1, std::memory_order_acq_rel);
    job_epoch_.notify_all();
    job.work(0);
    // The job lives on this stack: wait until every pool thread has left it.
    for (std::uint32_t a = active_.load(std::memory_order_acquire); a != 0;
         a = active_.load(std::memory_order_acquire))
      active_.wait(a, std::memory_order_acquire);
    job_.store(nullptr, std::memory_order_release);
  }

 private:
  void resize(std::size_t workers) {
    if (!threads_.empty()) {
      stopping_.store(true, std::memory_order_release);
      job_epoch_.fetch_add(1, std::memory_order_acq_rel);
      job_epoch_.notify_all();
      for (auto& t : threads_) t.join();
      threads_.clear();
      stopping_.store(false, std::memory_order_release);
    }
    for (std::size_t i = 0; i < workers; ++i)
      threads_.emplace_back([this, i, epoch = job_epoch_.load()] { serve(static_cast<unsigned>(i + 1), epoch); });
  }

  void serve(unsigned self, std::uint32_t seen) {
    for (;;) {
      job_epoch_.wait(seen, std::memory_order_acquire);
      seen = job_epoch_.load(std::memory_order_acquire);
      if (stopping_.load(std::memory_order_acquire)) return;
      Job* job = job_.load(std::memory_order_acquire);
      if (!job) continue;
      job->work(self);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) active_.notify_all();
    }
  }

  std::mutex run_mutex_;
  std::vector<std::thread> threads_;
  std::atomic<Job*> job_{nullptr};
  std::atomic<std::uint32_t> job_epoch_{0};
  std::atomic<std::uint32_t> active_{0};
  std::atomic<bool> stopping_{false};
};

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

bool on_pool_thread() noexcept { return t_on_pool_thread; }

void run_threads(RunState& state, unsigned nthreads) { pool().run(state, nthreads); }

}  // namespace weft::detail
