// weft/io/npy.hpp on the sync and threads schedulers: npy stacks checked by
// numpy.load and dask.array.from_npy_stack, stacks dask wrote read by weft,
// raw files checked by numpy.fromfile, the errors naming their paths, and
// writes that fail half-way leaving nothing behind.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "array/numpy_oracle.hpp"
#include "io/block_functions.hpp"
#include "io/scratch.hpp"
#include "weft/array.hpp"
#include "weft/error.hpp"
#include "weft/io/npy.hpp"
#include "weft/scheduler.hpp"

namespace fs = std::filesystem;
namespace wa = weft::array;
namespace wio = weft::io;
using Catch::Matchers::Contains;
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;

namespace {

const weft::SchedulerChoice kSchedulers[] = {weft::scheduler::sync, weft::scheduler::threads};

// Python that reads the stack in `dir` as numpy.load of every block file
// (concatenated along the info's axis), as dask.array.from_npy_stack, and
// the info itself: out = [blocks, dask's, chunks == want_chunks, axis, dtype str].
std::string read_stack_in_python(const std::string& dir, const std::string& want_chunks) {
  return "import pickle, dask.array as da\n"
         "info = pickle.load(open('" + dir + "/info', 'rb'))\n"
         "files = [np.load('" + dir + "/%d.npy' % i) for i in range(len(info['chunks'][info['axis']]))]\n"
         "out = [np.concatenate(files, axis=info['axis']), da.from_npy_stack('" + dir + "').compute(),\n"
         "       np.array(info['chunks'] == " + want_chunks + "), np.array(info['axis']),\n"
         "       np.array(isinstance(info['dtype'], np.dtype) and info['dtype'] == files[0].dtype)]\n";
}

// Checks that f() throws E whose message holds `id` and `path`.
template <class E, class F>
void check_error(F&& f, const std::string& id, const std::string& path) {
  try {
    f();
    FAIL("no error");
  } catch (const E& e) {
    CHECK_THAT(std::string(e.what()), Contains(id) && Contains(path));
  }
}

}  // namespace

TEST_CASE("to_npy_stack writes what numpy.load and dask.array.from_npy_stack read", "[io-npy]") {
  Scratch scratch;
  const wa::Array x = wa::random::random({37, 23}, {10, 7}) * 100.0;
  const wa::NDArray want = x.compute();
  for (const auto scheduler : kSchedulers) {
    const std::string kind(weft::to_string(scheduler.kind));
    const std::string along0 = scratch / ("a0-" + kind), along1 = scratch / ("a1-" + kind);
    wio::to_npy_stack(along0, x, 0, {}, scheduler);
    wio::to_npy_stack(along1 + "/", x, -1, {}, scheduler);  // a trailing slash names the folder
    const auto got0 = numpy(read_stack_in_python(along0, "((10, 10, 10, 7), (23,))"));
    const auto got1 = numpy(read_stack_in_python(along1, "((37,), (7, 7, 7, 2))"));
    for (const auto* got : {&got0, &got1}) {
      check_close((*got)[0], want, 0.0, 0.0, true, "numpy.load");
      check_close((*got)[1], want, 0.0, 0.0, true, "dask.array.from_npy_stack");
      CHECK((*got)[2].item<bool>());
      CHECK((*got)[4].item<bool>());
    }
    CHECK(got0[3].item<std::int64_t>() == 0);
    CHECK(got1[3].item<std::int64_t>() == 1);
    // ...and weft reads both back, one block per file.
    const wa::Array back1 = wio::from_npy_stack(along1);
    CHECK(back1.chunks() == wa::Chunks{{37}, {7, 7, 7, 2}});
    CHECK(back1.compute(scheduler).equals(want));
    CHECK(wio::from_npy_stack(along0).compute(scheduler).equals(want));
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(along1)) files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"0.npy", "1.npy", "2.npy", "3.npy", "info"});
  }
  CHECK(scratch.entries() == std::vector<std::string>{"a0-sync", "a0-threads", "a1-sync", "a1-threads"});
}

