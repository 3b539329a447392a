#include "atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "weft/error.hpp"

namespace weft::detail {

void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           const char* what) {
  static std::atomic<unsigned> serial{0};
  const auto fail = [&](int err) {
    throw IoError("cannot-write", std::string("cannot write ") + what + " '" + path.string() +
                                      "': " + std::generic_category().message(err));
  };
  std::filesystem::path temp = path;
  temp.replace_filename("." + path.filename().string() + "." + std::to_string(getpid()) + "." +
                        std::to_string(serial++) + ".tmp");

  std::FILE* file = std::fopen(temp.c_str(), "wx");  // x: never reuse someone else's file
  if (!file) fail(errno);
  int err = 0;
  if (std::fwrite(contents.data(), 1, contents.size(), file) != contents.size()) {
    err = errno ? errno : EIO;
  }
  if (std::fclose(file) != 0 && err == 0) err = errno ? errno : EIO;
  if (err == 0 && std::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(temp.c_str());
    fail(err);
  }
}

}  // namespace weft::detail
