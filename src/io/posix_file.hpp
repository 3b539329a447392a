// src/io/posix_file.hpp - a file descriptor for the block reads and writes of
// the npy and raw formats (pread/pwrite at offsets, whole or an error naming
// the path), shared by src/io/npy.cpp and src/io/raw.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace weft::io::detail {

class PosixFile {
 public:
  /// Opens `path` read-only: IoError "cannot-open" "<op>: cannot open '<path>': <reason>".
  static PosixFile open_read(const std::filesystem::path& path, std::string_view op);
  /// Opens `path` for writing with `flags` (O_CREAT, O_EXCL, ...); errors are
  /// IoError "cannot-write" naming `what` and `target` (the name the user gave).
  static PosixFile open_write(const std::filesystem::path& path, int flags, std::string_view what,
                              const std::filesystem::path& target);

  PosixFile(PosixFile&& other) noexcept;
  PosixFile& operator=(PosixFile&&) = delete;
  PosixFile(const PosixFile&) = delete;
  ~PosixFile();

  const std::filesystem::path& path() const noexcept { return path_; }
  /// The file's size in bytes.
  std::int64_t size() const;
  /// Reads exactly `n` bytes at `offset`: IoError "cannot-read" naming the
  /// path when the file ends first (truncated) or the read fails.
  void read_at(void* buffer, std::size_t n, std::int64_t offset, std::string_view op) const;
  /// Writes all `n` bytes at `offset` (IoError "cannot-write", e.g. a full disk).
  void write_at(const void* buffer, std::size_t n, std::int64_t offset) const;
  /// Sets the size (a raw file's ranks write into a file of its final size).
  void resize(std::int64_t size) const;
  /// Closes now, reporting a failure (NFS reports write errors at close).
  void close();

 private:
  PosixFile(int fd, std::filesystem::path path, std::string what, std::filesystem::path target)
      : fd_(fd), path_(std::move(path)), what_(std::move(what)), target_(std::move(target)) {}
  [[noreturn]] void fail_write(int err) const;
  int fd_ = -1;
  std::filesystem::path path_;
  std::string what_;                 // for write errors
  std::filesystem::path target_;     // for write errors
};

}  // namespace weft::io::detail
