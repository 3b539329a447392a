// The process-wide callback registry behind add_callback/remove_callback.
//
// Every computation asks for the registered callbacks, usually to find none:
// that path is one atomic load, with no lock and no allocation.
#include "weft/callbacks.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <utility>

#include "weft/error.hpp"

namespace weft {
namespace {

// Trivially destructible and constant-initialised, so it is valid at any
// point of static initialisation or destruction.
constinit std::atomic<std::size_t> registered_count{0};

struct Registry {
  std::mutex mutex;
  std::vector<CallbackPtr> callbacks;  // in registration order
};

Registry& registry() {
  // Never destroyed: a CallbackScope in a static object may still remove its
  // callback during static destruction.
  static Registry* const instance = new Registry;
  return *instance;
}

}  // namespace

void add_callback(CallbackPtr cb) {
  if (!cb) throw ValueError("null-callback", "add_callback: the callback is null");
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  // A set, as Dask's Callback.active: registering twice registers once.
  if (std::find(r.callbacks.begin(), r.callbacks.end(), cb) != r.callbacks.end()) return;
  r.callbacks.push_back(std::move(cb));
  registered_count.store(r.callbacks.size(), std::memory_order_release);
}

void remove_callback(const CallbackPtr& cb) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::erase(r.callbacks, cb);
  registered_count.store(r.callbacks.size(), std::memory_order_release);
}

namespace detail {

std::vector<CallbackPtr> registered_callbacks() {
  if (registered_count.load(std::memory_order_acquire) == 0) return {};
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.callbacks;
}

}  // namespace detail
}  // namespace weft
