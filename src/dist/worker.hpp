// A worker rank (docs/architecture.md, "Workers"): the comm thread (the
// rank's main thread, in serve()) turns the scheduler's batches into local
// work; compute threads run units whose inputs are all in the data store and
// ready their local dependents themselves, so a chain or subtree given to one
// worker runs without a round trip through rank 0. Its nanny thread
// (nanny.hpp) watches memory and sends rank 0 heartbeats.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data_store.hpp"
#include "nanny.hpp"
#include "options.hpp"
#include "../core/task_help.hpp"
#include "coordination.hpp"
#include "protocol.hpp"
#include "scheduler_state.hpp"
#include "transport.hpp"
#include "unit.hpp"
#include "worker_plugins.hpp"

namespace weft::dist {

// Its idle compute threads help long tasks that offer parts of their work
// (task_help.hpp), as the threads scheduler's do.
class Worker final : private NannyHost, private detail::HelpSource {
 public:
  /// `workers` is the worker ranks' own communicator (collective steps).
  /// From `options`: the compute threads, the resources (--resources) that
  /// bound how many constrained tasks run at once, the memory limit.
  Worker(Transport& transport, MPI_Comm workers, const WorkerOptions& options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Serves until rank 0 sends stop; returns the exit status it carries.
  /// Running tasks get distributed.worker.stop-grace to finish (after a drain,
  /// what is left of distributed.worker.lifetime-grace); tasks still
  /// running then are abandoned (see abandoned()). Call on the thread that
  /// owns the transport.
  int serve();
  /// Tasks were still running when serve() returned: their threads cannot be
  /// joined, so the process must finalise MPI and exit without destroying
  /// this worker (weft::serve does).
  bool abandoned() const noexcept { return abandoned_; }
  /// A task's Lock/Queue/... call (coordinate.cpp): sent to rank 0 through
  /// the comm thread; the calling compute thread waits for the answer.
  std::optional<Value> coordinate(detail::CoordRequest request);

 private:
  struct Assigned {
    std::shared_ptr<const UnitProgram> program;
    std::vector<TaskId> inputs;
    std::int32_t priority = 0;
    std::uint32_t missing = 0;  // inputs not yet in the store
    bool running = false;
    bool collective = false;
    // A partitioned collective step: each part's owner (worker = rank in
    // workers_); inputs of parts owned elsewhere are kNoTask.
    std::vector<int> owners;
    std::vector<std::pair<std::string, double>> needs;  // resources it holds while running
  };
  struct ReadyItem {
    std::int32_t priority;
    TaskId task;
    // priority_queue pops the largest: higher priority, then the lower id (graph order).
    bool operator<(const ReadyItem& o) const {
      return priority != o.priority ? priority < o.priority : task > o.task;
    }
  };

  // Why a unit failed, as the erred operation reports it.
  struct Failure {
    std::string key, type, message;
  };
  // Inside a catch block: the failure the exception being handled describes.
  // A TaskError names the step that threw; anything else (a malformed unit, a
  // result that cannot be encoded or combined) is blamed on the unit.
  static Failure current_failure(const UnitProgram& program);
  // With mutex_ held: `task` finished here; its result stays in the store.
  void report_done(TaskId task, Value result);
  // With mutex_ held: the scheduler hears why `task` failed; local waiters are dropped.
  void report_failure(TaskId task, const Failure& failure);

  void handle(InMessage& m);
  void on_compute(BatchReader& in, bool collective);
  // Comm thread: the collective step whose inputs are all here waits for the
  // other workers (a nonblocking barrier, so fetches keep being served), then runs.
  bool progress_collective();
  void run_collective(TaskId task);
  void on_free(TaskId task);
  // With mutex_ held: the plugins hear that `a` left before it ran (freed, stolen).
  void record_dropped(TaskId task, const Assigned& a);
  void on_steal(TaskId task);
  void send_value(int dest, TaskId task);
  void on_data(TaskId task, Value value);
  void on_store(TaskId task, Value value);
  void on_missing(TaskId task, int holder);
  // Rank 0 asks for a copy of `task` from worker `holder`, kept as this
  // worker's own (replicate, retire_workers); answered with acquired.
  void on_acquire(TaskId task, WorkerId holder);
  void report_acquired(TaskId task, bool ok);  // mutex_ held
  void on_run(BatchReader& in);
  // Client::register_worker_plugin / unregister_worker_plugin (Op::plugin).
  void on_plugin(BatchReader& in);
  // Answers a run or plugin operation: its result, or an error's type (or
  // id) and message.
  void answer_run(std::uint32_t request, std::shared_ptr<Value> result,
                  const std::optional<std::pair<std::string, std::string>>& error);
  void on_coord_reply(CoordReply reply);
  // The walltime drain (comm thread). Asks rank 0 to drain the job once this
  // worker's --lifetime has passed or it got a stop signal; after rank 0's
  // drain (on_drain: no new task starts), answers drained once the running
  // tasks ended or the grace passed. True if it sent something.
  bool progress_drain();
  void on_drain(double grace_seconds);
  bool flush_outgoing();
  void compute_loop();
  // With mutex_ held: a task's inputs are all here.
  void make_ready(TaskId task, Assigned& a);
  // With mutex_ held: a result arrived; ready the tasks waiting for it.
  void satisfy(TaskId task);
  // With mutex_ held: forget tasks that wait for `task`, which failed here.
  void drop_waiters(TaskId task);
  void release_replicas(const std::vector<TaskId>& inputs);
  // A task's inputs from the store (spilled ones read back), kept in `held`
  // while it runs; RuntimeError "lost" for one that is not there.
  std::vector<const Value*> read_inputs(const std::vector<TaskId>& inputs,
                                        std::vector<std::shared_ptr<const Value>>& held);

  // NannyHost: called on the nanny's thread.
  WorkerMetrics metrics() override;
  bool hung(double ttl) override;
  void send_heartbeat(const WorkerMetrics& m) override;
  bool spill_one() override;
  void set_paused(bool paused) override;
  void terminate(std::uint64_t rss, std::uint64_t limit) override;

  // HelpSource: called on compute threads.
  unsigned idle_threads() const noexcept override { return idle_threads_.load(std::memory_order_relaxed); }
  void offer(detail::SharedParts& parts) override;
  void withdraw(detail::SharedParts& parts) override { help_board_.close(parts); }

  Transport& transport_;
  const WorkerId self_;
  MPI_Comm workers_;
  std::string host_;
  DataStore store_;  // thread-safe on its own; spills outside mutex_
  std::vector<std::thread> threads_;
  detail::HelpBoard help_board_;
  std::atomic<unsigned> idle_threads_{0};  // compute threads waiting for work

  std::mutex mutex_;  // everything below, shared by the comm and compute threads
  std::condition_variable work_ready_;
  std::condition_variable coord_answered_;  // coordination calls waiting for rank 0
  std::unordered_map<std::uint64_t, CoordReply> coord_answers_;
  std::uint64_t next_coord_request_ = 0;
  std::unordered_map<TaskId, Assigned> assigned_;
  std::unordered_map<TaskId, std::vector<TaskId>> waiting_for_;
  // Inputs fetched from peers: the assigned tasks still reading each; it
  // leaves the store when none is left.
  std::unordered_map<TaskId, std::uint32_t> replica_users_;
  std::priority_queue<ReadyItem> ready_;
  std::map<std::string, double> resources_;    // what this worker has (hello tells rank 0)
  std::map<std::string, double> available_;    // not held by running tasks
  std::vector<ReadyItem> deferred_;            // ready, waiting for resources
  BatchWriter to_scheduler_;
  bool stopping_ = false;
  bool paused_ = false;       // the nanny's pause: no new task starts
  bool terminated_ = false;   // past the terminate threshold: none ever again
  bool draining_ = false;     // the walltime drain: none ever again
  std::uint32_t executing_ = 0;
  std::chrono::steady_clock::time_point last_progress_;  // a task finished, or the first started
  TaskId collective_ready_ = kNoTask;  // a collective step with all its inputs here
  std::unordered_set<TaskId> fetching_;  // inputs asked of peers
  std::unordered_set<TaskId> acquiring_;  // fetches to keep (on_acquire), not answered yet

  // Comm thread only.
  const std::thread::id comm_thread_ = std::this_thread::get_id();  // made on it
  std::unordered_map<int, BatchWriter> to_rank_;
  bool stop_received_ = false;
  MPI_Request collective_barrier_ = MPI_REQUEST_NULL;
  int status_ = 0;
  bool abandoned_ = false;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::optional<double> lifetime_seconds_;  // --lifetime
  bool drain_asked_ = false;                // rank 0 was asked to drain the job
  std::optional<std::chrono::steady_clock::time_point> drain_deadline_;  // end of the drain's grace
  bool drained_sent_ = false;

  // Its hooks run on the comm thread; transitions are recorded under mutex_.
  WorkerPlugins plugins_;

  std::optional<Nanny> nanny_;  // last: it calls into everything above
};

}  // namespace weft::dist
