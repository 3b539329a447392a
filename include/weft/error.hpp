// weft/error.hpp - the exception types every part of weft throws.
//
// Every message reads "[weft.<kind>.<id>] <text>", where <kind>.<id> is a
// stable identifier documented in docs/errors.md. Messages never depend on
// NDEBUG. The C API maps these to integer codes plus weft_last_error().
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace weft {

/// Base of all weft errors. `id()` is "<kind>.<id>", e.g. "graph.cycle".
class Error : public std::runtime_error {
 public:
  Error(std::string_view kind, std::string_view id, const std::string& text);

  /// "<kind>.<id>", stable across releases (see docs/errors.md).
  const std::string& id() const noexcept { return id_; }
  /// The message without the "[weft.<kind>.<id>] " prefix.
  const std::string& text() const noexcept { return text_; }

 private:
  std::string id_;
  std::string text_;
};

/// A graph is malformed: a cycle, a missing dependency, a duplicate key.
class GraphError : public Error {
 public:
  GraphError(std::string_view id, const std::string& text) : Error("graph", id, text) {}
};

/// A task raised an exception. Carries the failing task's key and the
/// original exception, which `rethrow_original()` throws again.
class TaskError : public Error {
 public:
  TaskError(std::string key, std::string original_message, std::exception_ptr original);

  const std::string& key() const noexcept { return key_; }
  const std::string& original_message() const noexcept { return original_message_; }
  [[noreturn]] void rethrow_original() const;

 private:
  std::string key_;
  std::string original_message_;
  std::exception_ptr original_;
};

/// A value had another type than the code that reads it expects.
class TypeError : public Error {
 public:
  TypeError(std::string_view id, const std::string& text) : Error("type", id, text) {}
};

/// Configuration: unknown key, bad value, unreadable file.
class ConfigError : public Error {
 public:
  ConfigError(std::string_view id, const std::string& text) : Error("config", id, text) {}
};

/// A caller passed an argument that is out of range or malformed.
class ValueError : public Error {
 public:
  ValueError(std::string_view id, const std::string& text) : Error("value", id, text) {}
};

/// Files and streams: cannot open, cannot write, short read.
class IoError : public Error {
 public:
  IoError(std::string_view id, const std::string& text) : Error("io", id, text) {}
};

/// The distributed runtime: MPI start-up, a terminated job, a cancelled or
/// lost future, a message that makes no sense.
class RuntimeError : public Error {
 public:
  RuntimeError(std::string_view id, const std::string& text) : Error("runtime", id, text) {}
};

/// A blocking call's timeout passed (Queue::get/put, Variable::get; Dask's TimeoutError).
class TimeoutError : public Error {
 public:
  TimeoutError(std::string_view id, const std::string& text) : Error("timeout", id, text) {}
};

/// A worker rank ran out of memory: its process passed the terminate
/// fraction of --memory-limit (distributed.worker.memory.terminate).
class MemoryError : public Error {
 public:
  MemoryError(std::string_view id, const std::string& text) : Error("worker", id, text) {}
};

/// A task was running on worker ranks that were removed (hung, or gone) more
/// often than distributed.scheduler.allowed-failures allows, or could run
/// only on a removed worker (Dask's KilledWorker). Id "runtime.killed-worker";
/// futures of the task and of everything depending on it throw it.
class KilledWorker : public RuntimeError {
 public:
  KilledWorker(std::string key, const std::string& text) : RuntimeError("killed-worker", text), key_(std::move(key)) {}
  /// The task whose workers were removed.
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// The original exception of a task that failed on another rank, which only
/// travelled as text: TaskError::rethrow_original() throws this.
class RemoteError : public Error {
 public:
  /// `type` is the demangled type of the exception the task threw.
  RemoteError(std::string type, const std::string& message, int rank);
  const std::string& type() const noexcept { return type_; }
  int rank() const noexcept { return rank_; }

 private:
  std::string type_;
  int rank_;
};

}  // namespace weft
