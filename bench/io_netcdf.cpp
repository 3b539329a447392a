// weft-bench to-netcdf / from-netcdf: an 800 MB float64 array (10k x 10k,
// blocks of 1000 x 1000) written to and read from a NetCDF-4 variable
// x(y, x), beside `dd` to the same folder measured in the same run (io_dd.hpp).
//
//   weft-bench to-netcdf [--dir DIR] [--n 10000] [--chunk 1000] [--deflate 0] [--repeat 1]
//   weft-bench from-netcdf [--dir DIR] [--n 10000] [--chunk 1000] [--read-chunk auto] [--repeat 1]
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench to-netcdf
//
// As to-hdf5 (io_hdf5.cpp): to-netcdf times to_netcdf of a random array
// generated on the ranks that write it, ending with fsync of the file and
// its folder; generate_seconds is x.sum() of the same array (the generation
// alone) and write_mbps counts the time after it. dd writes 800 MB with
// conv=fdatasync. from-netcdf writes the file, drops it from the page cache
// and times from_netcdf(...).sum() (blocks --read-chunk: "auto" grows the
// variable's chunks to ~128 MB, a number reads blocks of that many rows and
// columns), beside dd reading the same file (read_figures, io_dd.hpp).
// mbps are 1e6 bytes per second; ratio is mbps / dd_mbps.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "io_dd.hpp"
#include "options.hpp"
#include "weft/array.hpp"
#include "weft/io/netcdf.hpp"

namespace weft_bench {
namespace {

namespace wa = weft::array;

struct NetcdfWorkload {
  std::int64_t n, chunk;
  long repeat;
  fs::path dir;
  weft::ComputeOptions co;
  wa::Array x;
  explicit NetcdfWorkload(Options& opts)
      : n(opts.get_int("n", 10000)),
        chunk(opts.get_int("chunk", 1000)),
        repeat(opts.get_int("repeat", 1)),
        dir(opts.get("dir", fs::temp_directory_path().string())),
        co(compute_options(opts)),
        x(wa::random::RandomState(42).random({n, n}, {chunk, chunk})) {}
  std::string file() const { return (dir / ("weft-bench-" + std::to_string(::getpid()) + ".nc")).string(); }
  double bytes() const { return static_cast<double>(n * n * 8); }
  void write(int deflate) const {
    weft::io::to_netcdf(file(), {{"x", x, {"y", "x"}}}, {}, {.overwrite = true, .deflate_level = deflate}, co);
  }
  double sum_of(const wa::Array& a) const { return a.sum().compute(co).item<double>(); }
  nlohmann::json fields(const char* bench) const {
    return {{"bench", bench}, {"n", n}, {"chunk", chunk}, {"ranks", weft::nranks()}, {"dir", dir.string()}};
  }
};

}  // namespace

void to_netcdf(Options& opts) {
  const NetcdfWorkload w(opts);
  const long deflate = opts.get_int("deflate", 0);
  opts.check_all_used();
  double sum = 0.0;
  const double generate_seconds = best_of(w.repeat, [&] { sum = w.sum_of(w.x); });
  const double seconds = best_of(w.repeat, [&] { w.write(static_cast<int>(deflate)); });
  const double dd = dd_write_mbps(w.dir);
  const double got = w.sum_of(weft::io::from_netcdf(w.file(), "x"));
  fs::remove(w.file());
  const double mbps = w.bytes() / seconds / 1e6, write_mbps = w.bytes() / (seconds - generate_seconds) / 1e6;
  nlohmann::json j = w.fields("to-netcdf");
  j.update({{"deflate", deflate},
            {"seconds", seconds},
            {"mbps", mbps},
            {"dd_mbps", dd},
            {"ratio", mbps / dd},
            {"generate_seconds", generate_seconds},
            {"write_mbps", write_mbps},
            {"write_ratio", write_mbps / dd},
            {"correct", std::fabs(got - sum) <= 1e-9 * std::fabs(sum)}});
  std::printf("%s\n", j.dump().c_str());
}

void from_netcdf(Options& opts) {
  const NetcdfWorkload w(opts);
  const auto [read_chunks, read_chunk] = read_chunks_option(opts);
  opts.check_all_used();
  w.write(0);
  nlohmann::json j = w.fields("from-netcdf");
  j["read_chunk"] = read_chunk;
  j.update(read_figures(w.file(), w.bytes(), w.repeat, w.sum_of(w.x),
                        [&] { return w.sum_of(weft::io::from_netcdf(w.file(), "x", read_chunks)); }));
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
