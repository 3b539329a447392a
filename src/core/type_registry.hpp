// TypeRegistry: what every rank of the binary registered under a stable type
// id (value types in serialize.cpp, task types in task_wire.cpp), so that a
// receiver can rebuild what a sender encoded.
//
// Registrations run during static initialisation, in any order, possibly
// from several shared objects. The same type registered twice is fine; two
// different types with one id (internal-linkage types of the same name in two
// sources share a mangled name) make that id undecodable, with an error naming
// both rather than a guess.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <typeinfo>
#include <unordered_map>

#include "weft/detail/demangle.hpp"
#include "weft/error.hpp"

namespace weft::detail {

/// How the errors of one registry read.
struct TypeRegistryWords {
  const char* thing;          ///< "value", "task"
  const char* kind;           ///< "type", "task type"
  const char* unknown_id;     ///< TypeError id for an id nobody registered
  const char* corrupt;        ///< "the header is corrupt", "the bytes are corrupt"
  const char* collision_cause;   ///< after "share it" in the collision message ("" for none)
  const char* collision_advice;  ///< at the end of the collision message ("" for none)
};

/// "0x" and 16 hex digits.
inline std::string type_id_text(std::uint64_t id) {
  char text[19];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(id));
  return text;
}

template <class Entry>
class TypeRegistry {
 public:
  explicit TypeRegistry(TypeRegistryWords words) : words_(words) {}

  void add(std::uint64_t id, const std::type_info& type, Entry entry) {
    std::unique_lock lock(mutex_);
    auto [it, inserted] = entries_.try_emplace(id, Registered{entry, &type, nullptr});
    if (!inserted && *it->second.type != type) it->second.colliding = &type;
  }

  const Entry& find(std::uint64_t id) const {
    std::shared_lock lock(mutex_);
    auto it = entries_.find(id);
    const std::string what = std::string("cannot decode a ") + words_.thing + " with type id " + type_id_text(id);
    if (it == entries_.end())
      throw TypeError(words_.unknown_id, what + ": no " + words_.kind +
                                             " in this process has that id (the sender runs another binary, "
                                             "or " + words_.corrupt + ")");
    if (it->second.colliding)
      throw TypeError("id-collision", what + ": " + words_.kind + "s '" + demangle(*it->second.type) + "' and '" +
                                          demangle(*it->second.colliding) + "' share it" +
                                          words_.collision_cause + ", so the receiver cannot tell which was sent" +
                                          words_.collision_advice);
    return it->second.entry;
  }

 private:
  struct Registered {
    Entry entry;
    const std::type_info* type;
    const std::type_info* colliding;  ///< another type with the same id, or nullptr
  };
  TypeRegistryWords words_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::uint64_t, Registered> entries_;
};

}  // namespace weft::detail
