// Partitioned HDF5 output on the distributed scheduler: Partition::worker
// writes one part per worker (several parts, one writer each),
// Partition::node one part per host (one here, written by every worker
// through MPI-IO). h5py reads the virtual file as the array before and after
// stage_out (the staged folder moved elsewhere, the node-local parts
// deleted); a part gone before stage_out and a block failing in the write
// are errors that leave no file. Run by tests/mpi/io_partitioned.sh on 3
// and 4 ranks with --local-directory, and with the hidden tag
// "[.keep-output]" to leave a partitioned file for `weft stage-out`.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <span>
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
using Catch::Matchers::Contains;
using weft::mpi_test::client;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::slow_positional_block;

// The workers' --local-directory (the script passes one).
std::string local_directory() { return weft::config::get<std::string>("distributed.worker.local-directory"); }

// The part files of targets named <stem>.h5 in `folder`: <stem>.<id>.part<G>.h5.
std::vector<std::string> parts_in(const std::string& folder, const std::string& stem) {
  const std::regex part(stem + R"(\.[0-9a-f]{8}\.part[0-9]+\.h5)");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder))
    if (std::regex_match(e.path().filename().string(), part)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// h5py's reading of /data/x in `path`: [values, number of parts listed,
// number of distinct source files its mappings name].
std::vector<wa::NDArray> read_virtual(const std::string& path) {
  return numpy("import h5py\nf = h5py.File('" + path + "', 'r')\nd = f['/data/x']\n"
               "out = [d[...], np.array(len(f.attrs['weft_part_files'])),\n"
               "       np.array(len({s.file_name for s in d.virtual_sources()}))]");
}

}  // namespace

TEST_CASE("partitioned writes read back whole, before and after stage_out", "[io-partitioned-dist]") {
  const int workers = std::max(client().nworkers(), 1);
  const wa::Array x = wa::from_block_function(&slow_positional_block, {130, 97}, wa::DType::float64, {20, 21});
  const wa::NDArray want = x.compute(weft::scheduler::sync);
  for (const auto& [partition, name] : {std::pair{wio::Partition::worker, "worker"}, std::pair{wio::Partition::node, "node"}})
    for (const int gzip : {0, 3}) {
      INFO(name << " gzip " << gzip);
      Scratch scratch;
      const std::string stem = std::string("x-") + name + std::to_string(gzip);
      const std::string path = scratch / (stem + ".h5");
      wio::to_hdf5(path, "/data/x", x, {.gzip_level = gzip, .partitioned = partition});
      const std::vector<std::string> parts = parts_in(local_directory(), stem);
      // One host: one part per worker, or one for the node.
      CHECK(parts.size() == static_cast<std::size_t>(partition == wio::Partition::worker ? workers : 1));
      auto got = read_virtual(path);
      check_close(got[0], want, 0.0, 0.0, true, path);
      CHECK(got[1].item<std::int64_t>() == static_cast<std::int64_t>(parts.size()));
      // io_partitioned.sh hands out one root task per worker thread at a
      // time, so the slow blocks spread and several parts hold blocks.
      if (partition == wio::Partition::worker && workers > 1 &&
          weft::config::get<std::int64_t>("distributed.scheduler.worker-saturation") == 1)
        CHECK(got[2].item<std::int64_t>() > 1);
      CHECK(wio::from_hdf5(path, "/data/x").compute().equals(want));

      const std::string staged = scratch / "staged";
      wio::stage_out(path, staged);
      for (const std::string& part : parts) fs::remove(part);
      fs::remove(path);
      const std::string moved = scratch / "moved";
      fs::rename(staged, moved);
      CHECK(scratch.entries() == std::vector<std::string>{"moved"});
      got = read_virtual(moved + "/" + stem + ".h5");
      check_close(got[0], want, 0.0, 0.0, true, moved);
      CHECK(got[1].item<std::int64_t>() == static_cast<std::int64_t>(parts.size()));
      CHECK(wio::from_hdf5(moved + "/" + stem + ".h5", "/data/x").compute().equals(want));
    }
}

TEST_CASE("a part gone before stage_out is named; a failed partitioned write leaves no file",
          "[io-partitioned-dist]") {
  Scratch scratch;
  const wa::Array x = wa::from_block_function(&slow_positional_block, {40, 40}, wa::DType::float64, 10);
  const std::string path = scratch / "gone.h5";
  wio::to_hdf5(path, "/data/x", x, {.partitioned = wio::Partition::worker});
  const std::vector<std::string> parts = parts_in(local_directory(), "gone");
  REQUIRE(!parts.empty());
  fs::remove(parts.back());
  try {
    wio::stage_out(path, scratch / "staged");
    FAIL("no error");
  } catch (const weft::TaskError& e) {
    CHECK_THAT(e.original_message(), Contains("[weft.io.missing-part]") && Contains(parts.back() + "' (written on "));
  }
  CHECK(fs::is_empty(scratch / "staged"));
  for (const std::string& part : parts_in(local_directory(), "gone")) fs::remove(part);

  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<1>, {40, 40}, wa::DType::float64, 10);
  for (const auto partition : {wio::Partition::worker, wio::Partition::node}) {
    CHECK_THROWS_AS(wio::to_hdf5(scratch / "bad.h5", "x", bad, {.partitioned = partition}), weft::TaskError);
    CHECK(parts_in(local_directory(), "bad").empty());
    CHECK(!fs::exists(scratch / "bad.h5"));
  }
  // No temporary file is left either.
  for (const auto& e : fs::directory_iterator(local_directory()))
    CHECK_THAT(e.path().string(), !Contains(".weft-tmp-"));
}

// For io_partitioned.sh: x = arange(2400).reshape(40, 60) written
// partitioned by worker to $TEST_PARTITIONED_DIR/x.h5, for `weft stage-out`.
TEST_CASE("write a partitioned file for weft stage-out", "[.keep-output]") {
  const char* dir = std::getenv("TEST_PARTITIONED_DIR");
  REQUIRE(dir != nullptr);
  const wa::Array x = wa::arange(wa::Scalar(0.0), wa::Scalar(2400.0), wa::Scalar(1.0), wa::DType::float64, 240)
                          .reshape({40, 60})
                          .rechunk({10, 20});
  wio::to_hdf5(std::string(dir) + "/x.h5", "/x", x, {.partitioned = wio::Partition::worker});
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "io-partitioned-test"); }
