// bench/io_dd.hpp - the disk's own speed beside the array I/O benches
// (io_hdf5.cpp, io_netcdf.cpp): `dd` to the same folder in the same run,
// the median of three (dd here varies a lot), dropping a file from the
// page cache so that a read comes from disk, and a read bench's figures.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "weft/array/chunks.hpp"
#include "weft/error.hpp"

namespace weft_bench {

namespace fs = std::filesystem;

// Evicts a file's pages from the page cache, so the next read comes from disk.
inline void drop_from_page_cache(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw weft::IoError("cannot-open", "cannot open '" + path.string() + "'");
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// dd's rate in MB/s (1e6 B/s) from its last line ("N bytes ... copied, S s, ...").
inline double run_dd(const std::string& args) {
  const std::string command = "dd " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw weft::IoError("cannot-open", "cannot run dd");
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (::pclose(pipe) != 0) throw weft::IoError("cannot-write", "dd failed: " + out);
  const std::size_t copied = out.rfind(" bytes");
  const std::size_t comma = out.find("copied, ", copied);
  if (copied == std::string::npos || comma == std::string::npos)
    throw weft::IoError("cannot-read", "cannot read dd's output: " + out);
  const std::size_t line = out.rfind('\n', copied);
  const double bytes = std::stod(out.substr(line == std::string::npos ? 0 : line + 1));
  const double seconds = std::stod(out.substr(comma + 8));
  return bytes / seconds / 1e6;
}

inline double median_of_3(const std::function<double()>& f) {
  std::vector<double> v{f(), f(), f()};
  std::sort(v.begin(), v.end());
  return v[1];
}

// dd writing 800 MB into `dir`, median of three.
inline double dd_write_mbps(const fs::path& dir) {
  const fs::path file = dir / ("weft-bench-dd-" + std::to_string(::getpid()));
  const double mbps = median_of_3([&] {
    return run_dd("if=/dev/zero of='" + file.string() + "' bs=8M count=100 conv=fdatasync");
  });
  fs::remove(file);
  return mbps;
}

// dd reading `file` from disk, median of three.
inline double dd_read_mbps(const fs::path& file) {
  return median_of_3([&] {
    drop_from_page_cache(file);
    return run_dd("if='" + file.string() + "' of=/dev/null bs=8M");
  });
}

// The figures of a read bench: `read_sum` reads `file` (`bytes` long, written
// by the bench) whole and returns the sum of its values, which should be
// `want`. mbps: the best of `repeat` reads after dropping the file from the
// page cache; dd_mbps: dd reading it after the same drop (ratio: the two);
// cached_mbps / dd_cached_mbps: the same two reads from the page cache (the
// CPU's part of a read); dd_write_mbps: dd's conv=fdatasync write to the same
// folder (the peer). Removes the file.
/// The blocks a read bench asks for (--read-chunk N: N along every axis;
/// "auto", the default: the reader's own choice, nullopt), and its text.
inline std::pair<std::optional<weft::array::ChunkSpec>, std::string> read_chunks_option(Options& opts) {
  const std::string text = opts.get("read-chunk", "auto");
  if (text == "auto") return {std::nullopt, text};
  return {weft::array::ChunkSpec(static_cast<std::int64_t>(std::stoll(text))), text};
}

inline nlohmann::json read_figures(const fs::path& file, double bytes, long repeat, double want,
                                   const std::function<double()>& read_sum) {
  double got = 0.0;
  const auto close_to_want = [&] { return std::fabs(got - want) <= 1e-9 * std::fabs(want); };
  const double seconds = best_of(repeat, [&] {
    drop_from_page_cache(file);
    got = read_sum();
  });
  const double dd = dd_read_mbps(file);
  const bool correct = close_to_want();
  const double cached_seconds = best_of(repeat, [&] { got = read_sum(); });
  const double dd_cached = median_of_3([&] { return run_dd("if='" + file.string() + "' of=/dev/null bs=8M"); });
  fs::remove(file);
  const double dd_write = dd_write_mbps(file.parent_path());
  const double mbps = bytes / seconds / 1e6, cached_mbps = bytes / cached_seconds / 1e6;
  return {{"seconds", seconds},          {"mbps", mbps},
          {"dd_mbps", dd},               {"ratio", mbps / dd},
          {"dd_write_mbps", dd_write},   {"ratio_to_dd_write", mbps / dd_write},
          {"cached_mbps", cached_mbps},  {"dd_cached_mbps", dd_cached},
          {"cached_ratio", cached_mbps / dd_cached}, {"correct", correct && close_to_want()}};
}

}  // namespace weft_bench
