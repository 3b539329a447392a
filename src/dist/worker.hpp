// A worker rank (docs/architecture.md, "Workers"): the comm thread (the
// rank's main thread, in serve()) turns the scheduler's batches into local
// work; compute threads run units whose inputs are all in the data store and
// ready their local dependents themselves, so a chain or subtree given to one
// worker runs without a round trip through rank 0.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <string>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "protocol.hpp"
#include "scheduler_state.hpp"
#include "transport.hpp"
#include "unit.hpp"

namespace weft::dist {

class Worker {
 public:
  /// `workers` is the worker ranks' own communicator (collective steps).
  /// `resources` (--resources) bound how many constrained tasks run at once.
  Worker(Transport& transport, unsigned nthreads, MPI_Comm workers, std::map<std::string, double> resources = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Serves until rank 0 sends stop; returns the exit status it carries.
  /// Call on the thread that owns the transport.
  int serve();

 private:
  struct Assigned {
    std::shared_ptr<const UnitProgram> program;
    std::vector<TaskId> inputs;
    std::int32_t priority = 0;
    std::uint32_t missing = 0;  // inputs not yet in the store
    bool running = false;
    bool collective = false;
    std::vector<std::pair<std::string, double>> needs;  // resources it holds while running
  };
  struct Stored {
    std::shared_ptr<const Value> value;
    std::uint64_t nbytes = 0;
    bool replica = false;       // fetched from a peer: dropped when no local task needs it
    std::uint32_t users = 0;    // replicas: assigned tasks still reading it
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
  void on_steal(TaskId task);
  void send_value(int dest, TaskId task);
  void on_data(TaskId task, Value value);
  void on_store(TaskId task, Value value);
  void on_missing(TaskId task, int holder);
  void on_run(BatchReader& in);
  bool flush_outgoing();
  void compute_loop();
  // With mutex_ held: a task's inputs are all here.
  void make_ready(TaskId task, Assigned& a);
  // With mutex_ held: a result arrived; ready the tasks waiting for it.
  void satisfy(TaskId task);
  // With mutex_ held: forget tasks that wait for `task`, which failed here.
  void drop_waiters(TaskId task);
  void release_replicas(const std::vector<TaskId>& inputs);

  Transport& transport_;
  const WorkerId self_;
  MPI_Comm workers_;
  std::vector<std::thread> threads_;

  std::mutex mutex_;  // everything below, shared by the comm and compute threads
  std::condition_variable work_ready_;
  std::unordered_map<TaskId, Assigned> assigned_;
  std::unordered_map<TaskId, std::vector<TaskId>> waiting_for_;
  std::unordered_map<TaskId, Stored> store_;
  std::priority_queue<ReadyItem> ready_;
  std::map<std::string, double> resources_;    // what this worker has (hello tells rank 0)
  std::map<std::string, double> available_;    // not held by running tasks
  std::vector<ReadyItem> deferred_;            // ready, waiting for resources
  BatchWriter to_scheduler_;
  bool stopping_ = false;
  TaskId collective_ready_ = kNoTask;  // a collective step with all its inputs here

  // Comm thread only.
  std::unordered_map<int, BatchWriter> to_rank_;
  std::unordered_set<TaskId> fetching_;
  bool stop_received_ = false;
  MPI_Request collective_barrier_ = MPI_REQUEST_NULL;
  int status_ = 0;
};

}  // namespace weft::dist
