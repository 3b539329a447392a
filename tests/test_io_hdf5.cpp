// weft/io/hdf5.hpp on the sync and threads schedulers: round trips checked
// by h5py (values, dtypes, chunk shapes, filters, attributes), files h5py
// wrote read by weft, the errors before any task runs, and writes that fail
// half-way (a task error, a full disk) leaving no file behind.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
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
#include "weft/config.hpp"
#include "weft/error.hpp"
#include "weft/io/hdf5.hpp"
#include "weft/scheduler.hpp"

namespace fs = std::filesystem;
namespace wa = weft::array;
namespace wio = weft::io;
using Catch::Matchers::Contains;
using weft::test::cached_pages;
using weft::test::check_close;
using weft::test::drop_from_page_cache;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::text_of;

namespace {

const weft::SchedulerChoice kSchedulers[] = {weft::scheduler::sync, weft::scheduler::threads};

// Python code that opens `path` with h5py as f.
std::string h5py_open(const std::string& path) { return "import h5py\nf = h5py.File('" + path + "', 'r')\n"; }

}  // namespace

TEST_CASE("to_hdf5 writes what h5py reads: values, dtype, chunks aligned to the blocks", "[io-hdf5]") {
  Scratch scratch;
  const wa::Array x = wa::random::random({37, 23}, {10, 7}) * 100.0;
  const wa::NDArray want = x.compute();
  for (const auto scheduler : kSchedulers) {
    const std::string path = scratch / ("x-" + std::string(weft::to_string(scheduler.kind)) + ".h5");
    wio::to_hdf5(path, "/x", x, {}, scheduler);
    const auto got = numpy(h5py_open(path) + "d = f['/x']\nout = [d[...], np.array(d.chunks), np.array(d.compression is None)]");
    check_close(got[0], want, 0.0, 0.0, true, "values");
    CHECK(got[1].to_vector<std::int64_t>() == std::vector<std::int64_t>{10, 7});
    CHECK(got[2].item<bool>());
    // ...and weft reads it back in blocks of the dataset's chunks or multiples of them.
    const wa::Array back = wio::from_hdf5(path, "/x");
    CHECK(back.shape() == x.shape());
    CHECK(back.dtype() == wa::DType::float64);
    for (std::size_t axis = 0; axis < 2; ++axis)
      for (std::size_t b = 0; b + 1 < back.chunks()[axis].size(); ++b)
        CHECK(back.chunks()[axis][b] % x.chunks()[axis][0] == 0);
    CHECK(back.compute(scheduler).equals(want));
  }
  CHECK(scratch.entries() == std::vector<std::string>{"x-sync.h5", "x-threads.h5"});
}

TEST_CASE("to_hdf5 and from_hdf5 keep every dtype as h5py stores it", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "types.h5";
  const wa::Array base = wa::arange(wa::Scalar(std::int64_t{-30}), wa::Scalar(std::int64_t{30}),
                                    wa::Scalar(std::int64_t{1}), std::nullopt, 7)
                             .reshape({6, 10});
  const wa::DType types[] = {wa::DType::float32,   wa::DType::float64, wa::DType::int64,  wa::DType::int8,
                             wa::DType::uint16,    wa::DType::uint64,  wa::DType::bool_, wa::DType::complex64,
                             wa::DType::complex128};
  std::vector<wio::Hdf5Dataset> datasets;
  std::string code = h5py_open(path) + "out = []\n";
  for (const wa::DType t : types) {
    const std::string name = "/" + std::string(wa::dtype_name(t));
    datasets.push_back({name, t == wa::DType::bool_ ? base > 3 : (t == wa::DType::complex64 || t == wa::DType::complex128)
                                                                   ? (base * wa::Scalar(std::complex<double>(1, -2))).astype(t)
                                                                   : base.astype(t)});
    code += "out += [f['" + name + "'][...], np.array(str(f['" + name + "'].dtype) == '" + std::string(wa::dtype_name(t)) + "')]\n";
  }
  wio::to_hdf5(path, datasets, {}, weft::scheduler::threads);
  const auto got = numpy(code);
  for (std::size_t i = 0; i < datasets.size(); ++i) {
    const wa::NDArray want = datasets[i].array.compute();
    INFO(datasets[i].name);
    check_close(got[2 * i], want, 0.0, 0.0, true, "h5py's " + datasets[i].name);
    CHECK(got[2 * i + 1].item<bool>());
    const wa::Array back = wio::from_hdf5(path, datasets[i].name, wa::ChunkSpec{4, 3});
    CHECK(back.dtype() == want.dtype());
    CHECK(back.chunks() == wa::Chunks{{4, 2}, {3, 3, 3, 1}});
    CHECK(back.compute(weft::scheduler::sync).equals(want));
  }
}

