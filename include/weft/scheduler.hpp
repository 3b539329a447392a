// weft/scheduler.hpp - choosing the scheduler that runs a computation.
//
// As in Dask, per call (`x.compute(weft::scheduler::sync)`), scoped
// (`weft::config::set scope{{"scheduler", "sync"}};`) or global (config file,
// WEFT_SCHEDULER). C++ has no GIL, so Dask's "processes" scheduler has no use
// here: processes on one node are the distributed scheduler's job.
#pragma once

#include <cstdint>
#include <string_view>

namespace weft {

enum class SchedulerKind : std::uint8_t {
  sync,     ///< one thread, tasks in order: for debugging (Dask's "synchronous")
  threads,  ///< a work-stealing pool of threads (Dask's "threads")
  distributed,  ///< the worker ranks of weft::main (Dask's distributed Client)
};

/// A tag to pass to compute(): weft::scheduler::sync, weft::scheduler::threads.
struct SchedulerChoice {
  SchedulerKind kind;
};

namespace scheduler {
inline constexpr SchedulerChoice sync{SchedulerKind::sync};
inline constexpr SchedulerChoice threads{SchedulerKind::threads};
inline constexpr SchedulerChoice distributed{SchedulerKind::distributed};
}  // namespace scheduler

/// "sync", "threads" or "distributed".
std::string_view to_string(SchedulerKind kind) noexcept;
/// Accepts Dask's names too: "sync", "synchronous", "single-threaded",
/// "threads", "threading", "distributed". ValueError "unknown-scheduler" otherwise.
SchedulerKind parse_scheduler(std::string_view name);

}  // namespace weft
