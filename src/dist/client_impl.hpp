// ClientImpl: what a Client and its Futures stand on.
//
// Distributed (weft::main on several ranks): the client thread (the user's
// function) turns calls into requests; rank 0's comm thread (scheduler_rank.cpp)
// runs SchedulerState and the Transport, and fills in the futures. The two
// threads share `mutex_`: the request queue, the futures by id, and each
// FutureState's fields. The comm thread never holds a FutureState reference
// past a request, so a Future's destructor (which queues the release) may run
// on either thread.
//
// Local (no launcher, or one rank): submissions run in order on one
// background thread, each through weft's threads scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "../core/exec_plan.hpp"
#include "coordinate.hpp"
#include "protocol.hpp"
#include "scheduler_state.hpp"
#include "transport.hpp"
#include "weft/callbacks.hpp"
#include "weft/client.hpp"

namespace weft::detail {

struct FutureState {
  FutureState(ClientImpl& c, Key k) : client(&c), key(std::move(k)) {}
  ~FutureState();
  ClientImpl* client;
  Key key;
  // Guarded by client->mutex_.
  dist::TaskId id = dist::kNoTask;  ///< set by the comm thread when it adds the task
  FutureStatus status = FutureStatus::pending;
  bool gather_requested = false;
  Value value;                      ///< once gathered (or computed locally)
  std::exception_ptr error;
};

/// A future's result as a task of a graph: the input of tasks submitted
/// later. Distributed, the scheduler already knows it by id; locally, run()
/// copies the value.
class FutureTask final : public Task {
 public:
  explicit FutureTask(FutureStatePtr state) : Task(state->key, false), state_(std::move(state)) {}
  Value run(std::span<const Value* const>) const override;
  bool external() const noexcept override { return true; }
  const FutureStatePtr& state() const noexcept { return state_; }

 private:
  FutureStatePtr state_;
};

class ClientImpl {
 public:
  using CallbacksPtr = std::shared_ptr<const std::vector<CallbackPtr>>;

  /// Local: tasks run on this process's threads.
  ClientImpl();
  /// Distributed: starts rank 0's comm thread over `transport`.
  ClientImpl(std::unique_ptr<dist::Transport> transport, dist::SchedulerOptions options);
  ~ClientImpl();
  ClientImpl(const ClientImpl&) = delete;
  ClientImpl& operator=(const ClientImpl&) = delete;

  bool distributed() const noexcept { return transport_ != nullptr; }
  int workers() const noexcept { return nworkers_; }

