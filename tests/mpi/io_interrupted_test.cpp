// "Nothing lost" on real ranks: writes of every format (to_hdf5, to_netcdf
// with an append, to_npy_stack, to_raw) that fail or are interrupted leave
// no file at the target, no temporary file, and an existing target as it was.
// Run by tests/mpi/io_interrupted.sh on 3 ranks:
//   io-interrupted-test              the Catch2 cases: a task error in one
//                                    block computed on one worker, then a
//                                    write in the same job that succeeds
//   io-interrupted-test "[.full-disk]"  IO_INTERRUPTED_DISK names a small
//                                    tmpfs: every format fills it (ENOSPC)
//   io-interrupted-test job FORMAT PHASE DIR   for the script's signals:
//                                    PHASE seed writes DIR's target; blocks
//                                    replaces it (netcdf: appends) with slow
//                                    blocks (the script signals a worker
//                                    while they compute), write with a large
//                                    array (signalled while it is written)
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../io/scratch.hpp"
#include "weft/array.hpp"
#include "weft/io/hdf5.hpp"
#include "weft/io/netcdf.hpp"
#include "weft/io/npy.hpp"
#include "weft/weft.hpp"

namespace {

namespace wa = weft::array;
namespace wio = weft::io;
using Catch::Matchers::Contains;
using weft::test::Scratch;
using weft::test::text_of;

// Rows per block of the arrays below; element (r, c) of a (rows, cols) array
// is r * cols + c, so the script checks a file against numpy.arange.
constexpr std::int64_t kChunkRows = 8;

wa::NDArray counting_block(std::span<const std::int64_t> index, const wa::Shape& shape) {
  wa::NDArray out(wa::DType::float64, shape);
  const std::int64_t cols = shape[1], first = index[0] * kChunkRows * cols;
  double* p = out.data<double>();
  for (std::int64_t i = 0; i < out.size(); ++i) p[i] = static_cast<double>(first + i);
  return out;
}

// Fails in block (2, 0) alone, so exactly one worker computes the failing task.
wa::NDArray one_failing_block(std::span<const std::int64_t> index, const wa::Shape& shape) {
  if (index[0] == 2 && index[1] == 0)
    throw std::runtime_error("block (2, 0) failed on purpose on rank " + std::to_string(weft::rank()));
  return counting_block(index, shape);
}

// A second per block, announced on stdout, so the script can signal a worker
// while blocks are computing.
wa::NDArray slow_block(std::span<const std::int64_t> index, const wa::Shape& shape) {
  std::printf("io-interrupted-test: computing a block on rank %d\n", weft::rank());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return counting_block(index, shape);
}

wa::Array counting(std::int64_t rows, std::int64_t cols) {
  return wa::from_block_function(&counting_block, {rows, cols}, wa::DType::float64, {kChunkRows, cols});
}

// The formats, each writing `x` to the target at `path` (a folder for npy);
// `replace` overwrites an existing target (appends to it for netcdf, whose
// x then gets a time axis of x's rows).
enum class Format { hdf5, netcdf, npy, raw };
const Format kFormats[] = {Format::hdf5, Format::netcdf, Format::npy, Format::raw};

const char* name_of(Format f) {
  switch (f) {
    case Format::hdf5: return "hdf5";
    case Format::netcdf: return "netcdf";
    case Format::npy: return "npy";
    case Format::raw: return "raw";
  }
  return "?";
}

Format format_named(const std::string& name) {
  for (const Format f : kFormats)
    if (name == name_of(f)) return f;
  throw std::invalid_argument("io-interrupted-test: unknown format '" + name + "'");
}

// The target's name in a folder: what the script looks for, too.
std::string target_name(Format f) {
  switch (f) {
    case Format::hdf5: return "out.h5";
    case Format::netcdf: return "out.nc";
    case Format::npy: return "out";
    case Format::raw: return "out.bin";
  }
  return "?";
}

void write(Format f, const std::string& path, const wa::Array& x, bool replace, int gzip = 0) {
  switch (f) {
    case Format::hdf5: wio::to_hdf5(path, "x", x, {.overwrite = replace, .gzip_level = gzip}); return;
    case Format::netcdf:
      wio::to_netcdf(path, {{"x", x, {"time", "x"}}}, {}, {.append = replace, .deflate_level = gzip});
      return;
    case Format::npy: wio::to_npy_stack(path, x, 0, {.overwrite = replace}); return;
    case Format::raw: wio::to_raw(path, x, {.overwrite = replace}); return;
  }
}

// What a reader of the format finds at `path` (the raw file's shape given).
wa::NDArray read(Format f, const std::string& path, const wa::Shape& shape) {
  switch (f) {
    case Format::hdf5: return wio::from_hdf5(path, "x").compute();
    case Format::netcdf: return wio::from_netcdf(path, "x").compute();
    case Format::npy: return wio::from_npy_stack(path).compute();
    case Format::raw: return wio::from_raw(path, shape, wa::DType::float64, wa::ChunkSpec{kChunkRows, shape[1]}).compute();
  }
  return {};
}

// The bytes of the target: the file, or every file of an npy stack.
std::string bytes_of(Format f, const std::string& path) {
  if (f != Format::npy) return text_of(path);
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string all;
  for (const std::string& name : names) all += name + ":" + text_of(path + "/" + name) + "\n";
  return all;
}

// A write that fails with the task error `expected` and leaves the folder as it was.
template <class Write>
void fails_cleanly(const Scratch& scratch, Write&& write, const std::string& expected) {
  const std::vector<std::string> before = scratch.entries();
  try {
    write();
    FAIL("the write should fail");
  } catch (const weft::TaskError& e) {
    CHECK_THAT(e.original_message(), Contains(expected));
  }
  CHECK(scratch.entries() == before);
}

// Columns of the signal tests' arrays: 1 MB rows, the same in every phase
// (a netcdf append needs the file's x).
constexpr std::int64_t kJobCols = 1 << 17;

// The job of the signal tests. PHASE seed writes the existing target (8 MB);
// blocks and write replace it (netcdf: append to it), print `written` and wait
// once more on the cluster, where the drain's "terminated" ends the job.
int signal_job(weft::Client& client, Format f, const std::string& phase, const std::string& dir) {
  const std::string path = dir + "/" + target_name(f);
  wa::Array x;
  if (phase == "seed") {
    write(f, path, counting(kChunkRows, kJobCols), false);
    return 0;
  }
  if (phase == "blocks") {
    x = wa::from_block_function(&slow_block, {8 * kChunkRows, kJobCols}, wa::DType::float64,
                                {kChunkRows, kJobCols});
  } else if (phase == "write") {
    x = counting(32 * kChunkRows, kJobCols);  // 256 MB in 32 blocks
  } else {
    throw std::invalid_argument("io-interrupted-test: unknown phase '" + phase + "'");
  }
  write(f, path, x, true);
  std::printf("io-interrupted-test: written\n");
  std::fflush(stdout);
  return client.submit([] { return 0; }).result();
}

}  // namespace

