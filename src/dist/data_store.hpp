// A worker's results (docs/architecture.md, "Data store and spill"): task
// id -> value, its size (Value::nbytes, Dask's sizeof), and a least recently
// used order. Results beyond a target of *managed* bytes (the sizes of the
// values held in memory) are spilled, least recently used first: each is
// encoded into one file under the store's folder, written and closed before
// the value is dropped. A spilled value comes back (decoded, managed again,
// its file removed) when it is read; a released one takes its file with it,
// and the folder goes when the store does.
//
// A spill that fails (ENOSPC, EDQUOT, EIO, a folder that cannot be made)
// removes its partial file, leaves the value in memory, reports once through
// `warn`, and turns spilling off: the worker's memory thresholds decide what
// happens next.
//
// Thread-safe. File writes happen outside the store's lock, so readers are
// not held up by a spill; reading a spilled value back happens under it.
// Only values nobody else holds are spilled (a value a running task reads
// would stay in memory anyway). Needs no MPI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "scheduler_state.hpp"
#include "weft/value.hpp"

namespace weft::dist {

/// A Value as one byte string: [u64 header size][header][u64 nbuffers]
/// {[u64 size][bytes]}* (spill files, collective steps' parts).
std::vector<std::byte> flatten(const Value& v);
/// The Value `flatten` made; ValueError "bad-encoding" naming `what` when
/// the bytes are cut short.
Value unflatten(std::span<const std::byte> in, const std::string& what);

class DataStore {
 public:
  struct Options {
    /// Folder for spill files; made (one level) at the first spill.
    std::filesystem::path directory;
    /// Managed bytes above this are spilled by spill_to_target(); 0: never.
    std::uint64_t target_bytes = 0;
    /// Says why spilling failed, once; the default writes "weft: TEXT" to stderr.
    std::function<void(const std::string&)> warn;
    /// Who the message is about, e.g. "worker rank 2 (node7)".
    std::string owner = "this process";
  };
  struct Stats {
    std::uint64_t managed_bytes = 0;      ///< nbytes of the values in memory
    std::uint64_t spilled_bytes = 0;      ///< nbytes of the values on disk
    std::uint64_t spilled_bytes_total = 0;///< nbytes of every spill so far
    std::uint32_t in_memory = 0;
    std::uint32_t spilled_count = 0;
  };

  explicit DataStore(Options options);
  /// Removes every spill file and the folder.
  ~DataStore();
  DataStore(const DataStore&) = delete;
  DataStore& operator=(const DataStore&) = delete;

  /// Stores `value` under `id` (replacing any) as the most recently used;
  /// returns its nbytes. Never spills: call spill_to_target() after
  /// releasing your own locks.
  std::uint64_t put(TaskId id, Value value);
  /// The value, read back from its file if spilled (IoError "cannot-read"
  /// if the file is gone or cut short); it becomes the most recently used.
  /// nullptr when `id` is not here.
  std::shared_ptr<const Value> get(TaskId id);
  bool contains(TaskId id) const;
  /// Drops the value and its file; false when `id` was not here.
  bool erase(TaskId id);

  /// Spills the least recently used value that only the store holds; false
  /// when none can be (none left, none serialisable, spilling failed).
  bool spill_one();
  /// Spills until managed bytes are at most target_bytes, or none can be.
  void spill_to_target();

  /// Removes every spill file and the folder now, and spills no more: for a
  /// process that exits without destroying the store.
  void remove_files();

  Stats stats() const;
  /// The `n` largest values (in memory or spilled), largest first, with nbytes.
  std::vector<std::pair<TaskId, std::uint64_t>> largest(std::size_t n) const;
  const std::filesystem::path& directory() const noexcept { return options_.directory; }

 private:
  struct Entry {
    std::shared_ptr<const Value> value;  // null while spilled
    std::uint64_t nbytes = 0;
    std::uint64_t version = 0;           // which put; names its spill file
    std::list<TaskId>::iterator lru;     // in lru_ while in memory
    bool spilling = false;               // a spill of this version is being written
  };
  std::filesystem::path file_of(TaskId id, const Entry& e) const;
  // mutex_ held: drops e's in-memory bookkeeping or its file.
  void forget(TaskId id, Entry& e);
  // Writes v's flat form to `path`; false (partial file removed) with errno's text in `error`.
  bool write_file(const std::filesystem::path& path, const Value& v, std::string& error);
  void spill_failed(const std::filesystem::path& path, const std::string& error);

  Options options_;
  mutable std::mutex mutex_;
  std::unordered_map<TaskId, Entry> entries_;
  std::list<TaskId> lru_;  // in-memory values, most recently used first
  Stats stats_;
  std::uint64_t next_version_ = 0;
  bool directory_made_ = false;
  bool spill_off_ = false;  // a spill failed
};

}  // namespace weft::dist