TEST_CASE("npy stacks keep every dtype, uneven and empty blocks", "[io-npy]") {
  Scratch scratch;
  const wa::Array base = wa::arange(wa::Scalar(std::int64_t{-30}), wa::Scalar(std::int64_t{30}),
                                    wa::Scalar(std::int64_t{1}), std::nullopt, 7)
                             .reshape({6, 10})
                             .rechunk(wa::ChunkSpec(wa::Chunks{{1, 4, 1}, {3, 3, 4}}));
  const wa::DType types[] = {wa::DType::float64, wa::DType::float32, wa::DType::int64, wa::DType::int32,
                             wa::DType::uint8,   wa::DType::bool_,   wa::DType::complex128};
  std::string code = "import dask.array as da\nout = []\n";
  std::vector<wa::NDArray> wants;
  for (const wa::DType t : types) {
    const wa::Array x = t == wa::DType::bool_         ? base > 3
                        : t == wa::DType::complex128 ? base * wa::Scalar(std::complex<double>(1, -2))
                                                      : base.astype(t);
    const std::string dir = scratch / std::string(wa::dtype_name(t));
    wio::to_npy_stack(dir, x, 0, {}, weft::scheduler::threads);
    code += "out += [np.concatenate([np.load('" + dir + "/%d.npy' % i) for i in range(3)]), da.from_npy_stack('" +
            dir + "').compute()]\n";
    wants.push_back(x.compute());
    const wa::Array back = wio::from_npy_stack(dir);
    CHECK(back.dtype() == t);
    CHECK(back.chunks() == wa::Chunks{{1, 4, 1}, {10}});
    CHECK(back.compute(weft::scheduler::sync).equals(wants.back()));
  }
  // An empty array: one empty block, read by NumPy and dask as (0, 3).
  const std::string empty = scratch / "empty";
  wio::to_npy_stack(empty, wa::zeros({0, 3}, wa::DType::int32), 0, {}, weft::scheduler::sync);
  code += "out += [np.load('" + empty + "/0.npy'), da.from_npy_stack('" + empty + "').compute()]\n";
  const auto got = numpy(code);
  for (std::size_t i = 0; i < wants.size(); ++i) {
    INFO(wa::dtype_name(types[i]));
    check_close(got[2 * i], wants[i], 0.0, 0.0, true, "numpy.load");
    check_close(got[2 * i + 1], wants[i], 0.0, 0.0, true, "dask");
  }
  for (std::size_t i = 2 * wants.size(); i < got.size(); ++i) {
    CHECK(got[i].shape() == wa::Shape{0, 3});
    CHECK(got[i].dtype() == wa::DType::int32);
  }
  const wa::Array back = wio::from_npy_stack(empty);
  CHECK(back.shape() == wa::Shape{0, 3});
  CHECK(back.compute(weft::scheduler::sync).shape() == wa::Shape{0, 3});
  // A 0-d array has no axis to stack along.
  check_error<weft::ValueError>([&] { wio::to_npy_stack(scratch / "scalar", wa::zeros({}, wa::DType::float64)); },
                                "[weft.value.bad-axis]", "axis 0");
  check_error<weft::ValueError>([&] { wio::to_npy_stack(scratch / "axis2", base, 2); }, "[weft.value.bad-axis]",
                                "axis 2");
}

TEST_CASE("the info pickle is what pickle.dumps writes for dask", "[io-npy]") {
  Scratch scratch;
  const std::string dir = scratch / "s";
  const wa::Array x = wa::ones({70000, 2}, wa::DType::float32, wa::ChunkSpec(wa::Chunks{{300, 69700}, {2}}));
  wio::to_npy_stack(dir, x, 0, {}, weft::scheduler::sync);
  // Python's own protocol-2 pickle of the same dictionary unpickles equal,
  // pickletools accepts weft's opcodes (sizes over 65535 included), and they
  // are Python's own once its unused memo stores are dropped.
  const auto got = numpy(
      "import pickle, pickletools, io\n"
      "data = open('" + dir + "/info', 'rb').read()\n"
      "pickletools.dis(data, out=io.StringIO())\n"
      "info = pickle.loads(data)\n"
      "want = {'chunks': ((300, 69700), (2,)), 'dtype': np.dtype('<f4'), 'axis': 0}\n"
      "out = [np.array(info == want), np.array(pickle.loads(pickle.dumps(want, 2)) == info),\n"
      "       np.array(type(info['chunks'][0]) is tuple), np.array(data[:2] == b'\\x80\\x02'),\n"
      "       np.array(pickletools.optimize(pickle.dumps(want, 2)) == data)]\n");
  for (const auto& flag : got) CHECK(flag.item<bool>());
}