TEST_CASE("from_hdf5 reads files h5py wrote: groups, chunked, contiguous, big-endian", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "by-h5py.h5";
  const auto want = numpy(
      "import h5py\n"
      "a = (np.arange(41 * 13, dtype=np.float32) * 0.5).reshape(41, 13)\n"
      "b = np.arange(-50, 50, dtype=np.int64).reshape(4, 25)\n"
      "c = np.linspace(0, 1, 30).astype('>f8')\n"
      "with h5py.File('" + path + "', 'w') as f:\n"
      "    f.create_dataset('/g/h/a', data=a, chunks=(5, 4), compression='gzip', shuffle=True)\n"
      "    f.create_dataset('b', data=b)\n"
      "    f.create_dataset('c', data=c, chunks=(7,))\n"
      "    f['s'] = np.float64(2.5)\n"
      "out = [a, b, c.astype('<f8'), np.float64(2.5)]\n");
  for (const auto scheduler : kSchedulers) {
    const wa::Array a = wio::from_hdf5(path, "/g/h/a");
    CHECK(a.dtype() == wa::DType::float32);
    // "auto" grows the dataset's (5, 4) chunks by whole multiples.
    for (std::size_t axis = 0; axis < 2; ++axis)
      for (std::size_t b = 0; b + 1 < a.chunks()[axis].size(); ++b)
        CHECK(a.chunks()[axis][b] % (axis == 0 ? 5 : 4) == 0);
    check_close(a.compute(scheduler), want[0], 0.0, 0.0, true, "/g/h/a");
    check_close(wio::from_hdf5(path, "/g/h/a", wa::ChunkSpec{6, 5}).compute(scheduler), want[0], 0.0, 0.0, true,
                "/g/h/a in odd blocks");
    check_close(wio::from_hdf5(path, "b", wa::ChunkSpec{3, 7}).compute(scheduler), want[1], 0.0, 0.0, true, "b");
    const wa::Array c = wio::from_hdf5(path, "c", wa::ChunkSpec{4});
    CHECK(c.dtype() == wa::DType::float64);
    check_close(c.compute(scheduler), want[2], 0.0, 0.0, true, "c (big-endian in the file)");
    const wa::Array s = wio::from_hdf5(path, "s");
    CHECK(s.ndim() == 0);
    CHECK(s.compute(scheduler).item<double>() == 2.5);
  }
}

