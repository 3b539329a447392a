// HDF5 on the distributed scheduler: every worker writes the blocks it holds
// into one file with parallel HDF5 (independent and collective transfers,
// filtered datasets, several datasets and groups), h5py checks what was
// written against the sync scheduler's elements, and the workers read it back.
// Run by tests/mpi/io_hdf5.sh without a launcher and on 1 to 5 ranks.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "../array/numpy_oracle.hpp"
#include "../io/block_functions.hpp"
#include "../io/scratch.hpp"
#include "weft/array.hpp"
#include "weft/config.hpp"
#include "weft/io/hdf5.hpp"
#include "weft/weft.hpp"

namespace {

namespace fs = std::filesystem;
namespace wa = weft::array;
namespace wio = weft::io;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::positional_block;

// Writes x on the cluster, then requires h5py to read the sync scheduler's
// elements and the given chunk shape, and weft to read them back on the cluster.
void check_round_trip(const Scratch& scratch, const wa::Array& x, const wio::Hdf5WriteOptions& options,
                      const std::string& name) {
  const std::string path = scratch / (name + ".h5");
  wio::to_hdf5(path, "/data/x", x, options);
  const wa::NDArray want = x.compute(weft::scheduler::sync);
  const auto got = numpy("import h5py\nf = h5py.File('" + path + "', 'r')\nd = f['/data/x']\n"
                         "out = [d[...], np.array(d.chunks), np.array(d.compression == " +
                         (options.gzip_level > 0 ? std::string("'gzip'") : std::string("None")) + ")]");
  INFO(name);
  check_close(got[0], want, 0.0, 0.0, true, name);
  std::vector<std::int64_t> chunk;
  for (const auto& axis : x.chunks()) chunk.push_back(axis.front());
  CHECK(got[1].to_vector<std::int64_t>() == chunk);
  CHECK(got[2].item<bool>());
  CHECK(wio::from_hdf5(path, "/data/x", x.chunks()).compute().equals(want));
  CHECK(wio::from_hdf5(path, "/data/x").compute().equals(want));
}

}  // namespace

TEST_CASE("parallel HDF5 writes: independent, collective, filtered", "[io-hdf5-dist]") {
  Scratch scratch;
  // 7 x 5 blocks of odd sizes: workers hold different numbers of blocks.
  const wa::Array x = wa::from_block_function(&positional_block, {130, 97}, wa::DType::float64, {20, 21});
  check_round_trip(scratch, x, {}, "independent");
  {
    weft::config::set collective{{"io.hdf5.transfer", "collective"}};
    check_round_trip(scratch, x, {}, "collective");
  }
  check_round_trip(scratch, x, {.gzip_level = 3, .shuffle = true}, "gzip");
  check_round_trip(scratch, wa::random::random({3, 200}, {1, 64}).astype(wa::DType::float32), {.gzip_level = 1},
                   "thin-float32-blocks");
  CHECK(scratch.entries().size() == 4);
}

TEST_CASE("several datasets, groups, attributes, 0-d and empty arrays in one parallel write", "[io-hdf5-dist]") {
  Scratch scratch;
  const std::string path = scratch / "many.h5";
  const wa::Array a = wa::random::random({64, 64}, {16, 32});
  const wa::Array n = wa::arange(wa::Scalar(std::int64_t{0}), wa::Scalar(std::int64_t{1000}), wa::Scalar(std::int64_t{1}),
                                 wa::DType::int64, 77);
  const wa::Array total = a.sum();
  const wa::Array empty = wa::zeros({0, 5}, wa::DType::int32, {4, 2});
  for (const int gzip : {0, 4}) {
    wio::to_hdf5(path, {{"/a", a, {{"units", "m"}}}, {"/g/n", n}, {"/g/h/total", total}, {"/empty", empty}},
                 {.overwrite = true, .gzip_level = gzip, .attributes = {{"run", std::int64_t{42}}}});
    const auto got = numpy("import h5py\nf = h5py.File('" + path + "', 'r')\n"
                           "ok = [f['/a'].attrs['units'] == 'm', f['/a'].attrs['run'] == 42, f['/g/n'].attrs['run'] == 42,\n"
                           "      f['/empty'].shape == (0, 5), f['/g/n'].chunks == (77,)]\n"
                           "out = [np.array(ok), f['/a'][...], f['/g/n'][...], f['/g/h/total'][()]]");
    const auto want = weft::compute(weft::scheduler::sync, a, n, total);
    CHECK(got[0].to_vector<bool>() == std::vector<bool>(5, true));
    check_close(got[1], std::get<0>(want), 0.0, 0.0, true, "/a");
    check_close(got[2], std::get<1>(want), 0.0, 0.0, true, "/g/n");
    CHECK(got[3].item<double>() == std::get<2>(want).item<double>());
    CHECK(wio::from_hdf5(path, "/g/n", 100).compute().equals(std::get<1>(want)));
  }
  CHECK(scratch.entries().size() == 1);
}

TEST_CASE("a parallel write whose task fails leaves no file", "[io-hdf5-dist]") {
  Scratch scratch;
  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<1>, {40, 40}, wa::DType::float64, 10);
  CHECK_THROWS_AS(wio::to_hdf5(scratch / "bad.h5", "x", bad), weft::TaskError);
  CHECK(scratch.entries().size() == 0);
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "io-hdf5-test"); }