  std::vector<FutureStatePtr> submit_graph(std::span<const TaskRef> roots, const SubmitOptions& options);
  std::vector<FutureStatePtr> scatter(std::vector<Value> values, const ScatterOptions& options);
  /// Waits for the states, brings their values here; throws the first error.
  void gather(std::span<const FutureStatePtr> states);
  void gather_one(FutureState& s);
  std::vector<Value> run_on_workers(const Task& task);
  void cancel(FutureState& s);
  std::map<std::string, std::vector<int>> who_has(std::span<const FutureStatePtr> states);
  std::map<int, std::vector<std::string>> has_what();
  SchedulerInfo scheduler_info();
  /// Client::restart, retire_workers, replicate, rebalance: each returns
  /// once the results it moves are where they go.
  void restart();
  void retire_workers(const std::vector<int>& ranks);
  void replicate(std::span<const FutureStatePtr> states, std::uint32_t n);
  /// `all`: every result on the cluster (broadcast data excepted: it is on
  /// every worker already), else the states' results.
  void rebalance(std::span<const FutureStatePtr> states, bool all);
  /// Blocks until `done()` (checked under mutex_); RuntimeError "terminated"
  /// once the job drains (a stop signal, a worker's --lifetime), the cluster's error (a
  /// worker's MemoryError) once one happened.
  template <class Done>
  void wait_until(Done done) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done() || terminated_ || cluster_error_; });
    if (!done()) throw_terminated();
  }
  /// Waits for the futures `plan` reads (its FutureTask units) and fetches their values.
  void settle(const ExecPlan& plan);
  /// Finds live futures by key for build_plan; the tasks it makes are kept in `keep`.
  ExternalResolver resolver(std::vector<TaskPtr>& keep);
  /// weft::compute with the distributed scheduler: runs the plan's units as
  /// tasks and returns the roots' values. `callbacks` hear task_finish for each
  /// unit (thread = the worker's index), from rank 0's comm thread.
  std::vector<Value> compute_plan(const ExecPlan& plan, const std::vector<CallbackPtr>& callbacks);
  /// Rank 0's side of the shutdown: workers get `status`, the comm thread
  /// stops. After a drain began, the stop waits for its end and carries the
  /// drain's status instead; returns the status the workers got.
  int shutdown(int status);
  /// A Lock/Queue/... call (coordinate.cpp), from any thread but the comm
  /// thread: rank 0's comm thread answers it, or the local coordinator.
  std::optional<Value> coordinate(CoordRequest request);
  /// Client::register_worker_plugin / unregister_worker_plugin
  /// (worker_plugins.cpp): on every worker, or the local one.
  void register_worker_plugin(const std::string& name, const Task& factory);
  void unregister_worker_plugin(const std::string& name);
  /// A live future of this client holds the result of `key`: locally, a unit
  /// of that key only copies it (FutureTask), which plugins do not hear of.
  bool holds_result(const Key& key);
  /// The scheduler keeps the future's task until it finished (fire_and_forget).
  void fire_and_forget(FutureStatePtr state);

  std::mutex mutex_;
  std::condition_variable changed_;

 private:
  friend struct FutureState;
  [[noreturn]] void throw_terminated() const;
  // --- client thread side (client.cpp) ---
  /// Values a unit's bytes name (task_wire's attachments: from_array's
  /// blocks), sent beside them from their own memory; shared by the
  /// submission, the record and the sends in flight.
  using AttachedValues = std::shared_ptr<const std::vector<Value>>;
  struct UnitSubmission {
    std::vector<std::byte> wire;
    AttachedValues attached;               ///< values the wire's constant tasks name, sent beside it
    Key key;
    std::vector<std::uint32_t> inputs;     ///< indices into the request's units
    FutureStatePtr existing;               ///< an earlier future instead of a new task
    FutureStatePtr future;                 ///< the client wants this one
    std::int32_t priority = 0;
    dist::WorkerId restriction = dist::kNoWorker;
    bool collective = false;
    CallbacksPtr callbacks;                ///< a computation's callbacks, or null
    std::vector<std::pair<std::string, double>> needs;  ///< resources it holds while running
    std::vector<dist::WorkerId> able;      ///< with needs: the workers that have them
    std::uint32_t retries = 0;
  };
  struct Request {
    enum class Kind : std::uint8_t { submit, release, gather, cancel, scatter, run, call, stop };
    explicit Request(Kind k) : kind(k) {}
    Kind kind;
    std::vector<UnitSubmission> units;     ///< submit
    dist::TaskId task = dist::kNoTask;     ///< release, gather, cancel
    std::vector<Value> values;             ///< scatter
    std::vector<FutureStatePtr> futures;   ///< scatter: one per value
    ScatterOptions scatter;
    std::vector<std::byte> wire;           ///< run
    std::optional<std::string> plugin;     ///< run: Op::plugin under this name instead of Op::run
    int status = 0;                        ///< stop
    std::function<void()> call;            ///< call: runs on the comm thread (queries)
  };
  /// replicate, rebalance: waits for `states` to be done and returns the ids
  /// of those that finished (client thread).
  std::vector<dist::TaskId> finished_ids(std::span<const FutureStatePtr> states);
  /// Runs `fn` on the comm thread and waits for it (who_has, has_what).
  void call_on_comm_thread(std::function<void()> fn);
  void post(Request r);  // mutex_ held
  FutureStatePtr live_future(const Key& key);  // mutex_ held
  /// A state per root unit of `plan` (registered by key).
  std::vector<FutureStatePtr> root_states(const ExecPlan& plan);
  std::vector<FutureStatePtr> submit_plan(const ExecPlan& plan, const SubmitOptions& options,
                                          CallbacksPtr callbacks = nullptr);
  std::vector<FutureStatePtr> run_local(std::span<const TaskRef> roots, const ExecPlan& plan,
                                        std::vector<TaskPtr> externals);
  void gather_raw(std::span<FutureState* const> states);

  // --- comm thread side (scheduler_rank.cpp) ---
  void comm_loop();
  void handle_requests(std::deque<Request>& requests);
  void handle_message(dist::InMessage& m);
  void apply_instructions();
  bool send_batches();
  void write_assign(dist::BatchWriter& w, dist::TaskId task, bool collective);
  void tell_callbacks(dist::TaskId task, dist::WorkerId worker, bool failed);
  void record_heartbeat(dist::WorkerId worker, dist::BatchReader& in);
  // A worker passed its memory's terminate threshold: every wait fails from now on.
  void worker_terminating(dist::WorkerId worker, dist::BatchReader& in);
  dist::BatchWriter& to_worker(dist::WorkerId w);
  // Resilience: workers silent past worker-ttl while they owe answers are
  // removed; gathers from a removed worker wait for the result computed again.
  void check_workers();
  void remove_worker(dist::WorkerId w, const std::string& reason);
  void request_gather(dist::TaskId task);
  // After acquires were sent or answered, or a worker removed: once none is
  // left, the retiring workers are removed and the client's waits for moves end.
  void finish_moves();
  // The walltime drain (docs/architecture.md, "Walltime"): workers start no
  // new task, the client's waits fail; once every worker has answered
  // drained (its running tasks ended, or the grace passed) the final state
  // line is written and a stop the client asked for meanwhile is sent.
  void start_drain(std::int32_t status, std::string reason);
  void drain_on_signal();
  void progress_drain();
  void send_stop(std::int32_t status);
  /// The error of a task that erred because `cause` lost its worker.
  std::exception_ptr lost_error(dist::TaskId cause, const dist::LostTask& lost) const;
  // Coordination (coordinate.cpp): serve a request of `rank`, answer timed-out
  // ones (true if any), deliver the state's answers (`name`: the object).
  void coord_handle(int rank, std::uint64_t request_id, CoordRequest request);
  bool coord_expire();
  void coord_route(const std::string& name);
  void coord_deliver(dist::CoordReply reply, const std::string& name);
  // fire_and_forget: drop the scheduler's reference on reported tasks.
  void release_fired(std::span<const dist::Instruction> reports);

  struct Record {
    std::vector<std::byte> wire;
    AttachedValues attached;
    Key key;
    std::int32_t priority = 0;
    std::string error_key, error_type, error_message;
    int error_rank = 0;
    bool broadcast = false;  ///< scattered to every worker: freed everywhere
    CallbacksPtr callbacks;  ///< told when the task finishes (weft::compute's callbacks)
    std::vector<std::pair<std::string, double>> needs;
  };
  struct RunCall {
    enum class Asked : std::uint8_t { no, waiting, answered };  // per worker; removed ones are not waited for
    std::vector<Asked> asked;
    std::vector<Value> results;
    std::vector<std::pair<std::string, std::string>> errors;
    int waiting = -1;  ///< workers asked that have not answered; -1 until sent
  };
  /// Sends `wire` to every worker still in the cluster (as Op::plugin named
  /// `plugin` when given, else Op::run) and waits for their answers.
  RunCall run_everywhere(std::vector<std::byte> wire, std::optional<std::string> plugin);

  // Shared, guarded by mutex_.
  std::deque<Request> requests_;
  std::unordered_map<dist::TaskId, FutureState*> futures_by_id_;
  std::unordered_map<Key, std::weak_ptr<FutureState>> futures_by_key_;
  std::unordered_map<std::uint32_t, RunCall> runs_;
  std::uint32_t next_run_ = 0;
  bool terminated_ = false;
  std::string drain_reason_;  ///< why the job drains (the terminated error's text)
  std::unordered_map<std::uint64_t, dist::CoordReply> coord_answers_;  ///< rank 0's calls, answered
  std::uint64_t next_coord_request_ = 0;
  std::exception_ptr cluster_error_;  ///< fails every wait once set
  bool moves_done_ = true;            ///< no acquire is pending (finish_moves)

  // Comm thread only.
  std::unique_ptr<dist::Transport> transport_;
  std::optional<dist::SchedulerState> state_;
  std::vector<Record> records_;
  std::vector<dist::BatchWriter> to_workers_;
  std::vector<dist::Instruction> instructions_;
  std::uint32_t next_scatter_worker_ = 0;
  bool stopping_ = false;
  int nworkers_ = 0;
  std::vector<std::map<std::string, double>> worker_resources_;  // per worker, from its hello
  std::vector<std::chrono::steady_clock::time_point> last_heard_;  // per worker; idle ones count as heard
  double worker_ttl_ = 0;                                  // seconds; distributed.scheduler.worker-ttl
  double drain_grace_ = 0;                                 // seconds; distributed.worker.lifetime-grace
  struct Drain {
    std::int32_t status = 0;           // every rank's exit status
    std::string reason;
    std::vector<bool> answered;        // per worker: drained came
    std::uint32_t abandoned = 0;       // tasks still running after the grace
    std::size_t unfinished = 0;        // tasks waiting, queued or processing when it began
    std::size_t ended = 0;             // done or erred answers since
    bool finished = false;             // the final state line is written
    bool stop_requested = false;       // the client's stop waits for the end
  };
  std::optional<Drain> drain_;
  bool signal_told_ = false;           // the workers got kStopSignalTag
  std::uint64_t tasks_done_ = 0;       // done answers so far, for the drain's line
  std::int32_t stop_status_ = 0;       // what stop carried (shutdown returns it)
  std::unordered_map<dist::TaskId, dist::WorkerId> gathering_;  // gathers sent, not yet answered
  std::vector<dist::TaskId> gather_later_;                 // gathers of results being computed again
  std::vector<dist::WorkerId> retiring_;                   // retire_workers: removed once their results moved
  struct Heartbeat {
    WorkerMetrics metrics;
    std::chrono::steady_clock::time_point at;
    std::uint64_t count = 0;  ///< heartbeats so far
  };
  std::vector<Heartbeat> heartbeats_;  // per worker, the latest
  std::thread comm_thread_;

  // Local mode: one background thread runs submissions in order.
  std::deque<std::function<void()>> local_jobs_;
  bool local_stop_ = false;
  std::thread local_thread_;

  // Coordination objects; last, so datasets holding futures go before the
  // rest. The state is the comm thread's (distributed) or local_coordination_'s.
  dist::CoordinationState coordination_;
  std::vector<dist::CoordReply> coord_replies_;
  std::unordered_set<dist::TaskId> fire_and_forget_;  ///< tasks the scheduler keeps for fire_and_forget
  dist::LocalCoordinator local_coordination_;
};

/// Rank 0's client when weft::main runs on several ranks; nullptr otherwise.
ClientImpl* distributed_client() noexcept;
/// The client of weft::main / weft::init (local or distributed); nullptr otherwise.
ClientImpl* active_client() noexcept;

}  // namespace weft::detail