TEST_CASE("from_hdf5 copies unfiltered data from the file into blocks that cross chunk edges", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "direct.h5";
  const std::string with_userblock = scratch / "userblock.h5";
  const auto want = numpy(
      "import h5py\n"
      "a = np.arange(23 * 17 * 5, dtype=np.float64).reshape(23, 17, 5) * 0.25\n"
      "z = (np.arange(30 * 7) % 5 == 0).reshape(30, 7)\n"
      "c = (np.arange(40) + 1j * np.arange(40)[::-1]).astype(np.complex64)\n"
      "partial = np.full((20, 20), -7, dtype=np.int32)\n"
      "partial[0:5, 5:15] = 3\n"
      "with h5py.File('" + path + "', 'w') as f:\n"
      "    f.create_dataset('a', data=a, chunks=(4, 6, 3))\n"
      "    f.create_dataset('contiguous', data=a)\n"
      "    f.create_dataset('z', data=z, chunks=(8, 7))\n"
      "    f.create_dataset('c', data=c, chunks=(9,))\n"
      "    p = f.create_dataset('partial', shape=(20, 20), dtype='i4', chunks=(5, 5), fillvalue=-7)\n"
      "    p[0:5, 5:15] = 3\n"
      "with h5py.File('" + with_userblock + "', 'w', userblock_size=512) as f:\n"
      "    f.create_dataset('a', data=a, chunks=(4, 6, 3))\n"
      "out = [a, z, c, partial]\n");
  // Through the page cache and with O_DIRECT (io.direct-reads): chunk
  // addresses and sizes that are not multiples of the device's sectors.
  for (const auto scheduler : kSchedulers)
  for (const char* direct_reads : {"auto", "always", "never"}) {
    INFO(direct_reads);
    weft::config::set scope{{"io.direct-reads", direct_reads}};
    // Edge chunks on every axis (23 = 5 x 4 + 3, ...), blocks straddling them.
    for (const wa::ChunkSpec& blocks : {wa::ChunkSpec{7, 9, 5}, wa::ChunkSpec{23, 17, 5}, wa::ChunkSpec{3, 4, 2}}) {
      CHECK(wio::from_hdf5(path, "a", blocks).compute(scheduler).equals(want[0]));
      CHECK(wio::from_hdf5(path, "contiguous", blocks).compute(scheduler).equals(want[0]));
      CHECK(wio::from_hdf5(with_userblock, "a", blocks).compute(scheduler).equals(want[0]));
    }
    CHECK(wio::from_hdf5(path, "z", wa::ChunkSpec{11, 3}).compute(scheduler).equals(want[1]));
    CHECK(wio::from_hdf5(path, "c", wa::ChunkSpec{13}).compute(scheduler).equals(want[2]));
    // Chunks never written read as the dataset's fill value.
    CHECK(wio::from_hdf5(path, "partial", wa::ChunkSpec{7, 7}).compute(scheduler).equals(want[3]));
  }
}

TEST_CASE("from_hdf5 reads large uncached blocks with O_DIRECT, on several threads at once", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "large.h5";
  // 40 MB contiguous (one block of whole rows is one read of 5 spans, more
  // than a task has in flight (4 of 8 MiB), ending at the file's unaligned
  // end) and 6.7 MB chunked by 4 MB chunks (a block of several chunks, each
  // one read).
  const auto want = numpy(
      "import h5py\n"
      "rng = np.random.default_rng(3)\n"
      "c = rng.random((5001, 1000))\n"
      "k = rng.integers(-1000, 1000, size=(1100, 1523)).astype(np.int32)\n"
      "with h5py.File('" + path + "', 'w') as f:\n"
      "    f.create_dataset('k', data=k, chunks=(1000, 1000))\n"
      "    f.create_dataset('c', data=c)\n"
      "out = [c, k]\n");
  const bool direct_io = weft::test::takes_direct_io(path);
  const auto page = static_cast<std::ptrdiff_t>(::sysconf(_SC_PAGESIZE));
  const auto file_pages = static_cast<std::ptrdiff_t>(fs::file_size(path)) / page;
  for (const char* direct_reads : {"auto", "always"}) {
    INFO(direct_reads);
    weft::config::set scope{{"io.direct-reads", direct_reads}};
    drop_from_page_cache(path);
    // Blocks read at once on the threads scheduler, into kept block memory.
    CHECK(wio::from_hdf5(path, "c", wa::ChunkSpec{5001, 1000}).compute(weft::scheduler::threads).equals(want[0]));
    CHECK(wio::from_hdf5(path, "c", wa::ChunkSpec{700, 1000}).compute(weft::scheduler::threads).equals(want[0]));
    CHECK(wio::from_hdf5(path, "k", wa::ChunkSpec{1100, 1523}).compute(weft::scheduler::threads).equals(want[1]));
    CHECK(wio::from_hdf5(path, "k", wa::ChunkSpec{550, 700}).compute(weft::scheduler::threads).equals(want[1]));
    // O_DIRECT reads leave the data out of the page cache (only HDF5's
    // metadata reads go through it); where the file system refuses O_DIRECT,
    // every read was buffered.
    if (direct_io && std::string(direct_reads) == "always") CHECK(cached_pages(path) < file_pages / 10);
  }
  // Buffered reads fill the page cache, and auto then copies from it.
  {
    weft::config::set scope{{"io.direct-reads", "never"}};
    drop_from_page_cache(path);
    CHECK(wio::from_hdf5(path, "c").compute(weft::scheduler::threads).equals(want[0]));
    CHECK(cached_pages(path) >= static_cast<std::ptrdiff_t>(5001 * 1000 * 8 / page));
  }
  CHECK(wio::from_hdf5(path, "c").compute(weft::scheduler::threads).equals(want[0]));
}

