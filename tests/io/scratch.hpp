// tests/io/scratch.hpp - a fresh folder per test case for the array I/O tests,
// removed afterwards, and what is in it (to see that no temporary file is
// left); a file's pages in the page cache (to see how a read went).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace weft::test {

struct Scratch {
  std::filesystem::path dir;
  explicit Scratch(const std::string& prefix = "weft-io") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

/// Drops the file at `path` from the page cache, as the read benchmarks do.
inline void drop_from_page_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

/// How many pages of the file at `path` are in the page cache (mincore of a
/// mapping never touched, so nothing is read).
inline std::ptrdiff_t cached_pages(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  const auto bytes = static_cast<std::size_t>(std::filesystem::file_size(path));
  void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) throw std::runtime_error("cannot map " + path);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((bytes + page - 1) / page);
  const bool known = ::mincore(mapped, bytes, resident.data()) == 0;
  ::munmap(mapped, bytes);
  if (!known) throw std::runtime_error("mincore failed on " + path);
  return std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; });
}

/// Whether the file system holding `path` takes O_DIRECT.
inline bool takes_direct_io(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

/// The bytes of the file at `path`.
inline std::string text_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace weft::test