TEST_CASE("from_npy_stack reads stacks dask wrote: protocol 4 info, big-endian, Fortran order", "[io-npy]") {
  Scratch scratch;
  const std::string a = scratch / "a", b = scratch / "b", c = scratch / "c";
  const auto want = numpy(
      "import dask.array as da\n"
      "x = (np.arange(7 * 9 * 4, dtype=np.int32) - 100).reshape(7, 9, 4)\n"
      "da.to_npy_stack('" + a + "', da.from_array(x, chunks=(3, 2, 2)), axis=1)\n"
      "y = np.linspace(0, 1, 40).reshape(8, 5).astype('>f8')\n"
      "da.to_npy_stack('" + b + "', da.from_array(y, chunks=(3, 5)), axis=0)\n"
      "z = (np.arange(30) * 1.5).reshape(6, 5)\n"
      "da.to_npy_stack('" + c + "', da.from_array(z, chunks=(4, 5)), axis=0)\n"
      "np.save('" + c + "/0.npy', np.asfortranarray(z[:4]))\n"
      "out = [x, y.astype('<f8'), z]\n");
  for (const auto scheduler : kSchedulers) {
    const wa::Array xa = wio::from_npy_stack(a);
    CHECK(xa.chunks() == wa::Chunks{{7}, {2, 2, 2, 2, 1}, {4}});
    CHECK(xa.compute(scheduler).equals(want[0]));
    const wa::Array yb = wio::from_npy_stack(b);
    CHECK(yb.dtype() == wa::DType::float64);
    CHECK(yb.compute(scheduler).equals(want[1]));
    CHECK(wio::from_npy_stack(c).compute(scheduler).equals(want[2]));
  }
}

TEST_CASE("npy stack errors name the path and the problem", "[io-npy]") {
  Scratch scratch;
  const std::string dir = scratch / "s";
  const wa::Array x = wa::arange(wa::Scalar(0.0), wa::Scalar(12.0), wa::Scalar(1.0), std::nullopt, 4);
  wio::to_npy_stack(dir, x, 0, {}, weft::scheduler::sync);

  check_error<weft::IoError>([&] { wio::from_npy_stack(scratch / "none"); }, "[weft.io.cannot-open]", "none");
  check_error<weft::IoError>([&] { wio::to_npy_stack(dir, x); }, "[weft.io.target-exists]", dir);
  check_error<weft::IoError>([&] { wio::to_npy_stack(scratch / "no/such/s", x); }, "[weft.io.cannot-write]",
                             "does not exist");
  std::ofstream(scratch / "file") << "a file";
  check_error<weft::IoError>([&] { wio::to_npy_stack(scratch / "file", x, 0, {.overwrite = true}); },
                             "[weft.io.cannot-write]", "is not a folder");

  SECTION("overwrite replaces a whole stack") {
    wio::to_npy_stack(dir, x.rechunk(wa::ChunkSpec{6}), 0, {.overwrite = true}, weft::scheduler::threads);
    CHECK(!fs::exists(dir + "/2.npy"));
    const wa::Array back = wio::from_npy_stack(dir);
    CHECK(back.chunks() == wa::Chunks{{6, 6}});
    CHECK(back.compute().equals(x.compute()));
    CHECK(scratch.entries() == std::vector<std::string>{"file", "s"});
  }
  SECTION("a missing info or block file") {
    fs::remove(dir + "/1.npy");
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-open]", dir + "/1.npy");
    fs::remove(dir + "/info");
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-open]", dir + "/info");
  }
  SECTION("a block whose header disagrees with the info") {
    numpy("np.save('" + dir + "/1.npy', np.arange(4, dtype=np.int32))\nout = 0");
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-read]", "holds int32 (4,)");
  }
  SECTION("a truncated block, before and after the array is made") {
    const wa::Array back = wio::from_npy_stack(dir);
    fs::resize_file(dir + "/2.npy", fs::file_size(dir + "/2.npy") - 8);
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-read]", dir + "/2.npy");
    try {
      back.compute(weft::scheduler::sync);
      FAIL("no error");
    } catch (const weft::TaskError& e) {
      CHECK_THAT(e.original_message(), Contains("[weft.io.cannot-read]") && Contains("truncated") && Contains("2.npy"));
    }
  }
  SECTION("not a pickle, not a .npy file") {
    std::ofstream(dir + "/0.npy") << "not numpy";
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-read]", dir + "/0.npy");
    std::ofstream(dir + "/info") << "\x80\x02].";  // a pickled empty list
    check_error<weft::IoError>([&] { wio::from_npy_stack(dir); }, "[weft.io.cannot-read]", "no dictionary");
  }
}