TEST_CASE("io.direct-reads takes auto, always or never", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "small.h5";
  wio::to_hdf5(path, "/x", wa::arange(wa::Scalar(0.0), wa::Scalar(10.0), wa::Scalar(1.0), std::nullopt, 5));
  weft::config::set scope{{"io.direct-reads", "sometimes"}};
  try {
    wio::from_hdf5(path, "/x").compute();
    FAIL("no error for io.direct-reads: sometimes");
  } catch (const weft::TaskError& e) {  // the read task's ConfigError
    CHECK_THAT(e.what(), Contains("[weft.config.bad-value] bad value for 'io.direct-reads': 'sometimes' "
                                  "(use auto, always or never)"));
  }
}

TEST_CASE("to_hdf5 writes several arrays into groups with filters and attributes in one pass", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "many.h5";
  const wa::Array t = wa::random::random({50, 40}, {16, 15});
  const wa::Array n = wa::arange(wa::Scalar(std::int64_t{0}), wa::Scalar(std::int64_t{90}),
                                 wa::Scalar(std::int64_t{1}), wa::DType::int32, 25);
  wio::Hdf5WriteOptions options;
  options.gzip_level = 4;
  options.shuffle = true;
  options.attributes = {{"units", "K"}, {"scale", 0.5}, {"version", std::int64_t{3}}};
  wio::to_hdf5(path,
               {{"/grp/t", t, {{"long_name", "temperature"}, {"units", "degC"}, {"bounds", std::vector<double>{-1.5, 2}}}},
                {"/grp/sub/n", n},
                {"/t2", t + 1.0}},
               options, weft::scheduler::threads);
  const auto got = numpy(h5py_open(path) +
                         "t = f['/grp/t']\n"
                         "n = f['/grp/sub/n']\n"
                         "ok = [t.compression == 'gzip', t.compression_opts == 4, t.shuffle, t.chunks == (16, 15),\n"
                         "      n.compression == 'gzip', n.chunks == (25,), n.dtype == np.int32,\n"
                         "      t.attrs['units'] == 'degC', t.attrs['long_name'] == 'temperature',\n"
                         "      t.attrs['scale'] == 0.5, t.attrs['version'] == 3, list(t.attrs['bounds']) == [-1.5, 2.0],\n"
                         "      n.attrs['units'] == 'K', isinstance(n.attrs['units'], str)]\n"
                         "out = [np.array(ok), t[...], n[...], f['/t2'][...]]\n");
  CHECK(got[0].to_vector<bool>() == std::vector<bool>(14, true));
  const auto want = weft::compute(weft::scheduler::sync, t, n, t + 1.0);
  check_close(got[1], std::get<0>(want), 0.0, 0.0, true, "/grp/t");
  check_close(got[2], std::get<1>(want), 0.0, 0.0, true, "/grp/sub/n");
  check_close(got[3], std::get<2>(want), 0.0, 0.0, true, "/t2");
  CHECK(wio::from_hdf5(path, "/grp/sub/n").compute().equals(std::get<1>(want)));
}

