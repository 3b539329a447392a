// Stop signals during a distributed run (docs/architecture.md, "Walltime"):
// the handler only records the signal (async-signal-safe). Rank 0's comm
// thread, or a worker's comm thread that asks rank 0, turns it into the
// job's drain; every rank then exits with 128 + the signal.
#pragma once

#include <string>

namespace weft::dist {

/// Installs the handlers of SIGTERM, SIGINT and SIGUSR1 (weft::init on a
/// launched run). SIGUSR1 because Open MPI's mpirun forwards it to every rank
/// and lets the job go on, while its SIGTERM aborts the job within a second.
void install_stop_signals();
/// The signal received (SIGTERM, SIGINT, SIGUSR1), or 0.
int stop_signal() noexcept;
/// "SIGTERM" for SIGTERM, for messages.
std::string signal_name(int sig);
/// On a worker: rank 0 got a stop signal (its notice, kStopSignalTag, was
/// read by the comm loop, or, inside a collective step on the comm thread,
/// has arrived unread). False elsewhere.
bool rank0_stopped() noexcept;

/// The exit status of a job drained because a worker's --lifetime passed
/// (as timeout(1) exits when its time is up).
inline constexpr int kLifetimeStatus = 124;

}  // namespace weft::dist
