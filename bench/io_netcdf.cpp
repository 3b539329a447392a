// weft-bench to-netcdf / from-netcdf: an 800 MB float64 array (10k x 10k,
// blocks of 1000 x 1000) written to and read from a NetCDF-4 variable
// x(y, x), beside `dd` to the same folder in turns (io_bench.hpp).
//
//   weft-bench to-netcdf [--dir DIR] [--n 10000] [--chunk 1000] [--deflate 0] [--repeat 3]
//   weft-bench from-netcdf [--dir DIR] [--n 10000] [--chunk 1000] [--read-chunk auto] [--repeat 3]
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench to-netcdf
//
// As to-hdf5 (io_hdf5.cpp): to-netcdf times to_netcdf of a random array
// generated on the ranks that write it, beside dd's conv=fdatasync write
// (write_figures, io_bench.hpp). from-netcdf writes the file and times
// from_netcdf(...).sum() after dropping it from the page cache (blocks
// --read-chunk: "auto" grows the variable's chunks to ~128 MB, a number
// reads blocks of that many rows and columns), beside dd reading the same
// file (read_figures).
// mbps are 1e6 bytes per second; ratio is mbps / dd_mbps.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "io_bench.hpp"
#include "options.hpp"
#include "weft/array.hpp"
#include "weft/io/netcdf.hpp"

namespace weft_bench {
namespace {

// to_netcdf of w.x as the variable x(y, x) of `file`.
void write_variable(const IoWorkload& w, const std::string& file, int deflate) {
  weft::io::to_netcdf(file, {{"x", w.x, {"y", "x"}}}, {}, {.overwrite = true, .deflate_level = deflate}, w.co);
}

}  // namespace

void to_netcdf(Options& opts) {
  const IoWorkload w(opts);
  const long deflate = opts.get_int("deflate", 0);
  opts.check_all_used();
  const std::string file = w.file(".nc").string();
  nlohmann::json j = w.fields("to-netcdf");
  j["deflate"] = deflate;
  j.update(write_figures(
      w, file, [&] { write_variable(w, file, static_cast<int>(deflate)); },
      [&] { return w.sum_of(weft::io::from_netcdf(file, "x")); }));
  std::printf("%s\n", j.dump().c_str());
}

void from_netcdf(Options& opts) {
  const IoWorkload w(opts);
  const auto [read_chunks, read_chunk] = read_chunks_option(opts);
  opts.check_all_used();
  const std::string file = w.file(".nc").string();
  write_variable(w, file, 0);
  nlohmann::json j = w.fields("from-netcdf");
  j["read_chunk"] = read_chunk;
  j.update(read_figures(w, file, w.sum_of(w.x),
                        [&] { return w.sum_of(weft::io::from_netcdf(file, "x", read_chunks)); }));
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