TEST_CASE("to_hdf5 and from_hdf5 handle 0-d and empty arrays", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "small.h5";
  const wa::Array scalar = wa::random::random({5}, {2}).sum();
  const wa::Array empty = wa::zeros({0, 4}, wa::DType::int16, {3, 2});
  wio::to_hdf5(path, {{"/scalar", scalar}, {"/empty", empty}}, {.gzip_level = 1}, weft::scheduler::threads);
  const auto got = numpy(h5py_open(path) + "out = [f['/scalar'][()], np.array(f['/empty'].shape), np.array(f['/empty'].dtype == np.int16)]");
  CHECK(got[0].item<double>() == scalar.compute().item<double>());
  CHECK(got[1].to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 4});
  CHECK(got[2].item<bool>());
  CHECK(wio::from_hdf5(path, "/scalar").compute().item<double>() == scalar.compute().item<double>());
  const wa::NDArray back = wio::from_hdf5(path, "/empty").compute();
  CHECK(back.shape() == wa::Shape{0, 4});
  CHECK(back.dtype() == wa::DType::int16);
}

TEST_CASE("from_hdf5 names the path and the problem before any task runs", "[io-hdf5]") {
  Scratch scratch;
  const std::string path = scratch / "in.h5";
  numpy("import h5py\nwith h5py.File('" + path + "', 'w') as f:\n"
        "    f['x'] = np.ones((3, 4))\n    f['text'] = np.array([b'ab', b'cd'])\n    f.create_group('grp')\nout = 0");
  const auto fails = [](auto call, const std::string& id, const std::string& text) {
    try {
      call();
      FAIL("no error; expected " + id);
    } catch (const weft::Error& e) {
      CHECK(e.id() == id);
      CHECK_THAT(e.text(), Contains(text));
    }
  };
  fails([&] { wio::from_hdf5(scratch / "missing.h5", "x"); }, "io.cannot-open", "missing.h5': No such file or directory");
  std::ofstream(scratch / "not.h5") << "plain text";
  fails([&] { wio::from_hdf5(scratch / "not.h5", "x"); }, "io.cannot-open", "not.h5': not an HDF5 file");
  fails([&] { wio::from_hdf5(path, "y"); }, "io.no-such-dataset", "in.h5' has no dataset '/y'");
  fails([&] { wio::from_hdf5(path, "/nogroup/x"); }, "io.no-such-dataset", "has no dataset '/nogroup/x'");
  fails([&] { wio::from_hdf5(path, "grp"); }, "io.no-such-dataset", "'/grp' in '" + path + "' is not a dataset");
  fails([&] { wio::from_hdf5(path, "text"); }, "type.unsupported-dtype", "dataset '/text' of '" + path + "' holds string");
  fails([&] { wio::from_hdf5(path, ""); }, "value.bad-dataset-name", "from_hdf5");
  fails([&] { wio::from_hdf5(path, "x", wa::ChunkSpec{wa::AxisChunks(std::vector<std::int64_t>{2, 2}), 4}); },
        "value.bad-chunks", "");

  // A file replaced after from_hdf5 (another shape) fails the read task, naming it.
  const wa::Array x = wio::from_hdf5(path, "x");
  numpy("import h5py, os\nwith h5py.File('" + path + ".new', 'w') as f:\n    f['x'] = np.ones((5, 4))\n"
        "os.replace('" + path + ".new', '" + path + "')\nout = 0");
  try {
    x.compute(weft::scheduler::sync);
    FAIL("no error for a changed file");
  } catch (const weft::TaskError& e) {
    CHECK_THAT(e.original_message(), Contains("[weft.io.cannot-read]") && Contains("changed after the array was made"));
  }
  // Read tasks keep the file open (HDF5 holds a shared lock on it) until
  // close_hdf5_files; then another program may rewrite it in place.
  CHECK(wio::from_hdf5(path, "x").compute().shape() == wa::Shape{5, 4});
  wio::close_hdf5_files();
  numpy("import h5py\nwith h5py.File('" + path + "', 'w') as f:\n    f['x'] = np.ones(7)\nout = 0");
  CHECK(wio::from_hdf5(path, "x").shape() == wa::Shape{7});
}

