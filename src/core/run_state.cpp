#include "run_state.hpp"

#include <algorithm>

namespace weft::detail {

RunState::RunState(const ExecPlan& plan, std::vector<CallbackPtr> callbacks, bool track_memory,
                   const RootSink* sink)
    : plan_(plan),
      values_(plan.size()),
      waiting_(new std::atomic<std::uint32_t>[plan.size()]),
      remaining_(new std::atomic<std::uint32_t>[plan.size()]),
      callbacks_(std::move(callbacks)),
      track_memory_(track_memory),
      sink_(sink) {
  for (std::uint32_t u = 0; u < plan.size(); ++u) {
    waiting_[u].store(plan.input_offsets[u + 1] - plan.input_offsets[u], std::memory_order_relaxed);
    remaining_[u].store(plan.dependent_offsets[u + 1] - plan.dependent_offsets[u],
                        std::memory_order_relaxed);
  }
  if (sink_) {
    sink_offsets_.assign(plan.size() + 1, 0);
    for (std::uint32_t u : plan.root_units) ++sink_offsets_[u + 1];
    for (std::uint32_t u = 0; u < plan.size(); ++u) sink_offsets_[u + 1] += sink_offsets_[u];
    sink_positions_.resize(plan.root_units.size());
    std::vector<std::uint32_t> filled(sink_offsets_.begin(), sink_offsets_.end() - 1);
    for (std::size_t p = 0; p < plan.root_units.size(); ++p) sink_positions_[filled[plan.root_units[p]]++] = p;
  }
}

std::vector<std::uint32_t> RunState::initial_ready() const {
  std::vector<std::uint32_t> ready;
  for (std::uint32_t u = 0; u < plan_.size(); ++u)
    if (plan_.input_offsets[u + 1] == plan_.input_offsets[u]) ready.push_back(u);
  return ready;
}

bool RunState::execute(std::uint32_t u, unsigned thread) {
  const Key& key = plan_.task[u]->key();
  for (const CallbackPtr& cb : callbacks_) cb->task_start(key, thread);
  bool ok = true;
  try {
    values_[u] = run_unit(plan_, u, values_);
    if (track_memory_) account(1, static_cast<std::int64_t>(values_[u].nbytes()));
    if (sink_ && plan_.is_root[u]) deliver_root(u);
  } catch (...) {
    ok = false;
    record_error(std::current_exception());
  }
  for (const CallbackPtr& cb : callbacks_) cb->task_finish(key, thread, !ok);
  return ok;
}

void RunState::deliver_root(std::uint32_t u) {
  for (std::uint32_t i = sink_offsets_[u]; i < sink_offsets_[u + 1]; ++i) (*sink_)(sink_positions_[i], values_[u]);
  if (plan_.dependent_offsets[u + 1] != plan_.dependent_offsets[u]) return;  // released after its dependents
  if (track_memory_) account(-1, -static_cast<std::int64_t>(values_[u].nbytes()));
  values_[u].reset();
}

void RunState::release_inputs(std::uint32_t u) {
  for (std::uint32_t in : plan_.inputs_of(u)) {
    if (remaining_[in].fetch_sub(1, std::memory_order_acq_rel) != 1 || (plan_.is_root[in] && !sink_)) continue;
    if (track_memory_) account(-1, -static_cast<std::int64_t>(values_[in].nbytes()));
    values_[in].reset();
  }
}

void RunState::account(std::int64_t results, std::int64_t bytes) {
  auto raise = [](std::atomic<std::size_t>& peak, std::int64_t now) {
    auto v = static_cast<std::size_t>(std::max<std::int64_t>(now, 0));
    std::size_t seen = peak.load(std::memory_order_relaxed);
    while (v > seen && !peak.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
  };
  raise(peak_results_, live_results_.fetch_add(results, std::memory_order_relaxed) + results);
  raise(peak_bytes_, live_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
}

void RunState::record_error(std::exception_ptr e) {
  std::lock_guard lock(error_mutex_);
  if (!error_) error_ = std::move(e);
  failed_.store(true, std::memory_order_release);
}

void RunState::rethrow_if_failed() const {
  if (error_) std::rethrow_exception(error_);
}

std::vector<Value> RunState::take_roots() {
  if (sink_) return {};
  // A root asked for twice: every request but the last gets a copy.
  std::vector<std::uint32_t> asked(plan_.size(), 0);
  for (std::uint32_t u : plan_.root_units) ++asked[u];
  std::vector<Value> out;
  out.reserve(plan_.root_units.size());
  for (std::uint32_t u : plan_.root_units)
    out.push_back(--asked[u] > 0 ? values_[u].clone() : std::move(values_[u]));
  return out;
}

}  // namespace weft::detail
