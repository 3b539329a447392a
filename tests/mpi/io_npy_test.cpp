// npy stacks and raw files on the distributed scheduler: every worker writes
// the blocks it holds into the staged folder (or at their offsets in the one
// raw file), NumPy and dask.array.from_npy_stack check the result against the
// sync scheduler's elements, the workers read it back, and a failing block
// leaves nothing. Run by tests/mpi/io_npy.sh without a launcher and on 1 to 3 ranks.
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
#include "weft/io/npy.hpp"
#include "weft/weft.hpp"

namespace {

namespace fs = std::filesystem;
namespace wa = weft::array;
namespace wio = weft::io;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::positional_block;

}  // namespace

TEST_CASE("npy stacks written by every worker, read by NumPy, dask and weft", "[io-npy-dist]") {
  Scratch scratch;
  // 7 x 5 blocks of odd sizes: the stack rechunks to 7 (axis 0) or 5 (axis 1) files.
  const wa::Array x = wa::from_block_function(&positional_block, {130, 97}, wa::DType::float64, {20, 21});
  const wa::NDArray want = x.compute(weft::scheduler::sync);
  for (const int axis : {0, 1}) {
    const std::string dir = scratch / ("axis" + std::to_string(axis));
    wio::to_npy_stack(dir, x, axis);
    const auto got = numpy("import dask.array as da\n"
                           "n = len(da.from_npy_stack('" + dir + "').chunks[" + std::to_string(axis) + "])\n"
                           "out = [np.concatenate([np.load('" + dir + "/%d.npy' % i) for i in range(n)], axis=" +
                           std::to_string(axis) + "), da.from_npy_stack('" + dir + "').compute()]");
    check_close(got[0], want, 0.0, 0.0, true, "numpy.load");
    check_close(got[1], want, 0.0, 0.0, true, "dask");
    CHECK(wio::from_npy_stack(dir).compute().equals(want));
  }
  // Overwriting on the cluster.
  wio::to_npy_stack(scratch / "axis0", x * 2.0, 0, {.overwrite = true});
  CHECK(wio::from_npy_stack(scratch / "axis0").compute().equals((x * 2.0).compute(weft::scheduler::sync)));
  CHECK(scratch.entries().size() == 2);
}

TEST_CASE("a raw file written by every worker at its blocks' offsets", "[io-npy-dist]") {
  Scratch scratch;
  const std::string path = scratch / "x.bin";
  const wa::Array x = wa::from_block_function(&positional_block, {130, 97}, wa::DType::float64, {20, 21});
  const wa::NDArray want = x.compute(weft::scheduler::sync);
  wio::to_raw(path, x);
  check_close(numpy("out = np.fromfile('" + path + "', dtype='<f8').reshape(130, 97)")[0], want, 0.0, 0.0, true,
              "numpy.fromfile");
  CHECK(wio::from_raw(path, {130, 97}, wa::DType::float64, wa::ChunkSpec{33, 40}).compute().equals(want));
  CHECK(scratch.entries().size() == 1);
}

TEST_CASE("a distributed npy or raw write whose task fails leaves nothing", "[io-npy-dist]") {
  Scratch scratch;
  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<1>, {40, 40}, wa::DType::float64, 10);
  CHECK_THROWS_AS(wio::to_npy_stack(scratch / "bad", bad), weft::TaskError);
  CHECK_THROWS_AS(wio::to_raw(scratch / "bad.bin", bad), weft::TaskError);
  CHECK(scratch.entries().size() == 0);
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "io-npy-test"); }
