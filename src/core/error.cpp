// Error types: message formatting shared by every weft error.
#include "weft/error.hpp"

#include <utility>

namespace weft {

Error::Error(std::string_view kind, std::string_view id, const std::string& text)
    : std::runtime_error("[weft." + std::string(kind) + "." + std::string(id) + "] " + text),
      id_(std::string(kind) + "." + std::string(id)),
      text_(text) {}

TaskError::TaskError(std::string key, std::string original_message, std::exception_ptr original)
    : Error("task", "failed", "task '" + key + "' raised: " + original_message),
      key_(std::move(key)),
      original_message_(std::move(original_message)),
      original_(std::move(original)) {}

void TaskError::rethrow_original() const {
  if (original_) std::rethrow_exception(original_);
  throw *this;
}

RemoteError::RemoteError(std::string type, const std::string& message, int rank)
    : Error("task", "remote", type + " on worker rank " + std::to_string(rank) + ": " + message),
      type_(std::move(type)),
      rank_(rank) {}

}  // namespace weft
