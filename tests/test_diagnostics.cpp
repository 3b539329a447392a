// Callback registry, ProgressBar and Profiler, driven by a stand-in scheduler
// that calls the registered callbacks from several threads.
#include <catch2/catch.hpp>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "weft/callbacks.hpp"
#include "weft/config.hpp"
#include "weft/diagnostics.hpp"
#include "weft/error.hpp"

namespace fs = std::filesystem;
namespace wd = weft::diagnostics;
using namespace std::chrono_literals;

namespace {

/// A callback that only counts what it is told.
struct CountingCallback : weft::Callback {
  std::atomic<int> starts{0}, task_starts{0}, task_finishes{0}, finishes{0};
  void start(const weft::ComputeStart&) override { ++starts; }
  void task_start(const weft::Key&, unsigned) override { ++task_starts; }
  void task_finish(const weft::Key&, unsigned, bool) override { ++task_finishes; }
  void finish(bool) override { ++finishes; }
};

std::size_t occurrences(const std::vector<weft::CallbackPtr>& callbacks,
                        const weft::CallbackPtr& cb) {
  return static_cast<std::size_t>(std::count(callbacks.begin(), callbacks.end(), cb));
}

/// Task i's key: "inc-<hex>" for even i, "('chunk', i, 0)" for odd i.
weft::Key task_key(std::size_t i) {
  const auto n = static_cast<std::int64_t>(i);
  if (i % 2 == 0) return weft::Key("inc", weft::Token{i + 1, 7});
  return weft::Key("chunk", {n, 0});
}

/// Plays a scheduler: takes the registered callbacks when the computation
/// starts and calls them from `nthreads` threads, task i on thread i % nthreads.
class FakeComputation {
 public:
  FakeComputation(std::size_t ntasks, unsigned nthreads)
      : callbacks_(weft::detail::registered_callbacks()), nthreads_(nthreads) {
    for (const auto& cb : callbacks_) cb->start({ntasks, "threads", nthreads});
  }

