// src/io/open_files.hpp - the files a process's read tasks keep open
// (from_hdf5, from_netcdf), so that a task does not open its file again.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <list>
#include <string>
#include <tuple>
#include <utility>

namespace weft::io::detail {

/// At most 32 open files, most recently used first, each known by its path
/// and its stamp when opened (device, inode, size, mtime): a path that now
/// names another or a changed file (renamed over, rewritten, appended to) is
/// opened again, so nothing is read through a stale handle. `Handles` is what
/// one open file holds; it closes them when dropped. Callers hold hdf5_mutex.
template <class Handles>
class OpenFileCache {
 public:
  using Stamp = std::tuple<dev_t, ino_t, off_t, time_t, long>;
  static Stamp stamp_of(const struct stat& st) {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  }
  /// The handles of `path` opened when it had `stamp`, or nullptr (an entry
  /// of another stamp is dropped).
  const Handles* find(const std::string& path, const Stamp& stamp) {
    for (auto it = files_.begin(); it != files_.end(); ++it) {
      if (it->path != path) continue;
      if (it->stamp == stamp) {
        files_.splice(files_.begin(), files_, it);
        return &files_.front().handles;
      }
      files_.erase(it);
      break;
    }
    return nullptr;
  }
  /// Keeps the handles of `path` as the most recently used, dropping the least.
  const Handles& add(std::string path, Stamp stamp, Handles handles) {
    if (files_.size() >= kMaxOpen) files_.pop_back();
    files_.push_front(Entry{std::move(path), stamp, std::move(handles)});
    return files_.front().handles;
  }
  void clear() { files_.clear(); }

 private:
  static constexpr std::size_t kMaxOpen = 32;
  struct Entry {
    std::string path;
    Stamp stamp;
    Handles handles;
  };
  std::list<Entry> files_;
};

}  // namespace weft::io::detail
