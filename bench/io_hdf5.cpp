// weft-bench to-hdf5 / from-hdf5: an 800 MB float64 array (10k x 10k, blocks
// of 1000 x 1000) written to and read from HDF5, beside `dd` to the same
// folder, in turns (io_bench.hpp).
//
//   weft-bench to-hdf5 [--dir DIR] [--n 10000] [--chunk 1000] [--gzip 0] [--repeat 3]
//   weft-bench from-hdf5 [--dir DIR] [--n 10000] [--chunk 1000] [--repeat 3] [--read-chunk auto]
//     (read blocks: auto grows the file's chunks)
//   timeout 600 mpirun --oversubscribe --bind-to none -n 3 bench/weft-bench to-hdf5
//
// to-hdf5 times to_hdf5 of a random array, generated on the ranks that
// write it (weft::persist would gather it to rank 0), beside dd's
// conv=fdatasync write (write_figures, io_bench.hpp). from-hdf5 writes the
// file and times from_hdf5(...).sum() after dropping it from the page cache,
// beside dd reading it (read_figures). mbps are 1e6 bytes per second; ratio
// is mbps / dd_mbps.
// WEFT_IO__DIRECT_READS=never (or always) in the environment compares the
// reads through the page cache with the default, O_DIRECT for uncached data.
#include <cstdio>
#include <string>

#include "io_bench.hpp"
#include "options.hpp"
#include "weft/array.hpp"
#include "weft/io/hdf5.hpp"

namespace weft_bench {

namespace wa = weft::array;

void to_hdf5(Options& opts) {
  const IoWorkload w(opts);
  const long gzip = opts.get_int("gzip", 0);
  opts.check_all_used();
  const std::string file = w.file(".h5").string();
  nlohmann::json j = w.fields("to-hdf5");
  j["gzip"] = gzip;
  j.update(write_figures(
      w, file, [&] { weft::io::to_hdf5(file, "/x", w.x, {.gzip_level = static_cast<int>(gzip)}, w.co); },
      [&] { return w.sum_of(weft::io::from_hdf5(file, "/x")); }));
  std::printf("%s\n", j.dump().c_str());
}

void from_hdf5(Options& opts) {
  const IoWorkload w(opts);
  const auto [read_chunks, read_chunk] = read_chunks_option(opts);
  opts.check_all_used();
  const std::string file = w.file(".h5").string();
  weft::io::to_hdf5(file, "/x", w.x, {.overwrite = true}, w.co);
  nlohmann::json j = w.fields("from-hdf5");
  j["read_chunk"] = read_chunk;
  j.update(read_figures(w, file, w.sum_of(w.x),
                        [&] { return w.sum_of(weft::io::from_hdf5(file, "/x", read_chunks)); }));
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
