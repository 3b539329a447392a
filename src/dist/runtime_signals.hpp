// SIGTERM / SIGINT during a distributed run: the handler only records the
// signal (async-signal-safe); rank 0's comm thread reads it and stops the
// client's waits, workers carry on until rank 0 tells them to stop.
#pragma once

namespace weft::dist {

/// Installs the handlers (weft::init on a launched run).
void install_stop_signals();
/// The signal received (SIGTERM, SIGINT), or 0.
int stop_signal() noexcept;

}  // namespace weft::dist