TEST_CASE("a write that fails half-way leaves no stack or raw file and existing ones untouched", "[io-npy]") {
  Scratch scratch;
  const std::string fresh = scratch / "fresh", kept = scratch / "kept", raw = scratch / "raw.bin";
  const wa::Array good = wa::ones({8, 3}, wa::DType::float64, 2);
  wio::to_npy_stack(kept, good, 0, {}, weft::scheduler::sync);
  std::ofstream(raw) << "precious";
  const wa::Array bad = wa::from_block_function(&weft::test::failing_rows<2, 3>, {8, 3}, wa::DType::float64, {2, 3});
  for (const auto scheduler : kSchedulers) {
    CHECK_THROWS_AS(wio::to_npy_stack(fresh, bad, 0, {}, scheduler), weft::TaskError);
    CHECK_THROWS_AS(wio::to_npy_stack(kept, bad, 0, {.overwrite = true}, scheduler), weft::TaskError);
    CHECK_THROWS_AS(wio::to_raw(raw, bad, {.overwrite = true}, scheduler), weft::TaskError);
    CHECK_THROWS_AS(wio::to_raw(scratch / "fresh.bin", bad, {}, scheduler), weft::TaskError);
  }
  CHECK(scratch.entries() == std::vector<std::string>{"kept", "raw.bin"});
  CHECK(wio::from_npy_stack(kept).compute().equals(good.compute()));
  std::ifstream in(raw);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "precious");
}

TEST_CASE("to_raw writes what numpy.fromfile reads; from_raw reads NumPy's files", "[io-raw][io-npy]") {
  Scratch scratch;
  const wa::Array x = (wa::random::random({13, 11, 5}, {4, 3, 2}) * 1000.0).astype(wa::DType::int32);
  const wa::NDArray want = x.compute();
  for (const auto scheduler : kSchedulers) {
    const std::string path = scratch / ("x-" + std::string(weft::to_string(scheduler.kind)) + ".bin");
    wio::to_raw(path, x, {}, scheduler);
    const auto got = numpy("out = np.fromfile('" + path + "', dtype='<i4').reshape(13, 11, 5)");
    check_close(got[0], want, 0.0, 0.0, true, "numpy.fromfile");
    for (const wa::ChunkSpec& chunks : {wa::ChunkSpec{5, 11, 5}, wa::ChunkSpec{13, 4, 3}, wa::ChunkSpec("auto")})
      CHECK(wio::from_raw(path, {13, 11, 5}, wa::DType::int32, chunks).compute(scheduler).equals(want));
  }
  // A file NumPy wrote after a 16-byte header; a 0-d one.
  const std::string numpy_file = scratch / "numpy.bin", scalar = scratch / "scalar.bin";
  const auto written = numpy(
      "z = np.linspace(-1, 1, 60).reshape(6, 10)\n"
      "with open('" + numpy_file + "', 'wb') as f:\n"
      "    f.write(b'0123456789abcdef')\n"
      "    z.tofile(f)\n"
      "np.array(2.5).tofile('" + scalar + "')\n"
      "out = z\n");
  CHECK(wio::from_raw(numpy_file, {6, 10}, wa::DType::float64, wa::ChunkSpec{4, 3}, 16).compute().equals(written[0]));
  CHECK(wio::from_raw(scalar, {}, wa::DType::float64).compute().item<double>() == 2.5);
  wio::to_raw(scratch / "zero-d.bin", wa::full({}, wa::Scalar(std::int64_t{-7})), {}, weft::scheduler::sync);
  CHECK(numpy("out = np.fromfile('" + (scratch / "zero-d.bin") + "', dtype='<i8')")[0].to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{-7});

  check_error<weft::ValueError>([&] { wio::from_raw(numpy_file, {6, 10}, wa::DType::float64); },
                                "[weft.value.bad-option]", numpy_file);
  check_error<weft::IoError>([&] { wio::from_raw(scratch / "none.bin", {2}, wa::DType::float64); },
                             "[weft.io.cannot-open]", "none.bin");
  check_error<weft::IoError>([&] { wio::to_raw(numpy_file, x); }, "[weft.io.target-exists]", numpy_file);
}
