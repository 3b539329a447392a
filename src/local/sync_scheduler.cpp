// The sync scheduler: every unit in plan order on the calling thread.
// Plan order is depth-first, so results are freed as early as on any
// scheduler, and a debugger sees tasks run one after the other.
#include "schedulers.hpp"

namespace weft::detail {

void run_sync(RunState& state) {
  const std::uint32_t n = static_cast<std::uint32_t>(state.plan().size());
  for (std::uint32_t u = 0; u < n; ++u) {
    if (!state.execute(u, 0)) return;
    state.finish(u, [](std::uint32_t) {});
  }
}

}  // namespace weft::detail
