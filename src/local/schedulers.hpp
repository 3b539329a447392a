// The local schedulers: sync (one thread) and threads (work stealing).
#pragma once

#include "../core/run_state.hpp"

namespace weft::detail {

/// Runs every unit in plan order on the calling thread.
void run_sync(RunState& state);

/// Runs the plan on a process-wide pool of `nthreads` threads, the calling
/// thread being one of them. One computation at a time uses the pool; a
/// second caller waits for it.
void run_threads(RunState& state, unsigned nthreads);

/// True inside a task run by the threads scheduler: a computation started
/// there runs on the sync scheduler, since waiting for the pool from one of
/// its own threads could deadlock.
bool on_pool_thread() noexcept;

}  // namespace weft::detail
