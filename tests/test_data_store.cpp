// The worker's data store without MPI: spill files, LRU order, managed
// bytes, removal, a folder that cannot be written.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "../src/dist/data_store.hpp"

namespace fs = std::filesystem;
using weft::Value;
using weft::dist::DataStore;

namespace {

// A folder of its own per test, removed at the end.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "weft-data-store-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~ScratchDir() { fs::remove_all(path); }
};

std::vector<double> ramp(std::size_t n, double start) {
  std::vector<double> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::size_t files_in(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

DataStore::Options options_in(const fs::path& dir, std::uint64_t target, std::vector<std::string>* warnings = nullptr) {
  DataStore::Options o;
  o.directory = dir / "weft-worker-1-42";
  o.target_bytes = target;
  o.owner = "worker rank 1 (testhost)";
  if (warnings) o.warn = [warnings](const std::string& text) { warnings->push_back(text); };
  return o;
}

}  // namespace

TEST_CASE("values spilled and read back are equal", "[data-store]") {
  ScratchDir scratch;
  DataStore store(options_in(scratch.path, 0));
  const auto numbers = ramp(10000, 0.5);  // 80 kB: a buffer of its own when encoded
  const std::string text = "a short string";
  store.put(1, Value::of(numbers));
  store.put(2, Value::of(text));
  store.put(3, Value::of(7L));
  CHECK(store.stats().managed_bytes == Value::of(numbers).nbytes() + Value::of(text).nbytes() + Value::of(7L).nbytes());

  REQUIRE(store.spill_one());
  REQUIRE(store.spill_one());
  REQUIRE(store.spill_one());
  CHECK_FALSE(store.spill_one());  // nothing left in memory
  const DataStore::Stats spilled = store.stats();
  CHECK(spilled.managed_bytes == 0);
  CHECK(spilled.in_memory == 0);
  CHECK(spilled.spilled_count == 3);
  CHECK(spilled.spilled_bytes == spilled.spilled_bytes_total);
  CHECK(files_in(store.directory()) == 3);

  CHECK(store.get(1)->get<std::vector<double>>() == numbers);
  CHECK(store.get(2)->get<std::string>() == text);
  CHECK(store.get(3)->get<long>() == 7L);
  // Read back: managed again, files gone; the cumulative total stays.
  const DataStore::Stats back = store.stats();
  CHECK(back.spilled_count == 0);
  CHECK(back.spilled_bytes == 0);
  CHECK(back.managed_bytes == spilled.spilled_bytes_total);
  CHECK(back.spilled_bytes_total == spilled.spilled_bytes_total);
  CHECK(files_in(store.directory()) == 0);
}

TEST_CASE("the least recently used value is spilled first", "[data-store]") {
  ScratchDir scratch;
  const std::uint64_t block = Value::of(ramp(1000, 0)).nbytes();
  DataStore store(options_in(scratch.path, 2 * block));
  store.put(1, Value::of(ramp(1000, 1)));
  store.put(2, Value::of(ramp(1000, 2)));
  store.put(3, Value::of(ramp(1000, 3)));
  store.get(1);  // 2 is now the least recently used (the reference is dropped at once)
  store.spill_to_target();
  CHECK(store.stats().managed_bytes == 2 * block);
  CHECK(store.stats().spilled_count == 1);
  CHECK(fs::exists(store.directory()));

  // Which one went: reading 2 brings it back, and spills the next LRU, 3.
  auto two = store.get(2);
  CHECK(two->get<std::vector<double>>() == ramp(1000, 2));
  CHECK(store.stats().spilled_count == 1);
  CHECK(store.stats().managed_bytes == 2 * block);
  // 2 is held by `two`, so it is not what spills next: 1 is.
  REQUIRE(store.spill_one());
  CHECK(store.stats().in_memory == 1);
  CHECK(store.largest(3).size() == 3);
  CHECK(store.get(1)->get<std::vector<double>>() == ramp(1000, 1));
  CHECK(store.get(3)->get<std::vector<double>>() == ramp(1000, 3));
}

TEST_CASE("a value someone else holds is not spilled", "[data-store]") {
  ScratchDir scratch;
  DataStore store(options_in(scratch.path, 0));
  store.put(1, Value::of(ramp(100, 0)));
  auto held = store.get(1);
  CHECK_FALSE(store.spill_one());
  held.reset();
  CHECK(store.spill_one());
}

TEST_CASE("released values take their spill files with them", "[data-store]") {
  ScratchDir scratch;
  fs::path dir;
  {
    DataStore store(options_in(scratch.path, 0));
    dir = store.directory();
    store.put(1, Value::of(ramp(100, 0)));
    store.put(2, Value::of(ramp(100, 1)));
    store.put(3, Value::of(ramp(100, 2)));
    REQUIRE(store.spill_one());
    REQUIRE(store.spill_one());
    CHECK(files_in(dir) == 2);
    CHECK(store.erase(1));  // spilled
    CHECK(store.erase(3));  // in memory
    CHECK_FALSE(store.erase(3));
    CHECK_FALSE(store.contains(1));
    CHECK(store.get(1) == nullptr);
    CHECK(files_in(dir) == 1);
    CHECK(store.stats().spilled_count == 1);
    CHECK(store.stats().in_memory == 0);
    // Replacing a spilled value drops its file too.
    store.put(2, Value::of(5L));
    CHECK(files_in(dir) == 0);
    CHECK(store.get(2)->get<long>() == 5L);
    REQUIRE(store.spill_one());
    CHECK(files_in(dir) == 1);
  }
  CHECK_FALSE(fs::exists(dir));  // the folder goes with the store
}

TEST_CASE("a folder that cannot be written: one message, values stay", "[data-store]") {
  ScratchDir scratch;
  // A folder inside a regular file cannot be made, not even by root.
  const fs::path file = scratch.path / "not-a-folder";
  std::ofstream(file) << "x";
  std::vector<std::string> warnings;
  DataStore::Options o = options_in(file, 100, &warnings);
  DataStore store(o);
  store.put(1, Value::of(ramp(1000, 0)));
  store.put(2, Value::of(ramp(1000, 1)));
  CHECK_FALSE(store.spill_one());
  store.spill_to_target();
  CHECK_FALSE(store.spill_one());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "worker rank 1 (testhost): cannot spill to " + o.directory.string() +
                           ": Not a directory (results stay in memory)");
  CHECK(store.stats().in_memory == 2);
  CHECK(store.stats().spilled_count == 0);
  CHECK(store.get(1)->get<std::vector<double>>() == ramp(1000, 0));
  CHECK(store.get(2)->get<std::vector<double>>() == ramp(1000, 1));
}

TEST_CASE("a write that fails removes its partial file and keeps the value", "[data-store]") {
  ScratchDir scratch;
  std::vector<std::string> warnings;
  DataStore::Options o = options_in(scratch.path, 0, &warnings);
  DataStore store(o);
  store.put(1, Value::of(ramp(1000, 0)));
  // A full disk: the spill file ("<id>-<n>", n counting puts from 1) is a
  // link to /dev/full, where every write fails with ENOSPC.
  const fs::path spill_file = o.directory / "1-1";
  fs::create_directories(o.directory);
  fs::create_symlink("/dev/full", spill_file);
  CHECK_FALSE(store.spill_one());
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "worker rank 1 (testhost): cannot spill to " + spill_file.string() +
                           ": No space left on device (results stay in memory)");
  CHECK_FALSE(fs::exists(fs::symlink_status(spill_file)));  // the partial file is gone
  CHECK(store.get(1)->get<std::vector<double>>() == ramp(1000, 0));
  CHECK(store.stats().managed_bytes == Value::of(ramp(1000, 0)).nbytes());
  CHECK(store.stats().spilled_count == 0);
}
