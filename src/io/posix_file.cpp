// src/io/posix_file.cpp - PosixFile (posix_file.hpp).
#include "posix_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "../core/atomic_file.hpp"
#include "weft/error.hpp"

namespace weft::io::detail {

namespace fs = std::filesystem;

PosixFile PosixFile::open_read(const fs::path& path, std::string_view op) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw IoError("cannot-open", std::string(op) + ": cannot open '" + path.string() + "': " +
                                     std::generic_category().message(errno));
  return PosixFile(fd, path, std::string(op), path);
}

PosixFile PosixFile::open_write(const fs::path& path, int flags, std::string_view what, const fs::path& target) {
  const int fd = ::open(path.c_str(), flags | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) weft::detail::throw_cannot_write(what, target, errno);
  return PosixFile(fd, path, std::string(what), target);
}

PosixFile::PosixFile(PosixFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      what_(std::move(other.what_)),
      target_(std::move(other.target_)) {}

PosixFile::~PosixFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PosixFile::fail_write(int err) const { weft::detail::throw_cannot_write(what_, target_, err); }

std::int64_t PosixFile::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw IoError("cannot-read", "cannot read '" + path_.string() + "': " + std::generic_category().message(errno));
  return static_cast<std::int64_t>(st.st_size);
}

void PosixFile::read_at(void* buffer, std::size_t n, std::int64_t offset, std::string_view op) const {
  auto* at = static_cast<char*>(buffer);
  for (std::size_t done = 0; done < n;) {
    const ssize_t got = ::pread(fd_, at + done, n - done, static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw IoError("cannot-read", std::string(op) + ": cannot read '" + path_.string() + "': " +
                                       std::generic_category().message(errno));
    if (got == 0)
      throw IoError("cannot-read", std::string(op) + ": '" + path_.string() + "' is truncated: it ends at byte " +
                                       std::to_string(offset + static_cast<std::int64_t>(done)) + ", its data at byte " +
                                       std::to_string(offset + static_cast<std::int64_t>(n)));
    done += static_cast<std::size_t>(got);
  }
}

void PosixFile::write_at(const void* buffer, std::size_t n, std::int64_t offset) const {
  const auto* at = static_cast<const char*>(buffer);
  for (std::size_t done = 0; done < n;) {
    const ssize_t put = ::pwrite(fd_, at + done, n - done, static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) fail_write(put < 0 ? errno : ENOSPC);
    done += static_cast<std::size_t>(put);
  }
}

void PosixFile::resize(std::int64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) fail_write(errno);
}

void PosixFile::close() {
  if (fd_ >= 0 && ::close(std::exchange(fd_, -1)) != 0) fail_write(errno);
}

}  // namespace weft::io::detail
