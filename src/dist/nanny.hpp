// The nanny: one thread per worker rank that watches the process's memory
// and tells rank 0 how the worker is doing (docs/architecture.md, "Nanny
// thread").
//
// Every monitor-interval it reads the resident set size (/proc/self/statm)
// and compares it with the memory limit: above *spill* it has the worker
// spill its least recently used results until RSS is below *target*; above
// *pause* the worker starts no new task until RSS falls below it again;
// above *terminate* the worker stops computing and tells rank 0, which fails
// the client's waits with MemoryError "worker.memory-exceeded". Every
// heartbeat-interval it queues a heartbeat (WorkerMetrics) for rank 0, but
// only while the worker makes progress: tasks executing and none finished
// for distributed.scheduler.worker-ttl means they hang, and the heartbeats
// stop, which is how rank 0 tells a hung worker from a busy one.
//
// The nanny never calls MPI: it reaches the worker through NannyHost, which
// queues what it has to say for the worker's comm thread and wakes it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "protocol.hpp"
#include "scheduler_state.hpp"
#include "weft/client.hpp"

namespace weft::dist {

/// The heartbeat operation's fields, after its op code (protocol.hpp).
void write_heartbeat(BatchWriter& w, const WorkerMetrics& m);
WorkerMetrics read_heartbeat(BatchReader& in);

/// What a worker says when its RSS passed the terminate threshold (the
/// terminating operation).
struct MemoryExceeded {
  std::uint64_t rss = 0;
  std::uint64_t limit = 0;
  std::string host;
  std::vector<std::pair<TaskId, std::uint64_t>> largest;  ///< results held, largest first, with nbytes
};
void write_terminating(BatchWriter& w, const MemoryExceeded& e);
MemoryExceeded read_terminating(BatchReader& in);
/// The message of MemoryError "worker.memory-exceeded": worker rank, host,
/// RSS, limit and the largest results held, named by `key_of`.
std::string describe(const MemoryExceeded& e, int rank, const std::function<std::string(TaskId)>& key_of);

/// "1.50 GiB", "300.00 MiB", "12 B".
std::string format_bytes(std::uint64_t bytes);

/// The process's resident set size in bytes (/proc/self/statm); 0 if unreadable.
std::uint64_t resident_bytes();
/// The highest resident set size the process has had (VmHWM in
/// /proc/self/status), in bytes; 0 if unreadable.
std::uint64_t peak_resident_bytes();

/// The name of the shared (network or parallel) file system `path` is on:
/// "NFS", "Lustre", "GPFS", "BeeGFS", "CIFS" or "SMB" (statfs's magic
/// numbers); nullopt for a local one, or when statfs fails.
std::optional<std::string> shared_file_system(const std::string& path);

/// Fractions of the memory limit (distributed.worker.memory.*); 0 turns
/// the threshold off.
struct MemoryThresholds {
  double target = 0.6;     ///< the store spills managed bytes above this; spilling by RSS stops below it
  double spill = 0.7;      ///< RSS above it: spill least recently used results
  double pause = 0.8;      ///< RSS above it: start no new task
  double terminate = 0.95; ///< RSS above it: stop computing, tell rank 0
};

struct NannyOptions {
  std::uint64_t memory_limit = 0;  ///< bytes; 0: memory is not watched
  MemoryThresholds thresholds;
  double monitor_interval = 0.1;   ///< seconds between RSS readings
  double heartbeat_interval = 0.5; ///< seconds between heartbeats
  double worker_ttl = 300;         ///< executing without a finished task this long: hung
  /// distributed.worker.memory.*, distributed.worker.heartbeat-interval and
  /// distributed.scheduler.worker-ttl, for a worker with `memory_limit`.
  static NannyOptions from_config(std::uint64_t memory_limit);
};

/// What the nanny asks of its worker. Called from the nanny's thread.
class NannyHost {
 public:
  /// The worker's metrics now (the memory fields are the nanny's to fill in).
  virtual WorkerMetrics metrics() = 0;
  /// Whether tasks are executing and none finished for `ttl` seconds.
  virtual bool hung(double ttl) = 0;
  /// Queues a heartbeat for rank 0.
  virtual void send_heartbeat(const WorkerMetrics& m) = 0;
  /// Spills one least recently used result; false when none can be.
  virtual bool spill_one() = 0;
  /// While paused, compute threads start no new task.
  virtual void set_paused(bool paused) = 0;
  /// RSS passed the terminate threshold: stop computing, tell rank 0.
  virtual void terminate(std::uint64_t rss, std::uint64_t limit) = 0;

 protected:
  ~NannyHost() = default;
};

class Nanny {
 public:
  /// Starts the thread; the first heartbeat goes out at once.
  Nanny(NannyHost& host, const NannyOptions& options);
  /// Stops and joins the thread.
  ~Nanny();
  Nanny(const Nanny&) = delete;
  Nanny& operator=(const Nanny&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  void loop();
  // Applies the thresholds to `rss`; returns the RSS after any spilling.
  std::uint64_t watch_memory(std::uint64_t rss);

  NannyHost& host_;
  const NannyOptions options_;
  bool paused_ = false;
  bool terminated_ = false;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace weft::dist
