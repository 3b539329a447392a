// The data store: LRU order, managed bytes, spill files.
#include "data_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "weft/error.hpp"
#include "weft/serialize.hpp"

namespace weft::dist {

namespace {

// Calls put(bytes) for each piece of e's flat form, in order.
template <class Put>
void flat_pieces(const Encoded& e, Put put) {
  auto size = [&](std::uint64_t n) { put(std::as_bytes(std::span(&n, 1))); };
  size(e.header.size());
  put(std::span<const std::byte>(e.header));
  size(e.buffers.size());
  for (std::span<const std::byte> b : e.buffers) {
    size(b.size());
    put(b);
  }
}

std::string errno_text(int error) { return std::strerror(error); }

}  // namespace

std::vector<std::byte> flatten(const Value& v) {
  std::vector<std::byte> out;
  flat_pieces(encode(v), [&](std::span<const std::byte> piece) { out.insert(out.end(), piece.begin(), piece.end()); });
  return out;
}

Value unflatten(std::span<const std::byte> in, const std::string& what) {
  auto take = [&](std::size_t n) {
    if (n > in.size()) throw ValueError("bad-encoding", what + " is cut short");
    std::span<const std::byte> out = in.first(n);
    in = in.subspan(n);
    return out;
  };
  auto u64 = [&] {
    std::uint64_t n;
    std::memcpy(&n, take(sizeof n).data(), sizeof n);
    return n;
  };
  std::span<const std::byte> header = take(u64());
  const std::uint64_t nbuffers = u64();
  if (nbuffers > in.size()) throw ValueError("bad-encoding", what + " is cut short");
  std::vector<std::span<const std::byte>> buffers(nbuffers);
  for (auto& b : buffers) b = take(u64());
  return decode(header, buffers);
}

DataStore::DataStore(Options options) : options_(std::move(options)) {
  if (!options_.warn) options_.warn = [](const std::string& text) { std::fprintf(stderr, "weft: %s\n", text.c_str()); };
}

DataStore::~DataStore() { remove_files(); }

void DataStore::remove_files() {
  std::lock_guard lock(mutex_);
  if (!directory_made_) return;
  std::error_code ignored;
  std::filesystem::remove_all(options_.directory, ignored);
  directory_made_ = false;
  spill_off_ = true;  // nothing goes to disk any more
}

std::filesystem::path DataStore::file_of(TaskId id, const Entry& e) const {
  return options_.directory / (std::to_string(id) + "-" + std::to_string(e.version));
}

void DataStore::forget(TaskId id, Entry& e) {
  if (e.value) {
    lru_.erase(e.lru);
    stats_.managed_bytes -= e.nbytes;
    --stats_.in_memory;
  } else {
    std::error_code ignored;
    std::filesystem::remove(file_of(id, e), ignored);
    stats_.spilled_bytes -= e.nbytes;
    --stats_.spilled_count;
  }
}

std::uint64_t DataStore::put(TaskId id, Value value) {
  const std::uint64_t nbytes = value.nbytes();
  auto shared = std::make_shared<const Value>(std::move(value));
  std::lock_guard lock(mutex_);
  auto [it, inserted] = entries_.try_emplace(id);
  Entry& e = it->second;
  if (!inserted) forget(id, e);
  e.value = std::move(shared);
  e.nbytes = nbytes;
  e.version = ++next_version_;
  e.spilling = false;
  lru_.push_front(id);
  e.lru = lru_.begin();
  stats_.managed_bytes += nbytes;
  ++stats_.in_memory;
  return nbytes;
}

std::shared_ptr<const Value> DataStore::get(TaskId id) {
  std::shared_ptr<const Value> value;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return nullptr;
    Entry& e = it->second;
    if (e.value) {
      lru_.splice(lru_.begin(), lru_, e.lru);
      return e.value;
    }
    // Read back under the lock: nobody else reads or removes the file meanwhile.
    const std::filesystem::path path = file_of(id, e);
    std::ifstream file(path, std::ios::binary);
    std::vector<std::byte> bytes;
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    if (file && !size_error) {
      bytes.resize(size);
      file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    }
    if (!file || size_error)
      throw IoError("cannot-read", options_.owner + ": cannot read spilled result " + std::to_string(id) +
                                       " back from " + path.string());
    value = std::make_shared<const Value>(unflatten(bytes, "spill file " + path.string()));
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    stats_.spilled_bytes -= e.nbytes;
    --stats_.spilled_count;
    e.value = value;
    lru_.push_front(id);
    e.lru = lru_.begin();
    stats_.managed_bytes += e.nbytes;
    ++stats_.in_memory;
  }
  spill_to_target();  // the value's reader holds it, so others go
  return value;
}

