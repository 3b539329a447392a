// bench/io_bench.hpp - what the array I/O benches (io_hdf5.cpp,
// io_netcdf.cpp) share: their workload (an n x n float64 random array in
// blocks, a file in --dir), and their peer, `dd` to the same folder, timed
// in turns with weft: round r runs weft's write (or read) and then dd's, so
// a slow spell of this VM's disk (dd here ranges 250-520 MB/s within
// minutes) slows both; the figures are the medians over the rounds
// (--repeat, 3 by default).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "options.hpp"
#include "weft/array.hpp"
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

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// MB/s (1e6 B/s) of moving `bytes` in each of `seconds`.
inline std::vector<double> rates(double bytes, const std::vector<double>& seconds) {
  std::vector<double> out;
  for (double s : seconds) out.push_back(bytes / s / 1e6);
  return out;
}

// dd writing 800 MB into `dir` (then removed).
inline double dd_write_mbps(const fs::path& dir) {
  const fs::path file = dir / ("weft-bench-dd-" + std::to_string(::getpid()));
  const double mbps = run_dd("if=/dev/zero of='" + file.string() + "' bs=8M count=100 conv=fdatasync");
  fs::remove(file);
  return mbps;
}

// dd reading `file` (from the page cache where it is there).
inline double dd_read_mbps(const fs::path& file) { return run_dd("if='" + file.string() + "' of=/dev/null bs=8M"); }

// The workload of an I/O bench: --n, --chunk, --repeat (rounds), --dir and
// the scheduler options; x, the random array written (seed 42).
struct IoWorkload {
  std::int64_t n, chunk;
  long repeat;
  fs::path dir;
  weft::ComputeOptions co;
  weft::array::Array x;
  explicit IoWorkload(Options& opts)
      : n(opts.get_int("n", 10000)),
        chunk(opts.get_int("chunk", 1000)),
        repeat(std::max(1L, opts.get_int("repeat", 3))),
        dir(opts.get("dir", fs::temp_directory_path().string())),
        co(compute_options(opts)),
        x(weft::array::random::RandomState(42).random({n, n}, {chunk, chunk})) {}
  // This process's file of the bench, ending in `suffix` (".h5", ".nc").
  fs::path file(const std::string& suffix) const {
    return dir / ("weft-bench-" + std::to_string(::getpid()) + suffix);
  }
  double bytes() const { return static_cast<double>(n * n * 8); }
  double sum_of(const weft::array::Array& a) const { return a.sum().compute(co).item<double>(); }
  nlohmann::json fields(const char* bench) const {
    return {{"bench", bench}, {"n", n}, {"chunk", chunk}, {"ranks", weft::nranks()}, {"rounds", repeat},
            {"dir", dir.string()}};
  }
};

// The figures of a write bench: `write` writes w.x to `file`, which
// read_sum() then reads back. Each round times `write` and dd's write, in
// the order weft-dd, dd-weft, weft-dd, ... (a write slows the one after it
// while the host flushes its cache, so each goes first as often as the
// other); each write's file is removed right after it (untimed; the last
// weft write's file after the read back). round_mbps / round_dd_mbps: each
// round's rates; seconds / mbps: the median write (from the graph to the
// fsync of the file and its folder); dd_mbps: the median dd
// (conv=fdatasync); ratio: the two; generate_seconds: the median x.sum()
// (the generation alone), and write_mbps / write_ratio the same figures for
// the time after it (the write step starts once every block exists).
inline nlohmann::json write_figures(const IoWorkload& w, const fs::path& file, const std::function<void()>& write,
                                    const std::function<double()>& read_sum) {
  std::vector<double> seconds, dd, generate;
  double sum = 0.0;
  fs::remove(file);
  for (long r = 0; r < w.repeat; ++r) {
    if (r % 2 == 1) dd.push_back(dd_write_mbps(w.dir));
    generate.push_back(best_of(1, [&] { sum = w.sum_of(w.x); }));
    seconds.push_back(best_of(1, write));
    if (r + 1 < w.repeat) fs::remove(file);
    if (r % 2 == 0) dd.push_back(dd_write_mbps(w.dir));
  }
  const double got = read_sum();
  fs::remove(file);
  const double s = median(seconds), d = median(dd), g = median(generate);
  const double mbps = w.bytes() / s / 1e6, write_mbps = w.bytes() / (s - g) / 1e6;
  return {{"round_mbps", rates(w.bytes(), seconds)}, {"round_dd_mbps", dd},
          {"seconds", s},          {"mbps", mbps},         {"dd_mbps", d},
          {"ratio", mbps / d},     {"generate_seconds", g}, {"write_mbps", write_mbps},
          {"write_ratio", write_mbps / d}, {"correct", near(got, sum, 1e-9)}};
}

/// The blocks a read bench asks for (--read-chunk N: N along every axis;
/// "auto", the default: the reader's own choice, nullopt), and its text.
inline std::pair<std::optional<weft::array::ChunkSpec>, std::string> read_chunks_option(Options& opts) {
  const std::string text = opts.get("read-chunk", "auto");
  if (text == "auto") return {std::nullopt, text};
  return {weft::array::ChunkSpec(static_cast<std::int64_t>(std::stoll(text))), text};
}

// The figures of a read bench: `read_sum` reads `file` (w.bytes() long,
// written by the bench) whole and returns the sum of its values, which
// should be `want`. Each round times read_sum after dropping the file from the page
// cache, then dd reading it after the same drop, then both again from the
// page cache (the CPU's part of a read). round_mbps / round_dd_mbps: each
// round's uncached rates; mbps / dd_mbps: the medians of the
// uncached reads (ratio: the two); cached_mbps / dd_cached_mbps: of the
// cached ones; dd_write_mbps: dd's conv=fdatasync write to the same folder
// (the peer), after the rounds. Removes the file.
inline nlohmann::json read_figures(const IoWorkload& w, const fs::path& file, double want,
                                   const std::function<double()>& read_sum) {
  std::vector<double> seconds, dd, cached_seconds, dd_cached;
  bool correct = true;
  const auto read = [&] { correct = correct && near(read_sum(), want, 1e-9); };
  for (long r = 0; r < w.repeat; ++r) {
    drop_from_page_cache(file);
    seconds.push_back(best_of(1, read));
    drop_from_page_cache(file);
    dd.push_back(dd_read_mbps(file));
    cached_seconds.push_back(best_of(1, read));
    dd_cached.push_back(dd_read_mbps(file));
  }
  fs::remove(file);
  const double dd_write = dd_write_mbps(file.parent_path());
  const double mbps = w.bytes() / median(seconds) / 1e6, cached_mbps = w.bytes() / median(cached_seconds) / 1e6;
  const double dd_mbps = median(dd), dd_cached_mbps = median(dd_cached);
  return {{"round_mbps", rates(w.bytes(), seconds)}, {"round_dd_mbps", dd},
          {"seconds", median(seconds)},  {"mbps", mbps},
          {"dd_mbps", dd_mbps},          {"ratio", mbps / dd_mbps},
          {"dd_write_mbps", dd_write},   {"ratio_to_dd_write", mbps / dd_write},
          {"cached_mbps", cached_mbps},  {"dd_cached_mbps", dd_cached_mbps},
          {"cached_ratio", cached_mbps / dd_cached_mbps}, {"correct", correct}};
}

}  // namespace weft_bench
