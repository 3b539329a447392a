// weft-bench to-hdf5 / from-hdf5: an 800 MB float64 array (10k x 10k, blocks
// of 1000 x 1000) written to and read from HDF5, beside `dd` to the same
// folder measured in the same run (median of three: dd here varies a lot).
//
//   weft-bench to-hdf5 [--dir DIR] [--n 10000] [--chunk 1000] [--gzip 0] [--repeat 1]
//   weft-bench from-hdf5 [same] [--read-chunk auto]  (read blocks: auto grows the file's chunks)
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench to-hdf5
//
// to-hdf5 times to_hdf5 of a random array, generated on the ranks that
// write it (weft::persist would gather it to rank 0), ending with fsync of
// the file and its folder; generate_seconds is x.sum() of the same array
// (the generation alone), and write_mbps counts the time after it, as the
// step writes only once every block exists. dd writes 800 MB with
// conv=fdatasync. from-hdf5 writes the file, drops it from the
// page cache (fdatasync + posix_fadvise DONTNEED), and times
// from_hdf5(...).sum(); dd_mbps there is dd reading the file after the same
// drop, dd_write_mbps dd's conv=fdatasync write (the peer), and
// cached_mbps / dd_cached_mbps the same two reads from the page cache (the
// CPU's part of a read); read_cpu_seconds / read_faults are the user + system
// CPU time and minor page faults of the timed read (of this process: rank 0's
// on several ranks). mbps are 1e6 bytes per second; ratio is mbps / dd_mbps.
// WEFT_IO__DIRECT_READS=never (or always) in the environment compares the
// reads through the page cache with the default, O_DIRECT for uncached data.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io_dd.hpp"
#include "options.hpp"
#include "weft/array.hpp"
#include "weft/io/hdf5.hpp"

namespace weft_bench {
namespace {

namespace fs = std::filesystem;
namespace wa = weft::array;

struct IoWorkload {
  std::int64_t n, chunk;
  long gzip, repeat;
  fs::path dir;
  weft::ComputeOptions co;
  explicit IoWorkload(Options& opts)
      : n(opts.get_int("n", 10000)),
        chunk(opts.get_int("chunk", 1000)),
        gzip(opts.get_int("gzip", 0)),
        repeat(opts.get_int("repeat", 1)),
        dir(opts.get("dir", fs::temp_directory_path().string())),
        co(compute_options(opts)) {
    opts.check_all_used();
  }
  fs::path file() const { return dir / ("weft-bench-" + std::to_string(::getpid()) + ".h5"); }
  weft::io::Hdf5WriteOptions write_options() const {
    return {.overwrite = true, .gzip_level = static_cast<int>(gzip)};
  }
  nlohmann::json fields(const char* bench, double seconds, double dd_mbps) const {
    const double mbps = static_cast<double>(n * n * 8) / seconds / 1e6;
    return {{"bench", bench}, {"n", n},        {"chunk", chunk}, {"gzip", gzip},       {"ranks", weft::nranks()},
            {"seconds", seconds}, {"mbps", mbps}, {"dd_mbps", dd_mbps}, {"ratio", mbps / dd_mbps}, {"dir", dir.string()}};
  }
};

wa::Array random_array(const IoWorkload& w) {
  wa::random::RandomState rs(42);
  return rs.random({w.n, w.n}, {w.chunk, w.chunk});
}

}  // namespace

void to_hdf5(Options& opts) {
  const IoWorkload w(opts);
  const wa::Array x = random_array(w);
  double sum = 0.0;
  const double generate_seconds = best_of(w.repeat, [&] { sum = x.sum().compute(w.co).item<double>(); });
  const double seconds = best_of(w.repeat, [&] { weft::io::to_hdf5(w.file().string(), "/x", x, w.write_options(), w.co); });
  const double dd = dd_write_mbps(w.dir);
  const double got = weft::io::from_hdf5(w.file().string(), "/x").sum().compute(w.co).item<double>();
  fs::remove(w.file());
  nlohmann::json j = w.fields("to-hdf5", seconds, dd);
  const double write_mbps = static_cast<double>(w.n * w.n * 8) / (seconds - generate_seconds) / 1e6;
  j.update({{"generate_seconds", generate_seconds}, {"write_mbps", write_mbps}, {"write_ratio", write_mbps / dd},
            {"correct", std::fabs(got - sum) <= 1e-9 * std::fabs(sum)}});
  std::printf("%s\n", j.dump().c_str());
}

// This process's CPU seconds (user + system) and minor page faults so far:
// beside the wall time, what a read costs on a machine others share.
struct CpuUse {
  double seconds = 0.0;
  long faults = 0;
  static CpuUse now() {
    rusage r{};
    ::getrusage(RUSAGE_SELF, &r);
    const auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
    return {secs(r.ru_utime) + secs(r.ru_stime), r.ru_minflt};
  }
  CpuUse operator-(const CpuUse& before) const { return {seconds - before.seconds, faults - before.faults}; }
};

void from_hdf5(Options& opts) {
  const auto [read_chunks, read_chunk] = read_chunks_option(opts);
  const IoWorkload w(opts);
  const wa::Array x = random_array(w);
  weft::io::to_hdf5(w.file().string(), "/x", x, w.write_options(), w.co);
  const double want = x.sum().compute(w.co).item<double>();
  double got = 0.0;
  CpuUse read_use;
  const double seconds = best_of(w.repeat, [&] {
    drop_from_page_cache(w.file());
    const CpuUse before = CpuUse::now();
    got = weft::io::from_hdf5(w.file().string(), "/x", read_chunks).sum().compute(w.co).item<double>();
    read_use = CpuUse::now() - before;
  });
  const double dd = dd_read_mbps(w.file());
  const auto close_to_want = [&] { return std::fabs(got - want) <= 1e-9 * std::fabs(want); };
  const bool correct = close_to_want();
  const double cached_seconds = best_of(w.repeat, [&] {
    got = weft::io::from_hdf5(w.file().string(), "/x", read_chunks).sum().compute(w.co).item<double>();
  });
  const double dd_cached = median_of_3([&] { return run_dd("if='" + w.file().string() + "' of=/dev/null bs=8M"); });
  fs::remove(w.file());
  const double dd_write = dd_write_mbps(w.dir);
  nlohmann::json j = w.fields("from-hdf5", seconds, dd);
  const double mbps = j["mbps"].get<double>(), cached_mbps = static_cast<double>(w.n * w.n * 8) / cached_seconds / 1e6;
  j["read_chunk"] = read_chunk;
  j.update({{"dd_write_mbps", dd_write}, {"ratio_to_dd_write", mbps / dd_write}, {"cached_mbps", cached_mbps},
            {"dd_cached_mbps", dd_cached}, {"cached_ratio", cached_mbps / dd_cached},
            {"read_cpu_seconds", read_use.seconds}, {"read_faults", read_use.faults},
            {"correct", correct && close_to_want()}});
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
