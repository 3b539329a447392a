#include "atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

#include "weft/error.hpp"

namespace weft::detail {

int sync_path(const std::filesystem::path& path) noexcept {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = ::fsync(fd) == 0 ? 0 : errno;
  // Some file systems cannot fsync a folder; the rename is as durable as they allow.
  if (err == EINVAL || err == EBADF) err = 0;
  ::close(fd);
  return err;
}

void throw_cannot_write(std::string_view what, const std::filesystem::path& path, int err) {
  throw IoError("cannot-write", "cannot write " + std::string(what) + " '" + path.string() +
                                    "': " + std::generic_category().message(err));
}

StagedFile::StagedFile(std::filesystem::path target, std::string_view token) : target_(std::move(target)) {
  temporary_ = target_;
  temporary_ += ".weft-tmp-";
  temporary_ += std::string(token);
}

StagedFile::~StagedFile() {
  if (!done_) discard();
}

void StagedFile::discard() noexcept {
  done_ = true;
  ::unlink(temporary_.c_str());
}

void StagedFile::commit(std::string_view what) {
  int err = sync_path(temporary_);
  if (err == 0 && std::rename(temporary_.c_str(), target_.c_str()) != 0) err = errno;
  if (err != 0) {
    discard();
    throw_cannot_write(what, target_, err);
  }
  done_ = true;
  const std::filesystem::path folder = target_.has_parent_path() ? target_.parent_path() : ".";
  if ((err = sync_path(folder)) != 0) throw_cannot_write(what, target_, err);
}

void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           const char* what) {
  static std::atomic<unsigned> serial{0};
  StagedFile stage(path, std::to_string(getpid()) + "-" + std::to_string(serial++));
  std::FILE* file = std::fopen(stage.temporary().c_str(), "wx");  // x: never reuse someone else's file
  if (!file) throw_cannot_write(what, path, errno);
  int err = 0;
  if (std::fwrite(contents.data(), 1, contents.size(), file) != contents.size()) err = errno ? errno : EIO;
  if (std::fclose(file) != 0 && err == 0) err = errno ? errno : EIO;
  if (err != 0) throw_cannot_write(what, path, err);
  stage.commit(what);
}

}  // namespace weft::detail