bool DataStore::contains(TaskId id) const {
  std::lock_guard lock(mutex_);
  return entries_.contains(id);
}

bool DataStore::erase(TaskId id) {
  std::shared_ptr<const Value> dropped;  // freed after the lock
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  dropped = it->second.value;
  forget(id, it->second);
  entries_.erase(it);
  return true;
}

bool DataStore::spill_one() {
  TaskId id = 0;
  std::shared_ptr<const Value> value;
  std::uint64_t version = 0;
  std::filesystem::path path;
  {
    std::lock_guard lock(mutex_);
    if (spill_off_) return false;
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
      Entry& e = entries_.at(*it);
      // use_count 1: only the store holds it, so spilling frees its memory.
      if (e.spilling || e.value.use_count() != 1 || !e.value->type()->serializable()) continue;
      id = *it;
      e.spilling = true;
      value = e.value;
      version = e.version;
      path = file_of(id, e);
      break;
    }
    if (!value) return false;
    if (!directory_made_) {
      if (mkdir(options_.directory.c_str(), 0700) != 0 && errno != EEXIST) {
        const std::string error = errno_text(errno);
        entries_.at(id).spilling = false;
        spill_off_ = true;
        options_.warn(options_.owner + ": cannot spill to " + options_.directory.string() + ": " + error +
                      " (results stay in memory)");
        return false;
      }
      directory_made_ = true;
    }
  }
  std::string error;
  const bool written = write_file(path, *value, error);
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  const bool same = it != entries_.end() && it->second.version == version;
  if (same) it->second.spilling = false;
  if (!written) {
    spill_failed(path, error);
    return false;
  }
  if (!same) {  // released or replaced while being written
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    return true;
  }
  Entry& e = it->second;
  lru_.erase(e.lru);
  e.value.reset();
  stats_.managed_bytes -= e.nbytes;
  --stats_.in_memory;
  stats_.spilled_bytes += e.nbytes;
  stats_.spilled_bytes_total += e.nbytes;
  ++stats_.spilled_count;
  return true;
}

void DataStore::spill_to_target() {
  if (options_.target_bytes == 0) return;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stats_.managed_bytes <= options_.target_bytes) return;
    }
    if (!spill_one()) return;
  }
}

bool DataStore::write_file(const std::filesystem::path& path, const Value& v, std::string& error) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = errno_text(errno);
    return false;
  }
  int failure = 0;
  try {
    flat_pieces(encode(v), [&](std::span<const std::byte> piece) {
      while (!piece.empty() && failure == 0) {
        const ssize_t n = write(fd, piece.data(), piece.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) failure = errno;
        else piece = piece.subspan(static_cast<std::size_t>(n));
      }
    });
  } catch (const std::exception& e) {
    error = e.what();
    failure = -1;
  }
  // Network file systems may report a failed write only when the file is closed.
  if (close(fd) != 0 && failure == 0) failure = errno;
  if (failure == 0) return true;
  if (failure > 0) error = errno_text(failure);
  unlink(path.c_str());
  return false;
}

void DataStore::spill_failed(const std::filesystem::path& path, const std::string& error) {
  if (spill_off_) return;
  spill_off_ = true;
  options_.warn(options_.owner + ": cannot spill to " + path.string() + ": " + error + " (results stay in memory)");
}

DataStore::Stats DataStore::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<std::pair<TaskId, std::uint64_t>> DataStore::largest(std::size_t n) const {
  std::vector<std::pair<TaskId, std::uint64_t>> all;
  {
    std::lock_guard lock(mutex_);
    all.reserve(entries_.size());
    for (const auto& [id, e] : entries_) all.emplace_back(id, e.nbytes);
  }
  n = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  all.resize(n);
  return all;
}

}  // namespace weft::dist