TEST_CASE("a task error in one block: no file, an existing one untouched, the next write succeeds",
          "[io-interrupted]") {
  Scratch scratch("weft-io-interrupted");
  const wa::Array bad = wa::from_block_function(&one_failing_block, {40, 24}, wa::DType::float64, {kChunkRows, 12});
  const wa::Array good = counting(40, 24);
  const wa::NDArray want = good.compute(weft::scheduler::sync);
  for (const Format f : kFormats) {
    INFO(name_of(f));
    const std::string path = scratch / target_name(f);
    const std::string failed = "block (2, 0) failed on purpose on rank ";
    // A fresh target: the folder stays empty.
    fails_cleanly(scratch, [&] { write(f, path, bad, false); }, failed);
    // The next write of the same job succeeds.
    write(f, path, good, false);
    CHECK(read(f, path, {40, 24}).equals(want));
    // An existing target is byte for byte what it was (netcdf: an append).
    const std::string before = bytes_of(f, path);
    fails_cleanly(scratch, [&] { write(f, path, bad, true); }, failed);
    CHECK(bytes_of(f, path) == before);
    write(f, path, good * 2.0, true);
    const wa::Array now = f == Format::netcdf ? wa::concatenate({good, good * 2.0}) : good * 2.0;
    CHECK(read(f, path, {40, 24}).equals(now.compute(weft::scheduler::sync)));
  }
  CHECK(scratch.entries() == std::vector<std::string>{"out", "out.bin", "out.h5", "out.nc"});
}

TEST_CASE("a full disk: every format fails naming the target, leaves nothing, keeps what was there",
          "[.full-disk]") {
  // A tmpfs of a few MB the script mounted; what is in it is the script's.
  const char* disk = std::getenv("IO_INTERRUPTED_DISK");
  REQUIRE(disk != nullptr);
  const std::string dir = disk;
  const std::filesystem::path folder(dir);
  auto entries = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(folder)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  };
  // 41 MB of random numbers (gzip cannot shrink them to fit), as wide as
  // `small`, so that netcdf appends them.
  const wa::Array big = wa::random::random({215040, 24}, {10240, 24});
  const wa::Array small = counting(40, 24);
  for (const Format f : kFormats) {
    for (const int gzip : {0, 4}) {
      if (gzip != 0 && (f == Format::npy || f == Format::raw)) continue;
      INFO(name_of(f) << " gzip " << gzip);
      const std::string path = dir + "/" + target_name(f);
      write(f, path, small, false);
      const std::string before = bytes_of(f, path);
      const std::vector<std::string> listed = entries();
      for (const bool replace : {true, false}) {
        const std::string target = replace ? path : dir + "/fresh-" + target_name(f);
        try {
          write(f, target, big, replace, gzip);
          FAIL("the write should fill the disk");
        } catch (const weft::TaskError& e) {
          CHECK_THAT(e.original_message(), Contains("[weft.io.cannot-write]") && Contains(target));
        }
        CHECK(entries() == listed);
        CHECK(bytes_of(f, path) == before);
      }
      // The disk is usable again: the next write in the job succeeds.
      write(f, path, small * 3.0, true);
      const wa::Array now = f == Format::netcdf ? wa::concatenate({small, small * 3.0}) : small * 3.0;
      CHECK(read(f, path, {40, 24}).equals(now.compute(weft::scheduler::sync)));
      std::filesystem::remove_all(path);
    }
  }
}

int main(int argc, char** argv) {
  if (std::find(argv + 1, argv + argc, std::string("job")) == argv + argc)
    return weft::mpi_test::run_catch_session(argc, argv, "io-interrupted-test");
  const int status = weft::main(argc, argv, [&](weft::Client& client) {
    // weft's flags (--scheduler-file) are gone from argv by now.
    if (argc != 5 || std::string(argv[1]) != "job")
      throw std::invalid_argument("usage: io-interrupted-test job FORMAT PHASE DIR");
    return signal_job(client, format_named(argv[2]), argv[3], argv[4]);
  });
  std::fprintf(stderr, "io-interrupted-test: exit status %d\n", status);
  return status;
}