TEST_CASE("to_hdf5 checks the target before any task runs", "[io-hdf5]") {
  Scratch scratch;
  const wa::Array x = wa::ones({4, 4}, wa::DType::float64, 2);
  const std::string path = scratch / "out.h5";
  const auto fails = [](auto call, const std::string& id, const std::string& text) {
    try {
      call();
      FAIL("no error; expected " + id);
    } catch (const weft::Error& e) {
      CHECK(e.id() == id);
      CHECK_THAT(e.text(), Contains(text));
    }
  };
  fails([&] { wio::to_hdf5(scratch / "no/such/folder/x.h5", "x", x); }, "io.cannot-write", "does not exist");
  std::ofstream(scratch / "file") << "x";
  fails([&] { wio::to_hdf5(scratch / "file/x.h5", "x", x); }, "io.cannot-write", "is not a folder");
  // /proc/self refuses new files even to root.
  fails([&] { wio::to_hdf5("/proc/self/x.h5", "x", x); }, "io.cannot-write", "is not writable");
  fails([&] { wio::to_hdf5(scratch.dir.string(), "x", x); }, "io.cannot-write", "it is a folder");
  fails([&] { wio::to_hdf5(path, "", x); }, "value.bad-dataset-name", "to_hdf5");
  fails([&] { wio::to_hdf5(path, {{"/a", x}, {"a", x}}); }, "value.duplicate-dataset", "'/a' is given twice");
  fails([&] { wio::to_hdf5(path, "x", x, {.gzip_level = 10}); }, "value.bad-option", "gzip_level 10");
  const wa::Array v = wa::arange(wa::Scalar(10.0)).rechunk(4);
  fails([&] { wio::to_hdf5(path, "v", v[{v > 3.0}]); }, "value.unknown-chunks", "dataset '/v' has unknown chunk sizes");
  CHECK(scratch.entries() == std::vector<std::string>{"file"});

  // An existing file needs overwrite, and stays as it was without it.
  std::ofstream(path) << "precious";
  fails([&] { wio::to_hdf5(path, "x", x); }, "io.target-exists", path + "' exists; pass overwrite = true");
  CHECK(text_of(path) == "precious");
  wio::to_hdf5(path, "x", x, {.overwrite = true});
  CHECK(wio::from_hdf5(path, "x").compute().equals(x.compute()));
  CHECK(scratch.entries() == std::vector<std::string>{"file", "out.h5"});
}

TEST_CASE("a write that fails half-way leaves no file and an existing one untouched", "[io-hdf5]") {
  Scratch scratch;
  const std::string fresh = scratch / "fresh.h5", existing = scratch / "existing.h5";
  std::ofstream(existing) << "precious";

  SECTION("a task error") {
    const wa::Array bad = wa::from_block_function(&weft::test::failing_antidiagonal<3>, {8, 8}, wa::DType::float64, 2);
    for (const auto scheduler : kSchedulers) {
      CHECK_THROWS_AS(wio::to_hdf5(fresh, "x", bad, {}, scheduler), weft::TaskError);
      CHECK_THROWS_AS(wio::to_hdf5(existing, "x", bad, {.overwrite = true}, scheduler), weft::TaskError);
    }
  }
  SECTION("a full disk while HDF5 writes") {
    // A file size limit makes write() fail with EFBIG part-way, as a full disk would.
    const wa::Array big = wa::random::random({1024, 1024}, {256, 256});  // 8 MB
    struct rlimit saved {};
    getrlimit(RLIMIT_FSIZE, &saved);
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = saved;
    limited.rlim_cur = 2 << 20;
    setrlimit(RLIMIT_FSIZE, &limited);
    for (const auto scheduler : kSchedulers) {
      try {
        wio::to_hdf5(fresh, "x", big, {}, scheduler);
        FAIL("no error");
      } catch (const weft::TaskError& e) {
        CHECK_THAT(e.original_message(), Contains("[weft.io.cannot-write]") && Contains("fresh.h5"));
      }
      CHECK_THROWS_AS(wio::to_hdf5(existing, "x", big, {.overwrite = true}, scheduler), weft::TaskError);
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous);
  }
  CHECK(text_of(existing) == "precious");
  CHECK(scratch.entries() == std::vector<std::string>{"existing.h5"});
}
