// Partitioned HDF5 output (Hdf5WriteOptions::partitioned) and stage_out on
// the local schedulers, where every write has one part: h5py reads the
// virtual file as the arrays, before and after stage_out (the staged folder
// moved elsewhere with the node-local part deleted), and the errors: a
// missing part, the overwrite rules, a write that fails leaving no file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
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
using weft::test::check_close;
using weft::test::numpy;
using weft::test::Scratch;
using weft::test::text_of;

namespace {

const weft::SchedulerChoice kSchedulers[] = {weft::scheduler::sync, weft::scheduler::threads};

// A Scratch with the node-local folder `local` in it, which the writes use.
struct LocalScratch : Scratch {
  std::string local = *this / "local";
  std::string out = *this / "out";
  weft::config::set use_local;
  LocalScratch() : use_local{{"distributed.worker.local-directory", local}} {
    fs::create_directory(local);
    fs::create_directory(out);
  }
};

std::vector<std::string> entries(const std::string& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(folder)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

// The name of the one part file of stem `stem` in `local`, required to read
// <stem>.<8 hex digits>.part0.h5.
std::string part_name(const std::string& local, const std::string& stem) {
  const std::regex pattern(stem + R"(\.[0-9a-f]{8}\.part0\.h5)");
  std::vector<std::string> found;
  for (const std::string& name : entries(local))
    if (name.starts_with(stem + ".")) found.push_back(name);
  REQUIRE(found.size() == 1);
  CHECK(std::regex_match(found[0], pattern));
  return found[0];
}

// Requires h5py to read datasets /a (virtual), /g/n, /g/total and /empty of
// `path` as `want`, with their attributes, and returns the parts list.
void check_virtual_file(const std::string& path, const std::vector<wa::NDArray>& want,
                        const std::vector<std::string>& parts) {
  const auto got = numpy("import h5py\nf = h5py.File('" + path + "', 'r')\n"
                         "ok = [f['/a'].is_virtual, f['/a'].attrs['units'] == 'm', f['/g/n'].attrs['run'] == 42,\n"
                         "      f['/empty'].shape == (0, 5), f['/g/total'].shape == (),\n"
                         "      list(f.attrs['weft_part_files']) == " + [&] {
                           std::string list = "[";
                           for (const auto& p : parts) list += "'" + p + "', ";
                           return list + "]";
                         }() + "]\n"
                         "out = [np.array(ok), f['/a'][...], f['/g/n'][...], f['/g/total'][()]]");
  INFO(path);
  CHECK(got[0].to_vector<bool>() == std::vector<bool>(6, true));
  check_close(got[1], want[0], 0.0, 0.0, true, "/a");
  check_close(got[2], want[1], 0.0, 0.0, true, "/g/n");
  CHECK(got[3].item<double>() == want[2].item<double>());
}

// Runs `call`, requiring a weft::Error `id` whose text holds `text`; a
// TaskError counts by its original error.
template <class Call>
void fails(Call call, const std::string& id, const std::string& text) {
  try {
    call();
    FAIL("no error; expected " + id);
  } catch (const weft::TaskError& e) {
    CHECK_THAT(e.original_message(), Contains("[weft." + id + "]") && Contains(text));
  } catch (const weft::Error& e) {
    CHECK(e.id() == id);
    CHECK_THAT(e.text(), Contains(text));
  }
}

}  // namespace

TEST_CASE("a partitioned write is one part in the local folder and a virtual file h5py reads whole",
          "[io-partitioned]") {
  const wa::Array a = wa::random::random({60, 45}, {16, 10});
  const wa::Array n = wa::arange(wa::Scalar(std::int64_t{0}), wa::Scalar(std::int64_t{100}), wa::Scalar(std::int64_t{1}),
                                 wa::DType::int64, 30);
  const wa::Array total = a.sum();
  const wa::Array empty = wa::zeros({0, 5}, wa::DType::int32, {4, 2});
  const auto [want_a, want_n, want_total] = weft::compute(weft::scheduler::sync, a, n, total);
  for (const auto scheduler : kSchedulers)
    for (const auto partition : {wio::Partition::node, wio::Partition::worker}) {
      LocalScratch scratch;
      const std::string path = scratch.out + "/run.h5";
      wio::to_hdf5(path, {{"/a", a, {{"units", "m"}}}, {"/g/n", n}, {"/g/total", total}, {"/empty", empty}},
                   {.gzip_level = 2, .attributes = {{"run", std::int64_t{42}}}, .partitioned = partition}, scheduler);
      const std::string name = part_name(scratch.local, "run");
      const std::string part = (fs::path(scratch.local) / name).string();
      CHECK(entries(scratch.local) == std::vector<std::string>{name});
      CHECK(entries(scratch.out) == std::vector<std::string>{"run.h5"});
      check_virtual_file(path, {want_a, want_n, want_total}, {part});
      // The part holds the datasets at full shape, chunked like the arrays.
      const auto chunks = numpy("import h5py\nf = h5py.File('" + part + "', 'r')\n"
                                "out = [np.array(f['/a'].chunks), np.array(f['/a'].compression == 'gzip')]");
      CHECK(chunks[0].to_vector<std::int64_t>() == std::vector<std::int64_t>{16, 10});
      CHECK(chunks[1].item<bool>());
      // weft reads the virtual file too.
      CHECK(wio::from_hdf5(path, "/a").compute(scheduler).equals(want_a));

      // Staged out: the folder holds the part and a virtual file naming it
      // bare; moved elsewhere, with the local part and the first virtual
      // file gone, it still reads whole.
      const std::string staged = scratch / "staged";
      wio::stage_out(path, staged, {}, scheduler);
      CHECK(entries(staged) == sorted({"run.h5", name}));
      check_virtual_file(staged + "/run.h5", {want_a, want_n, want_total}, {name});
      const std::string moved = scratch / "moved";
      fs::rename(staged, moved);
      fs::remove(part);
      fs::remove(path);
      check_virtual_file(moved + "/run.h5", {want_a, want_n, want_total}, {name});
      CHECK(wio::from_hdf5(moved + "/run.h5", "/g/n").compute(scheduler).equals(want_n));
      // A staged folder stages out again (the parts lie beside its virtual file).
      wio::stage_out(moved + "/run.h5", scratch / "again", {}, scheduler);
      check_virtual_file(scratch / "again/run.h5", {want_a, want_n, want_total}, {name});
    }
}

TEST_CASE("stage_out errors: a missing part, a file that is not partitioned, the overwrite rules",
          "[io-partitioned]") {
  LocalScratch scratch;
  const wa::Array x = wa::arange(wa::Scalar(0.0), wa::Scalar(48.0), wa::Scalar(1.0), wa::DType::float64, 8).reshape({6, 8});
  const std::string path = scratch.out + "/x.h5";
  wio::to_hdf5(path, "x", x, {.partitioned = wio::Partition::worker});
  const std::string name = part_name(scratch.local, "x");
  const std::string part = (fs::path(scratch.local) / name).string();

  // Files of the same names in the destination need overwrite, checked
  // before anything is copied.
  const std::string staged = scratch / "staged";
  fs::create_directory(staged);
  std::ofstream(staged + "/" + name) << "precious";
  fails([&] { wio::stage_out(path, staged); }, "io.target-exists", name + "' exists");
  CHECK(entries(staged) == std::vector<std::string>{name});
  CHECK(text_of(staged + "/" + name) == "precious");
  wio::stage_out(path, staged, {.overwrite = true});
  CHECK(entries(staged) == sorted({"x.h5", name}));
  CHECK(wio::from_hdf5(staged + "/x.h5", "x").compute().equals(x.compute()));
  fails([&] { wio::stage_out(path, staged); }, "io.target-exists", "x.h5' exists");
  fails([&] { wio::stage_out(path, scratch / "no/such/folder"); }, "io.cannot-write", "does not exist");

  // A part that is gone: the error names it and its host; nothing is staged.
  fs::rename(part, part + ".away");
  fails([&] { wio::stage_out(path, scratch / "incomplete"); }, "io.missing-part", part + "' (written on ");
  CHECK(entries(scratch / "incomplete").empty());
  fs::rename(part + ".away", part);

  // A file that to_hdf5 did not partition.
  wio::to_hdf5(scratch / "plain.h5", "x", x);
  fails([&] { wio::stage_out(scratch / "plain.h5", scratch / "plain-staged"); }, "io.not-partitioned",
        "plain.h5' is not the virtual file of a partitioned to_hdf5");
  fails([&] { wio::stage_out(scratch / "missing.h5", staged); }, "io.cannot-open", "missing.h5");
}

TEST_CASE("a partitioned write's overwrite covers its parts, and a failed one leaves no file", "[io-partitioned]") {
  LocalScratch scratch;
  const wa::Array x = wa::ones({8, 8}, wa::DType::float64, 2);
  const std::string path = scratch.out + "/x.h5";
  wio::to_hdf5(path, "x", x, {.partitioned = wio::Partition::node});
  const std::string name = part_name(scratch.local, "x");
  const std::string part = (fs::path(scratch.local) / name).string();
  fails([&] { wio::to_hdf5(path, "x", x, {.partitioned = wio::Partition::node}); }, "io.target-exists",
        "x.h5' exists");
  // The virtual file gone, a part of the earlier write still needs overwrite.
  fs::remove(path);
  fails([&] { wio::to_hdf5(path, "x", x, {.partitioned = wio::Partition::node}); }, "io.target-exists",
        part + "' exists");
  CHECK(entries(scratch.out).empty());
  const wa::Array y = x * 3.0;
  wio::to_hdf5(path, "x", y, {.overwrite = true, .partitioned = wio::Partition::node});
  CHECK(wio::from_hdf5(path, "x").compute().equals(y.compute()));
  CHECK(entries(scratch.local) == std::vector<std::string>{name});

  // A task error: no new part, no virtual file, the old ones untouched.
  const wa::Array bad = wa::from_block_function(&weft::test::failing_antidiagonal<3>, {8, 8}, wa::DType::float64, 2);
  for (const auto scheduler : kSchedulers) {
    CHECK_THROWS_AS(wio::to_hdf5(scratch.out + "/bad.h5", "x", bad, {.partitioned = wio::Partition::worker},
                                 scheduler),
                    weft::TaskError);
    CHECK_THROWS_AS(wio::to_hdf5(path, "x", bad, {.overwrite = true, .partitioned = wio::Partition::node},
                                 scheduler),
                    weft::TaskError);
  }
  CHECK(entries(scratch.local) == std::vector<std::string>{name});
  CHECK(entries(scratch.out) == std::vector<std::string>{"x.h5"});
  CHECK(wio::from_hdf5(path, "x").compute().equals(y.compute()));

  // A local folder that does not exist: the error names the part.
  weft::config::set missing{{"distributed.worker.local-directory", scratch / "gone"}};
  fails([&] { wio::to_hdf5(scratch.out + "/lost.h5", "x", x, {.partitioned = wio::Partition::worker}); },
        "io.cannot-write", "gone/lost.");
  CHECK(entries(scratch.out) == std::vector<std::string>{"x.h5"});
}

TEST_CASE("partitioned writes of two targets with one stem keep their own parts", "[io-partitioned]") {
  LocalScratch scratch;
  fs::create_directory(scratch.out + "/a");
  fs::create_directory(scratch.out + "/b");
  const std::string a = scratch.out + "/a/run.h5", b = scratch.out + "/b/run.h5";
  const wa::Array x = wa::arange(wa::Scalar(0.0), wa::Scalar(48.0), wa::Scalar(1.0), wa::DType::float64, 8).reshape({6, 8});
  const wa::Array y = x * 2.0, z = x * 3.0;
  wio::to_hdf5(a, "x", x, {.partitioned = wio::Partition::node});
  const std::string part_a = part_name(scratch.local, "run");
  // With one part name per stem, this write found a's part and refused it
  // (under overwrite: replaced it under a's virtual file).
  wio::to_hdf5(b, "x", y, {.partitioned = wio::Partition::node});
  const std::vector<std::string> both = entries(scratch.local);
  REQUIRE(both.size() == 2);
  const std::string part_b = both[0] == part_a ? both[1] : both[0];
  CHECK(std::regex_match(part_b, std::regex(R"(run\.[0-9a-f]{8}\.part0\.h5)")));
  CHECK(wio::from_hdf5(a, "x").compute().equals(x.compute()));
  CHECK(wio::from_hdf5(b, "x").compute().equals(y.compute()));
  const auto listed = numpy("import h5py\n"
                            "out = [np.array(list(h5py.File(p, 'r').attrs['weft_part_files']) == [q])\n"
                            "       for p, q in [('" + a + "', '" + scratch.local + "/" + part_a + "'), ('" + b + "', '" +
                            scratch.local + "/" + part_b + "')]]");
  CHECK(listed[0].item<bool>());
  CHECK(listed[1].item<bool>());
  // Rewriting a replaces a's own part and leaves b's.
  wio::to_hdf5(a, "x", z, {.overwrite = true, .partitioned = wio::Partition::worker});
  CHECK(entries(scratch.local) == both);
  CHECK(wio::from_hdf5(a, "x").compute().equals(z.compute()));
  CHECK(wio::from_hdf5(b, "x").compute().equals(y.compute()));
  // Each stages out with its own part.
  wio::stage_out(b, scratch / "staged");
  CHECK(entries(scratch / "staged") == sorted({"run.h5", part_b}));
  CHECK(wio::from_hdf5(scratch / "staged/run.h5", "x").compute().equals(y.compute()));
}
