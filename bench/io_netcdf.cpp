// weft-bench to-netcdf: an 800 MB float64 array (10k x 10k, blocks of
// 1000 x 1000) written as a NetCDF-4 variable x(y, x), beside `dd` to the
// same folder measured in the same run (io_dd.hpp).
//
//   weft-bench to-netcdf [--dir DIR] [--n 10000] [--chunk 1000] [--deflate 0] [--repeat 1]
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench to-netcdf
//
// As to-hdf5 (io_hdf5.cpp): times to_netcdf of a random array generated on
// the ranks that write it, ending with fsync of the file and its folder;
// generate_seconds is x.sum() of the same array (the generation alone) and
// write_mbps counts the time after it. dd writes 800 MB with
// conv=fdatasync. mbps are 1e6 bytes per second; ratio is mbps / dd_mbps.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "io_dd.hpp"
#include "options.hpp"
#include "weft/array.hpp"
#include "weft/io/netcdf.hpp"

namespace weft_bench {

void to_netcdf(Options& opts) {
  namespace wa = weft::array;
  const std::int64_t n = opts.get_int("n", 10000), chunk = opts.get_int("chunk", 1000);
  const long deflate = opts.get_int("deflate", 0), repeat = opts.get_int("repeat", 1);
  const fs::path dir = opts.get("dir", fs::temp_directory_path().string());
  const weft::ComputeOptions co = compute_options(opts);
  opts.check_all_used();
  const std::string file = (dir / ("weft-bench-" + std::to_string(::getpid()) + ".nc")).string();
  wa::random::RandomState rs(42);
  const wa::Array x = rs.random({n, n}, {chunk, chunk});
  double sum = 0.0;
  const double generate_seconds = best_of(repeat, [&] { sum = x.sum().compute(co).item<double>(); });
  const double seconds = best_of(repeat, [&] {
    weft::io::to_netcdf(file, {{"x", x, {"y", "x"}}}, {},
                        {.overwrite = true, .deflate_level = static_cast<int>(deflate)}, co);
  });
  const double dd = dd_write_mbps(dir);
  const double got = weft::io::from_netcdf(file, "x").sum().compute(co).item<double>();
  fs::remove(file);
  const double bytes = static_cast<double>(n * n * 8);
  const double mbps = bytes / seconds / 1e6, write_mbps = bytes / (seconds - generate_seconds) / 1e6;
  const nlohmann::json j = {{"bench", "to-netcdf"},  {"n", n},
                            {"chunk", chunk},        {"deflate", deflate},
                            {"ranks", weft::nranks()}, {"seconds", seconds},
                            {"mbps", mbps},          {"dd_mbps", dd},
                            {"ratio", mbps / dd},    {"generate_seconds", generate_seconds},
                            {"write_mbps", write_mbps}, {"write_ratio", write_mbps / dd},
                            {"correct", std::fabs(got - sum) <= 1e-9 * std::fabs(sum)}, {"dir", dir.string()}};
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