  /// Runs tasks [first, last); task i throws when fails(i).
  void run(std::size_t first, std::size_t last,
           const std::function<bool(std::size_t)>& fails = {}) {
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nthreads_; ++t) {
      threads.emplace_back([&, t] {
        for (std::size_t i = first; i < last; ++i) {
          if (i % nthreads_ != t) continue;
          const weft::Key key = task_key(i);
          for (const auto& cb : callbacks_) cb->task_start(key, t);
          const bool failed = fails && fails(i);
          for (const auto& cb : callbacks_) cb->task_finish(key, t, failed);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }

  void finish(bool failed) {
    for (const auto& cb : callbacks_) cb->finish(failed);
  }

 private:
  std::vector<weft::CallbackPtr> callbacks_;
  unsigned nthreads_;
};

/// A fresh directory, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "weft-diag-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Waits (sleeping, up to 10 s) until `done()` holds.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::size_t thread_count() {
  const fs::directory_iterator tasks("/proc/self/task");
  return static_cast<std::size_t>(std::distance(fs::begin(tasks), fs::end(tasks)));
}

/// The thread count once threads that were just joined have left /proc.
std::size_t settled_thread_count() {
  std::size_t count = thread_count();
  for (;;) {
    std::this_thread::sleep_for(5ms);
    const std::size_t again = thread_count();
    if (again == count) return count;
    count = again;
  }
}

bool thread_count_becomes(std::size_t expected) {
  return eventually([&] { return thread_count() == expected; });
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// Runs f, which must throw E, and returns what it threw.
template <class E, class F>
std::optional<E> thrown(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  }
  return std::nullopt;
}

/// A file the bar writes to, read back through its path.
struct CapturedOutput {
  TempDir dir;
  fs::path path = dir.path() / "progress.txt";
  std::FILE* file = std::fopen(path.c_str(), "w");

  CapturedOutput() { REQUIRE(file != nullptr); }
  ~CapturedOutput() { std::fclose(file); }
  std::string text() const { return read_file(path); }
  bool shows(const std::string& needle) const {
    return eventually([&] { return text().find(needle) != std::string::npos; });
  }
};

wd::ProgressBarOptions options_for(std::FILE* out, wd::ProgressMode mode) {
  wd::ProgressBarOptions options;
  options.out = out;
  options.mode = mode;
  options.minimum = 0s;
  options.interval = 5ms;
  options.log_interval = 5ms;
  return options;
}

}  // namespace

// ---- registry ---------------------------------------------------------------

TEST_CASE("add_callback registers a callback once, remove_callback unregisters it",
          "[diagnostics][callbacks]") {
  REQUIRE(weft::detail::registered_callbacks().empty());
  auto cb = std::make_shared<CountingCallback>();
  weft::add_callback(cb);
  CHECK(occurrences(weft::detail::registered_callbacks(), cb) == 1);
  weft::add_callback(cb);  // a set, as in Dask
  CHECK(occurrences(weft::detail::registered_callbacks(), cb) == 1);
  weft::remove_callback(cb);
  CHECK(weft::detail::registered_callbacks().empty());
  weft::remove_callback(cb);  // not registered: nothing happens
  CHECK(weft::detail::registered_callbacks().empty());
}

TEST_CASE("registered callbacks keep registration order", "[diagnostics][callbacks]") {
  auto a = std::make_shared<CountingCallback>();
  auto b = std::make_shared<CountingCallback>();
  auto c = std::make_shared<CountingCallback>();
  weft::CallbackScope sa(a), sb(b), sc(c);
  CHECK(weft::detail::registered_callbacks() == std::vector<weft::CallbackPtr>{a, b, c});
  weft::remove_callback(b);
  CHECK(weft::detail::registered_callbacks() == std::vector<weft::CallbackPtr>{a, c});
}

TEST_CASE("CallbackScope registers for its lifetime", "[diagnostics][callbacks]") {
  auto cb = std::make_shared<CountingCallback>();
  {
    weft::CallbackScope scope(cb);
    CHECK(occurrences(weft::detail::registered_callbacks(), cb) == 1);
  }
  CHECK(occurrences(weft::detail::registered_callbacks(), cb) == 0);
}

TEST_CASE("a snapshot keeps the callbacks it was taken with", "[diagnostics][callbacks]") {
  auto cb = std::make_shared<CountingCallback>();
  std::vector<weft::CallbackPtr> snapshot;
  {
    weft::CallbackScope scope(cb);
    snapshot = weft::detail::registered_callbacks();
  }
  CHECK(weft::detail::registered_callbacks().empty());
  REQUIRE(snapshot.size() == 1);
  CHECK(snapshot[0] == cb);
  CHECK(cb.use_count() == 2);  // the snapshot keeps it alive
  {
    weft::CallbackScope later(std::make_shared<CountingCallback>());
    CHECK(snapshot.size() == 1);  // registering later does not change it
  }
}

TEST_CASE("add_callback rejects a null callback", "[diagnostics][callbacks]") {
  const auto e = thrown<weft::ValueError>([] { weft::add_callback(nullptr); });
  REQUIRE(e);
  CHECK(e->id() == "value.null-callback");
  CHECK(weft::detail::registered_callbacks().empty());
}

TEST_CASE("the registry is thread-safe", "[diagnostics][callbacks]") {
  std::vector<std::thread> threads;
  std::atomic<bool> duplicate{false};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto cb = std::make_shared<CountingCallback>();
      for (int i = 0; i < 500; ++i) {
        weft::add_callback(cb);
        weft::add_callback(cb);
        if (occurrences(weft::detail::registered_callbacks(), cb) != 1) duplicate = true;
        weft::remove_callback(cb);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK_FALSE(duplicate);
  CHECK(weft::detail::registered_callbacks().empty());
}

TEST_CASE("a computation calls every callback of its snapshot", "[diagnostics][callbacks]") {
  auto cb = std::make_shared<CountingCallback>();
  weft::CallbackScope scope(cb);
  FakeComputation computation(30, 3);
  computation.run(0, 30);
  computation.finish(false);
  CHECK(cb->starts == 1);
  CHECK(cb->task_starts == 30);
  CHECK(cb->task_finishes == 30);
  CHECK(cb->finishes == 1);
}

// ---- ProgressBar ------------------------------------------------------------

TEST_CASE("ProgressBar in log mode writes percentage lines and a final line",
          "[diagnostics][progress]") {
  CapturedOutput out;
  wd::ProgressBar bar(options_for(out.file, wd::ProgressMode::log));
  FakeComputation computation(100, 4);
  computation.run(0, 42);
  REQUIRE(out.shows("[weft] 42% 42/100 tasks, "));
  computation.run(42, 100);
  computation.finish(false);

  const auto lines = lines_of(out.text());
  REQUIRE(lines.size() >= 2);
  const std::regex progress(R"(\[weft\] \d+% \d+/100 tasks, \d+\.\ds elapsed)");
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    CHECK(std::regex_match(lines[i], progress));
  }
  CHECK(std::regex_match(lines.back(),
                         std::regex(R"(\[weft\] 100% 100/100 tasks, done in \d+\.\ds)")));
  CHECK(bar.last_duration() > 0s);
}

TEST_CASE("ProgressBar in log mode reports a failed computation", "[diagnostics][progress]") {
  CapturedOutput out;
  wd::ProgressBar bar(options_for(out.file, wd::ProgressMode::log));
  FakeComputation computation(100, 2);
  computation.run(0, 30, [](std::size_t i) { return i == 29; });
  computation.finish(true);
  const auto lines = lines_of(out.text());
  REQUIRE_FALSE(lines.empty());
  CHECK(std::regex_match(lines.back(),
                         std::regex(R"(\[weft\] 30% 30/100 tasks, failed after \d+\.\ds)")));
}

TEST_CASE("ProgressBar in terminal mode redraws one line and ends at 100%",
          "[diagnostics][progress]") {
  CapturedOutput out;
  wd::ProgressBar bar(options_for(out.file, wd::ProgressMode::terminal));
  FakeComputation computation(100, 2);
  computation.run(0, 50);
  const std::string half = "\r[" + std::string(20, '#') + std::string(20, ' ') + "] | 50% Completed | ";
  REQUIRE(out.shows(half));
  computation.run(50, 100);
  computation.finish(false);

  const std::string text = out.text();
  CHECK(text.front() == '\r');
  CHECK(std::count(text.begin(), text.end(), '\r') >= 2);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(std::regex_search(
      text, std::regex(R"(\r\[#{40}\] \| 100% Completed \| [ \d]\d\.\ds\n$)")));
}

TEST_CASE("ProgressBar in terminal mode stops where a computation failed",
          "[diagnostics][progress]") {
  CapturedOutput out;
  auto options = options_for(out.file, wd::ProgressMode::terminal);
  options.width = 20;
  wd::ProgressBar bar(options);
  FakeComputation computation(100, 2);
  computation.run(0, 25);
  computation.finish(true);
  CHECK(std::regex_search(out.text(),
                          std::regex(R"(\r\[#{5} {15}\] \| 25% Completed \| [ \d]\d\.\ds\n$)")));
}

TEST_CASE("ProgressBar prints nothing for computations shorter than minimum",
          "[diagnostics][progress]") {
  const auto mode = GENERATE(wd::ProgressMode::log, wd::ProgressMode::terminal);
  CapturedOutput out;
  auto options = options_for(out.file, mode);
  options.minimum = 1h;
  wd::ProgressBar bar(options);
  FakeComputation computation(10, 2);
  computation.run(0, 5);
  std::this_thread::sleep_for(30ms);  // several timer periods
  computation.run(5, 10);
  computation.finish(false);
  CHECK(out.text().empty());
  CHECK(bar.last_duration() >= 30ms);
}

TEST_CASE("ProgressBar's timer thread lives only while a computation runs",
          "[diagnostics][progress]") {
  CapturedOutput out;
  auto options = options_for(out.file, wd::ProgressMode::log);
  options.log_interval = 1h;  // finish must wake the timer, not wait for it
  const std::size_t before = settled_thread_count();
  wd::ProgressBar bar(options);
  CHECK(settled_thread_count() == before);

  FakeComputation computation(10, 1);
  CHECK(thread_count() == before + 1);
  computation.run(0, 10);
  const auto finishing = std::chrono::steady_clock::now();
  computation.finish(false);
  CHECK(std::chrono::steady_clock::now() - finishing < 5s);
  CHECK(thread_count_becomes(before));
  CHECK(lines_of(out.text()).size() == 1);  // only the final line
}

TEST_CASE("ProgressBar counts a computation started inside a running one",
          "[diagnostics][progress]") {
  CapturedOutput out;
  auto options = options_for(out.file, wd::ProgressMode::log);
  options.log_interval = 1h;
  wd::ProgressBar bar(options);
  const std::size_t before = settled_thread_count();
  FakeComputation outer(10, 2);
  outer.run(0, 4);
  FakeComputation inner(5, 1);
  inner.run(0, 5);
  inner.finish(false);
  CHECK(out.text().empty());
  CHECK(thread_count_becomes(before + 1));  // the timer still runs
  outer.run(4, 10);
  outer.finish(false);
  CHECK(std::regex_match(lines_of(out.text()).at(0),
                         std::regex(R"(\[weft\] 100% 15/15 tasks, done in \d+\.\ds)")));
}

TEST_CASE("a ProgressBar destroyed mid-computation still finishes its output",
          "[diagnostics][progress]") {
  CapturedOutput out;
  std::optional<FakeComputation> computation;
  {
    wd::ProgressBar bar(options_for(out.file, wd::ProgressMode::log));
    computation.emplace(4, 2);
  }
  CHECK(weft::detail::registered_callbacks().empty());
  computation->run(0, 4);
  computation->finish(false);
  CHECK(out.text().find("[weft] 100% 4/4 tasks, done in ") != std::string::npos);
}

TEST_CASE("ProgressBar rejects options it cannot work with", "[diagnostics][progress]") {
  auto options = options_for(stderr, wd::ProgressMode::log);
  SECTION("a null stream") { options.out = nullptr; }
  SECTION("a zero period") { options.log_interval = 0s; }
  SECTION("a negative period") {
    options.mode = wd::ProgressMode::terminal;
    options.interval = -1s;
  }
  const auto e = thrown<weft::ValueError>([&] { wd::ProgressBar bar(options); });
  REQUIRE(e);
  CHECK(e->id() == "value.progress-option");
  CHECK(weft::detail::registered_callbacks().empty());
}

TEST_CASE("ProgressBar reads unset options from the config", "[diagnostics][progress]") {
  CapturedOutput out;
  wd::ProgressBarOptions options;
  options.out = out.file;
  options.mode = wd::ProgressMode::log;
  SECTION("diagnostics.progress.log-interval") {
    weft::config::set scope{{"diagnostics.progress.log-interval", "5ms"}};
    wd::ProgressBar bar(options);
    FakeComputation computation(100, 1);
    computation.run(0, 3);
    CHECK(out.shows("[weft] 3% 3/100 tasks, "));
    computation.finish(true);
  }
  SECTION("diagnostics.progress.minimum") {
    weft::config::set scope{{"diagnostics.progress.minimum", "1h"}};
    wd::ProgressBar bar(options);
    FakeComputation computation(1, 1);
    computation.run(0, 1);
    computation.finish(false);
    CHECK(out.text().empty());
  }
}

// ---- Profiler ---------------------------------------------------------------

TEST_CASE("Profiler records every task with its thread and times", "[diagnostics][profiler]") {
  wd::Profiler prof;
  CHECK(prof.results().empty());
  FakeComputation computation(200, 4);
  computation.run(0, 200, [](std::size_t i) { return i % 7 == 0; });
  computation.finish(true);

  const auto records = prof.results();
  REQUIRE(records.size() == 200);
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < 200; ++i) index_of[task_key(i).str()] = i;
  std::map<unsigned, int> per_thread;
  for (std::size_t r = 0; r < records.size(); ++r) {
    const auto& record = records[r];
    INFO(record.key);
    REQUIRE(index_of.count(record.key) == 1);
    const std::size_t i = index_of[record.key];
    index_of.erase(record.key);  // each key once
    CHECK(record.thread == i % 4);
    CHECK(record.failed == (i % 7 == 0));
    CHECK(0 <= record.start_us);
    CHECK(record.start_us <= record.end_us);
    if (r > 0) CHECK(records[r - 1].start_us <= record.start_us);
    ++per_thread[record.thread];
  }
  CHECK(per_thread == std::map<unsigned, int>{{0, 50}, {1, 50}, {2, 50}, {3, 50}});
}

TEST_CASE("Profiler times a task that runs another computation", "[diagnostics][profiler]") {
  wd::Profiler prof;
  auto callbacks = weft::detail::registered_callbacks();
  REQUIRE(callbacks.size() == 1);
  auto& cb = *callbacks[0];
  cb.start({1, "sync", 1});
  cb.task_start("outer", 0);
  cb.start({1, "sync", 1});
  cb.task_start("inner", 0);
  std::this_thread::sleep_for(2ms);
  cb.task_finish("inner", 0, false);
  cb.finish(false);
  cb.task_finish("outer", 0, false);
  cb.finish(false);

  const auto records = prof.results();
  REQUIRE(records.size() == 2);
  CHECK(records[0].key == "outer");
  CHECK(records[1].key == "inner");
  CHECK(records[0].start_us <= records[1].start_us);
  CHECK(records[1].end_us <= records[0].end_us);
  CHECK(records[1].end_us - records[1].start_us >= 2000);
}

TEST_CASE("Profiler keeps results across computations until clear()",
          "[diagnostics][profiler]") {
  wd::Profiler prof;
  FakeComputation first(10, 2);
  first.run(0, 10);
  first.finish(false);
  std::this_thread::sleep_for(2ms);
  FakeComputation second(10, 2);
  second.run(10, 20);
  second.finish(false);

  auto records = prof.results();
  REQUIRE(records.size() == 20);
  // One time line: the second computation comes after the first.
  std::int64_t first_end = 0;
  std::int64_t second_start = INT64_MAX;
  std::set<std::string> first_keys;
  for (std::size_t i = 0; i < 10; ++i) first_keys.insert(task_key(i).str());
  for (const auto& record : records) {
    if (first_keys.count(record.key)) {
      first_end = std::max(first_end, record.end_us);
    } else {
      second_start = std::min(second_start, record.start_us);
    }
  }
  CHECK(first_end + 2000 <= second_start);

  prof.clear();
  CHECK(prof.results().empty());
  std::this_thread::sleep_for(100ms);
  FakeComputation third(5, 1);
  third.run(0, 5);
  third.finish(false);
  records = prof.results();
  REQUIRE(records.size() == 5);
  CHECK(records[0].start_us < 100000);  // a new time line
}

TEST_CASE("Profiler writes a Chrome trace", "[diagnostics][profiler]") {
  TempDir dir;
  const fs::path path = dir.path() / "trace.json";
  wd::Profiler prof;
  FakeComputation computation(40, 3);
  computation.run(0, 40, [](std::size_t i) { return i == 5; });
  computation.finish(true);
  prof.write_chrome_trace(path);
  prof.write_chrome_trace(path);  // replaces the file
  CHECK(dir.entries() == std::vector<std::string>{"trace.json"});

  const auto trace = nlohmann::json::parse(read_file(path));
  const auto& events = trace.at("traceEvents");
  REQUIRE(events.is_array());
  std::map<std::string, wd::TaskRecord> records;
  for (const auto& record : prof.results()) records.emplace(record.key, record);

  std::set<unsigned> named_threads;
  std::set<std::string> categories;
  std::size_t tasks = 0;
  for (const auto& event : events) {
    CHECK(event.at("pid") == 0);
    const auto tid = event.at("tid").get<unsigned>();
    if (event.at("ph") == "M") {
      CHECK(event.at("name") == "thread_name");
      CHECK(event.at("args").at("name") == "thread " + std::to_string(tid));
      named_threads.insert(tid);
      continue;
    }
    REQUIRE(event.at("ph") == "X");
    ++tasks;
    const auto key = event.at("name").get<std::string>();
    INFO(key);
    REQUIRE(records.count(key) == 1);
    const auto& record = records.at(key);
    CHECK(event.at("cat") == weft::Key(key).name());
    categories.insert(event.at("cat").get<std::string>());
    CHECK(event.at("ts") == record.start_us);
    CHECK(event.at("dur") == record.end_us - record.start_us);
    CHECK(tid == record.thread);
    CHECK(event.at("args").at("key") == key);
    CHECK(event.at("args").at("failed") == record.failed);
  }
  CHECK(tasks == 40);
  CHECK(categories == std::set<std::string>{"inc", "chunk"});
  CHECK(named_threads == std::set<unsigned>{0, 1, 2});
  CHECK(records.at(task_key(5).str()).failed);
}

TEST_CASE("Profiler writes an empty trace before any computation", "[diagnostics][profiler]") {
  TempDir dir;
  wd::Profiler prof;
  prof.write_chrome_trace(dir.path() / "empty.json");
  const auto trace = nlohmann::json::parse(read_file(dir.path() / "empty.json"));
  CHECK(trace.at("traceEvents") == nlohmann::json::array());
}

TEST_CASE("Profiler reports a trace it cannot write and leaves no file behind",
          "[diagnostics][profiler]") {
  TempDir dir;
  wd::Profiler prof;
  FakeComputation computation(3, 1);
  computation.run(0, 3);
  computation.finish(false);

  fs::path path;
  SECTION("the folder does not exist") { path = dir.path() / "missing" / "trace.json"; }
  SECTION("the path is a folder") {
    path = dir.path() / "trace.json";
    fs::create_directory(path);
  }
  const auto before = dir.entries();
  const auto e = thrown<weft::IoError>([&] { prof.write_chrome_trace(path); });
  REQUIRE(e);
  CHECK(e->id() == "io.cannot-write");
  CHECK(std::string(e->what()).find("'" + path.string() + "'") != std::string::npos);
  CHECK(dir.entries() == before);
}
