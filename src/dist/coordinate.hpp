// How a Lock / Queue / ... call reaches the CoordinationState
// (docs/architecture.md, "Coordination"):
//   - in a worker rank's task: Worker::coordinate sends a coord operation to
//     rank 0 through the comm thread and waits for its coord_reply;
//   - on rank 0 with workers: ClientImpl::coordinate hands it to the comm
//     thread, which owns the state (it also serves the workers' requests and
//     expires timeouts between polls);
//   - otherwise (no launcher, one rank, or no weft::main at all): a
//     LocalCoordinator runs the state in this process under a mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "coordination.hpp"

namespace weft::dist {

class Worker;

/// The state machine for the threads of one process: a caller answered at
/// once returns; one that must wait sleeps on a condition variable until
/// another caller's request answers it or the earliest deadline passes.
class LocalCoordinator {
 public:
  std::optional<Value> call(detail::CoordRequest request);

 private:
  void collect();  // mutex_ held: moves the state's answers to answers_

  std::mutex mutex_;
  std::condition_variable answered_;
  CoordinationState state_;
  std::unordered_map<std::uint64_t, CoordReply> answers_;
  std::vector<CoordReply> scratch_;
  std::uint64_t next_request_ = 0;
};

/// The worker serving on this rank (its tasks' calls go through it); set by
/// the Worker for its lifetime.
void set_serving_worker(Worker* worker) noexcept;

/// RuntimeError "coordination-on-comm-thread": a call from the thread that
/// would have to deliver its answer.
[[noreturn]] void throw_on_comm_thread(int rank);

}  // namespace weft::dist
