// weft::dist options: the flags weft::main strips from argv, the
// distributed.* keys they set (also from files and WEFT_* variables), the
// worker settings read from them, the scheduler file and preloads.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/dist/options.hpp"
#include "config_world.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace cfg = weft::config;
namespace dist = weft::dist;
namespace fs = std::filesystem;

namespace {

using weft_test::EnvVar;

// Also without the batch system's variables that the defaults look at.
class World : public weft_test::ConfigWorld {
 public:
  World()
      : ConfigWorld({"SLURM_CPUS_PER_TASK", "SLURM_TMPDIR", "TMPDIR", "LOCAL_SCRATCH", "PRELOAD_TEST_STATUS"}) {}
};

// A command line that strip_flags can change.
class Args {
 public:
  Args(std::vector<std::string> args) : storage_(std::move(args)) {
    for (auto& arg : storage_) pointers_.push_back(arg.data());
    pointers_.push_back(nullptr);
    argc = static_cast<int>(storage_.size());
  }
  Args(std::initializer_list<std::string> args) : Args(std::vector<std::string>(args)) {}
  Args(const Args&) = delete;  // pointers_ point into storage_
  Args& operator=(const Args&) = delete;
  void strip() { dist::strip_flags(argc, pointers_.data()); }
  std::vector<std::string> left() const {
    REQUIRE(pointers_[argc] == nullptr);
    return {pointers_.begin(), pointers_.begin() + argc};
  }

  int argc;

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
};

template <class F>
weft::Error error_of(F&& f) {
  try {
    f();
  } catch (const weft::Error& e) {
    return e;
  }
  FAIL("no weft::Error thrown");
  throw std::logic_error("unreachable");
}

constexpr std::uint64_t GB = 1000000000;
const dist::NodeInfo eight_cores{8, 16 * GB};

}  // namespace

TEST_CASE("strip_flags removes weft's flags in both forms and keeps the rest in order", "[options]") {
  World world;
  Args args{"prog", "input.nc",     "--nthreads", "3",    "--verbose", "--memory-limit=2GB", "-x",
            "--name", "w",          "--preload",  "a.so", "out",       "--preload=b.so:c.so", "--",
            "--nthreads", "9", "--name=z"};
  args.strip();
  CHECK(args.left() ==
        std::vector<std::string>{"prog", "input.nc", "--verbose", "-x", "out", "--", "--nthreads", "9", "--name=z"});
  CHECK(cfg::get<std::int64_t>("distributed.worker.nthreads") == 3);
  CHECK(cfg::get<std::string>("distributed.worker.memory-limit") == "2GB");
  CHECK(cfg::get<std::string>("distributed.worker.name") == "w");
  CHECK(cfg::get<std::string>("distributed.worker.preload") == "a.so b.so:c.so");
  CHECK(cfg::source_of("distributed.worker.nthreads") == "command-line flag --nthreads");
  CHECK(cfg::source_of("distributed.worker.memory-limit") == "command-line flag --memory-limit");
  CHECK(cfg::source_of("distributed.worker.lifetime") == "defaults");

  const dist::WorkerOptions options = dist::worker_options(2, eight_cores);
  CHECK(options.preload == std::vector<std::string>{"a.so", "b.so", "c.so"});
  CHECK(options.memory_limit == 2 * GB);
}

TEST_CASE("strip_flags leaves a command line without weft flags as it is", "[options]") {
  World world;
  Args only_program{"prog"};
  only_program.strip();
  CHECK(only_program.left() == std::vector<std::string>{"prog"});

  // Not weft's: other flags, a flag name that merely starts like one, and a
  // single dash.
  Args others{"prog", "--nthreadsx", "2", "-nthreads", "2", "--threads=2", "--", "--name", "x"};
  others.strip();
  CHECK(others.left() ==
        std::vector<std::string>{"prog", "--nthreadsx", "2", "-nthreads", "2", "--threads=2", "--", "--name", "x"});
  CHECK(cfg::is_null("distributed.worker.nthreads"));
  CHECK(cfg::is_null("distributed.worker.name"));
}

TEST_CASE("strip_flags keeps text values as strings and the last of a repeated flag", "[options]") {
  World world;
  Args args{"prog", "--name", "7", "--local-directory", "yes", "--nthreads", "2", "--nthreads=5"};
  args.strip();
  CHECK(args.left() == std::vector<std::string>{"prog"});
  CHECK(cfg::get<std::string>("distributed.worker.name") == "7");
  CHECK(cfg::get<std::string>("distributed.worker.local-directory") == "yes");
  CHECK(cfg::get<std::int64_t>("distributed.worker.nthreads") == 5);
  // A value with quotes and backslashes survives the trip through YAML.
  Args odd{"prog", "--name", "a \"b\" \\c: d"};
  odd.strip();
  CHECK(cfg::get<std::string>("distributed.worker.name") == "a \"b\" \\c: d");
}

TEST_CASE("strip_flags: a flag without a value is an error naming the flag", "[options]") {
  World world;
  const std::vector<std::vector<std::string>> command_lines = {
      {"prog", "--nthreads"},
      {"prog", "--name", "--nthreads", "2"},
      {"prog", "--memory-limit="},
      {"prog", "--preload", "--"},
  };
  for (const auto& before : command_lines) {
    Args args(before);
    const weft::Error e = error_of([&] { args.strip(); });
    CHECK(e.id() == "config.missing-value");
    CHECK(e.text().starts_with("command-line flag " + before[1].substr(0, before[1].find('=')) +
                               " needs a value"));
    CHECK(args.left() == before);
  }
  CHECK(cfg::is_null("distributed.worker.nthreads"));
}

TEST_CASE("strip_flags: a bad value is an error naming the flag and the problem", "[options]") {
  World world;
  struct Case {
    std::vector<std::string> args;
    std::string key;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {{"--nthreads", "abc"}, "distributed.worker.nthreads", "expected a positive integer, got 'abc'"},
      {{"--nthreads=2.5"}, "distributed.worker.nthreads", "expected a positive integer, got '2.5'"},
      {{"--nthreads", "0"}, "distributed.worker.nthreads", "expected a positive number of threads, got 0"},
      {{"--nthreads=-1"}, "distributed.worker.nthreads", "expected a positive number of threads, got -1"},
      {{"--memory-limit", "5XB"}, "distributed.worker.memory-limit", "cannot read '5XB' as a byte size"},
      {{"--memory-limit=-0.5"}, "distributed.worker.memory-limit", "'-0.5' is not a memory limit"},
      {{"--resources", "GPU"}, "distributed.worker.resources", "cannot read 'GPU' as resources: 'GPU' is not NAME=AMOUNT"},
      {{"--lifetime", "5 parsecs"}, "distributed.worker.lifetime", "cannot read '5 parsecs' as a duration"},
      {{"--lifetime=0s"}, "distributed.worker.lifetime", "a lifetime must be positive (null for none), got 0 seconds"},
  };
  for (const Case& c : cases) {
    const std::string flag = c.args[0].substr(0, c.args[0].find('='));
    INFO(flag);
    // A good flag before the bad one: after the error, it is not set either.
    std::vector<std::string> before = {"prog", "--name", "first"};
    before.insert(before.end(), c.args.begin(), c.args.end());
    Args args(before);
    const weft::Error e = error_of([&] { args.strip(); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text().starts_with("bad value for '" + c.key + "' in command-line flag " + flag + ": " + c.problem));
    CHECK(args.left() == before);
    CHECK(cfg::is_null("distributed.worker.name"));
  }
}

namespace {

// One setting given three ways: as a flag, a WEFT_* variable, a config file.
struct Setting {
  std::string flag;
  std::string variable;
  std::string yaml;  ///< the file's text
  std::string value;
  std::string key;
};

const std::vector<Setting> settings = {
    {"--nthreads", "WEFT_DISTRIBUTED__WORKER__NTHREADS", "distributed:\n  worker:\n    nthreads: 3\n", "3",
     "distributed.worker.nthreads"},
    {"--memory-limit", "WEFT_DISTRIBUTED__WORKER__MEMORY_LIMIT", "distributed:\n  worker:\n    memory-limit: 2GB\n",
     "2GB", "distributed.worker.memory-limit"},
    {"--local-directory", "WEFT_DISTRIBUTED__WORKER__LOCAL_DIRECTORY",
     "distributed:\n  worker:\n    local-directory: /scratch/w\n", "/scratch/w", "distributed.worker.local-directory"},
    {"--resources", "WEFT_DISTRIBUTED__WORKER__RESOURCES",
     "distributed:\n  worker:\n    resources: GPU=2 MEM=10e9\n", "GPU=2 MEM=10e9", "distributed.worker.resources"},
    {"--preload", "WEFT_DISTRIBUTED__WORKER__PRELOAD", "distributed:\n  worker:\n    preload: /a/x.so:/b/y.so\n",
     "/a/x.so:/b/y.so", "distributed.worker.preload"},
    {"--lifetime", "WEFT_DISTRIBUTED__WORKER__LIFETIME", "distributed:\n  worker:\n    lifetime: 1h\n", "1h",
     "distributed.worker.lifetime"},
    {"--name", "WEFT_DISTRIBUTED__WORKER__NAME", "distributed:\n  worker:\n    name: gpu\n", "gpu",
     "distributed.worker.name"},
    {"--scheduler-file", "WEFT_DISTRIBUTED__SCHEDULER_FILE", "distributed:\n  scheduler-file: /home/u/s.json\n",
     "/home/u/s.json", "distributed.scheduler-file"},
};

// What each setting above changes in the worker's options.
void check_setting(const std::string& flag, const dist::WorkerOptions& options) {
  if (flag == "--nthreads") CHECK(options.nthreads == 3);
  if (flag == "--memory-limit") CHECK(options.memory_limit == 2 * GB);
  if (flag == "--local-directory") CHECK(options.local_directory == "/scratch/w");
  if (flag == "--resources") CHECK(options.resources == std::map<std::string, double>{{"GPU", 2}, {"MEM", 1e10}});
  if (flag == "--preload") CHECK(options.preload == std::vector<std::string>{"/a/x.so", "/b/y.so"});
  if (flag == "--lifetime") CHECK(options.lifetime_seconds == 3600);
  if (flag == "--name") CHECK(options.name == "gpu");
  if (flag == "--scheduler-file") CHECK(cfg::get<std::string>("distributed.scheduler-file") == "/home/u/s.json");
}

}  // namespace

TEST_CASE("every option can come from a flag, a WEFT_* variable or a file", "[options]") {
  for (const Setting& setting : settings) {
    INFO(setting.flag);
    SECTION("flag " + setting.flag) {
      World world;
      Args args{"prog", setting.flag, setting.value};
      args.strip();
      CHECK(cfg::source_of(setting.key) == "command-line flag " + setting.flag);
      check_setting(setting.flag, dist::worker_options(2, eight_cores));
    }
    SECTION("variable " + setting.variable) {
      World world;
      world.set_env(setting.variable, setting.value);
      cfg::refresh(world.paths());
      CHECK(cfg::source_of(setting.key) == "environment variable " + setting.variable);
      check_setting(setting.flag, dist::worker_options(2, eight_cores));
    }
    SECTION("file for " + setting.flag) {
      World world;
      world.write_user_file(setting.yaml);
      cfg::refresh(world.paths());
      CHECK(cfg::source_of(setting.key) == world.user_file().string());
      check_setting(setting.flag, dist::worker_options(2, eight_cores));
    }
  }
}

TEST_CASE("the distributed keys have Dask's defaults", "[options]") {
  World world;
  CHECK(cfg::is_null("distributed.scheduler-file"));
  CHECK(cfg::get<int>("distributed.scheduler.worker-saturation") == 64);
  CHECK(cfg::get<std::string>("distributed.worker.memory-limit") == "auto");
  CHECK(cfg::get_seconds("distributed.comm.spin") == Approx(200e-6));
  CHECK(cfg::get_seconds("distributed.comm.max-pause") == Approx(1e-3));
  for (const char* key : {"nthreads", "local-directory", "resources", "preload", "lifetime", "name"})
    CHECK(cfg::is_null(std::string("distributed.worker.") + key));
  const dist::WorkerOptions defaults = dist::worker_options(2, eight_cores);
  CHECK(defaults.nthreads == 4);
  CHECK(defaults.memory_limit == 8 * GB);
  CHECK(defaults.resources.empty());
  CHECK(defaults.preload.empty());
  CHECK_FALSE(defaults.lifetime_seconds);
  CHECK(defaults.name.empty());

  world.set_env("WEFT_DISTRIBUTED__SCHEDULER__WORKER_SATURATION", "8");
  world.set_env("WEFT_DISTRIBUTED__COMM__SPIN", "50us");
  world.set_env("WEFT_DISTRIBUTED__COMM__MAX_PAUSE", "2ms");
  cfg::refresh(world.paths());
  CHECK(cfg::get<int>("distributed.scheduler.worker-saturation") == 8);
  CHECK(cfg::get_seconds("distributed.comm.spin") == Approx(50e-6));
  CHECK(cfg::get_seconds("distributed.comm.max-pause") == Approx(2e-3));
}

TEST_CASE("a flag beats a WEFT_* variable, which beats a file", "[options]") {
  World world;
  world.write_user_file("distributed:\n  worker:\n    nthreads: 2\n");
  cfg::refresh(world.paths());
  CHECK(dist::worker_options(1, eight_cores).nthreads == 2);
  world.set_env("WEFT_DISTRIBUTED__WORKER__NTHREADS", "3");
  cfg::refresh(world.paths());
  CHECK(dist::worker_options(1, eight_cores).nthreads == 3);
  Args args{"prog", "--nthreads=4"};
  args.strip();
  CHECK(dist::worker_options(1, eight_cores).nthreads == 4);
  cfg::clear_cli();
  CHECK(dist::worker_options(1, eight_cores).nthreads == 3);
}

TEST_CASE("bad option values in the config name the key and where they came from", "[options]") {
  World world;
  SECTION("nthreads 0 from the environment") {
    world.set_env("WEFT_DISTRIBUTED__WORKER__NTHREADS", "0");
    cfg::refresh(world.paths());
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text() ==
          "bad value for 'distributed.worker.nthreads' in environment variable WEFT_DISTRIBUTED__WORKER__NTHREADS: "
          "expected a positive number of threads, got 0");
  }
  SECTION("nthreads that is not a number") {
    world.set_env("WEFT_DISTRIBUTED__WORKER__NTHREADS", "many");
    cfg::refresh(world.paths());
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.type-mismatch");
    CHECK(e.text() ==
          "'distributed.worker.nthreads' is 'many' (from environment variable WEFT_DISTRIBUTED__WORKER__NTHREADS), "
          "not an integer");
  }
  SECTION("a memory limit in a file") {
    world.write_user_file("distributed:\n  worker:\n    memory-limit: 5XB\n");
    cfg::refresh(world.paths());
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text().starts_with("bad value for 'distributed.worker.memory-limit' in " + world.user_file().string() +
                               ": cannot read '5XB' as a byte size"));
  }
  SECTION("resources set in code") {
    cfg::set scope("distributed.worker.resources", "GPU=two");
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text().starts_with("bad value for 'distributed.worker.resources' in weft::config::set: cannot read "
                               "'GPU=two' as resources: the amount of GPU is not a non-negative number"));
  }
  SECTION("a lifetime of zero") {
    cfg::set scope("distributed.worker.lifetime", 0);
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text() == "bad value for 'distributed.worker.lifetime' in weft::config::set: a lifetime must be "
                      "positive (null for none), got 0 seconds");
  }
  SECTION("a lifetime that is not a duration") {
    cfg::set scope("distributed.worker.lifetime", "soon");
    const weft::Error e = error_of([] { dist::worker_options(1, eight_cores); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text().starts_with("bad value for 'distributed.worker.lifetime' in weft::config::set: cannot read "
                               "'soon' as a duration"));
  }
}

TEST_CASE("memory-limit takes bytes, a fraction, auto or 0", "[options]") {
  World world;
  const dist::NodeInfo node{4, 16 * GB};
  const std::vector<std::pair<std::string, std::uint64_t>> table = {
      {"auto", 4 * GB},        // 16 GB over 4 ranks
      {"5GB", 5 * GB},         {"5 GB", 5 * GB},   {"5e9", 5 * GB},  {"2 GiB", 2ull << 30},
      {"3000000000", 3 * GB},  {"0.25", 4 * GB},   {"1", 16 * GB},   {"0", 0},
      {"0GB", 0},              {"100GB", 16 * GB},  // lowered to the node's memory
      {"1e-30", 1},            // a fraction never rounds to "no limit"
  };
  for (const auto& [text, bytes] : table) {
    INFO(text);
    cfg::set scope("distributed.worker.memory-limit", text);
    CHECK(dist::worker_options(4, node).memory_limit == bytes);
  }
  cfg::set integer("distributed.worker.memory-limit", 0);
  CHECK(dist::worker_options(4, node).memory_limit == 0);
  for (const char* bad : {"-1", "5XB", "lots", "inf", "nan", "AUTO"}) {
    INFO(bad);
    cfg::set scope("distributed.worker.memory-limit", bad);
    const weft::Error e = error_of([&] { dist::worker_options(4, node); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text().starts_with("bad value for 'distributed.worker.memory-limit' in weft::config::set: "));
    CHECK(e.text().ends_with("use auto, 0 (no limit), a fraction of the node's memory such as 0.5, or a byte "
                             "size such as 5GB"));
  }
}

TEST_CASE("nthreads defaults to the rank's share of the node's cores", "[options]") {
  World world;
  const std::vector<std::pair<unsigned, unsigned>> table = {{1, 8}, {2, 4}, {3, 2}, {8, 1}, {16, 1}, {0, 8}};
  for (const auto& [ranks, threads] : table) {
    INFO(ranks << " ranks on the node");
    CHECK(dist::worker_options(ranks, eight_cores).nthreads == threads);
  }
  // SLURM's --cpus-per-task says what each rank has.
  world.set_env("SLURM_CPUS_PER_TASK", "3");
  CHECK(dist::worker_options(2, eight_cores).nthreads == 3);
  world.set_env("SLURM_CPUS_PER_TASK", "bogus");
  CHECK(dist::worker_options(2, eight_cores).nthreads == 4);
  // A configured count wins.
  cfg::set scope("distributed.worker.nthreads", 6);
  CHECK(dist::worker_options(2, eight_cores).nthreads == 6);
}

TEST_CASE("local-directory falls back to the job's node-local scratch", "[options]") {
  World world;
  const fs::path slurm = world.root() / "slurm", tmp = world.root() / "tmp", local = world.root() / "local";
  for (const auto& dir : {slurm, tmp, local}) fs::create_directories(dir);
  auto directory = [] { return dist::worker_options(1, eight_cores).local_directory; };

  CHECK(directory() == "/tmp");
  world.set_env("LOCAL_SCRATCH", local.string());
  CHECK(directory() == local);
  world.set_env("TMPDIR", tmp.string());
  CHECK(directory() == tmp);
  world.set_env("SLURM_TMPDIR", slurm.string());
  CHECK(directory() == slurm);
  // A variable that names no folder (not on this node) is passed over.
  world.set_env("SLURM_TMPDIR", (world.root() / "missing").string());
  CHECK(directory() == tmp);
  world.set_env("TMPDIR", "");
  CHECK(directory() == local);
  {
    // temporary-directory, when set, is the user's choice: it wins.
    cfg::set scope("temporary-directory", "/scratch/u");
    CHECK(directory() == "/scratch/u");
    cfg::set inner("distributed.worker.local-directory", "/nvme/u");
    CHECK(directory() == "/nvme/u");
  }
  CHECK(directory() == local);
}

TEST_CASE("parse_resources reads Dask's NAME=AMOUNT pairs", "[options]") {
  using Map = std::map<std::string, double>;
  CHECK(dist::parse_resources("GPU=2 MEM=10e9") == Map{{"GPU", 2}, {"MEM", 1e10}});
  CHECK(dist::parse_resources(" GPU=2,  MEM=1.5 ,foo=0 ") == Map{{"GPU", 2}, {"MEM", 1.5}, {"foo", 0}});
  CHECK(dist::parse_resources("").empty());
  CHECK(dist::parse_resources(" , ").empty());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"GPU", "'GPU' is not NAME=AMOUNT"},
      {"GPU=2 =3", "'=3' is not NAME=AMOUNT"},
      {"GPU=", "the amount of GPU is not a non-negative number"},
      {"GPU=two", "the amount of GPU is not a non-negative number"},
      {"GPU=-1", "the amount of GPU is not a non-negative number"},
      {"GPU=inf", "the amount of GPU is not a non-negative number"},
      {"GPU=1 GPU=2", "GPU is given twice"},
  };
  for (const auto& [text, why] : bad) {
    INFO(text);
    const weft::Error e = error_of([&] { dist::parse_resources(text); });
    CHECK(e.id() == "value.bad-resources");
    CHECK(e.text() == "cannot read '" + text + "' as resources: " + why +
                          " (expected NAME=AMOUNT pairs, e.g. \"GPU=2 MEM=10e9\")");
  }
}

TEST_CASE("worker_name appends the worker's number to the configured name", "[options]") {
  dist::WorkerOptions options;
  CHECK(dist::worker_name(options, 0) == "0");
  CHECK(dist::worker_name(options, 12) == "12");
  options.name = "gpu";
  CHECK(dist::worker_name(options, 3) == "gpu3");
}

namespace {

using Role = dist::RankInfo::Role;

std::vector<dist::RankInfo> three_ranks() {
  return {{0, "n01", 100, Role::scheduler, "scheduler"}, {1, "n01", 101, Role::worker, "0"},
          {2, "n02", 200, Role::worker, "1"}};
}

std::vector<std::string> folder_listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir)) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("scheduler_info describes the ranks as Dask's scheduler file does", "[options]") {
  const double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json info = dist::scheduler_info(three_ranks());
  const double after = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  REQUIRE(info["started"].is_number());
  CHECK(info["started"].get<double>() >= before);
  CHECK(info["started"].get<double>() <= after);
  info.erase("started");
  CHECK(info == nlohmann::json::parse(R"({
    "type": "Scheduler", "id": "scheduler", "address": "mpi://n01/0", "rank": 0, "host": "n01", "pid": 100,
    "workers": {
      "mpi://n01/1": {"type": "Worker", "id": "0", "name": "0", "rank": 1, "host": "n01", "pid": 101},
      "mpi://n02/2": {"type": "Worker", "id": "1", "name": "1", "rank": 2, "host": "n02", "pid": 200}
    }})"));

  // Just a scheduler: no workers.
  CHECK(dist::scheduler_info({three_ranks()[0]})["workers"] == nlohmann::json::object());

  auto ranks = three_ranks();
  ranks[2].rank = 1;
  weft::Error e = error_of([&] { dist::scheduler_info(ranks); });
  CHECK(e.id() == "value.bad-ranks");
  CHECK(e.text() == "scheduler_info: rank 1 is listed twice");
  ranks = three_ranks();
  ranks[1].role = Role::scheduler;
  e = error_of([&] { dist::scheduler_info(ranks); });
  CHECK(e.id() == "value.bad-ranks");
  CHECK(e.text() == "scheduler_info: ranks 0 and 1 are both the scheduler");
  ranks = three_ranks();
  ranks.erase(ranks.begin());
  e = error_of([&] { dist::scheduler_info(ranks); });
  CHECK(e.id() == "value.bad-ranks");
  CHECK(e.text() == "scheduler_info: no rank is the scheduler");
}

TEST_CASE("write_scheduler_file replaces the file whole, leaving nothing else", "[options]") {
  World world;
  const fs::path dir = world.root() / "job";
  fs::create_directories(dir);
  const fs::path path = dir / "scheduler.json";
  auto read = [&] {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  };

  std::ofstream(path) << "an older, longer file that is not JSON at all, from an earlier job";
  const nlohmann::json info = dist::scheduler_info(three_ranks());
  dist::write_scheduler_file(path.string(), info);
  CHECK(read() == info);
  CHECK(folder_listing(dir) == std::vector<std::string>{"scheduler.json"});

  auto fewer = three_ranks();
  fewer.pop_back();
  const nlohmann::json smaller = dist::scheduler_info(fewer);
  dist::write_scheduler_file(path.string(), smaller);
  CHECK(read() == smaller);

  // A failed write leaves what was there, and no temporary file.
  fs::create_directories(dir / "taken");
  weft::Error e = error_of([&] { dist::write_scheduler_file((dir / "taken").string(), info); });
  CHECK(e.id() == "io.cannot-write");
  CHECK(e.text().starts_with("cannot write scheduler file '" + (dir / "taken").string() + "'"));
  CHECK(folder_listing(dir) == std::vector<std::string>{"scheduler.json", "taken"});
  CHECK(fs::is_empty(dir / "taken"));
  CHECK(read() == smaller);

  e = error_of([&] { dist::write_scheduler_file((dir / "missing" / "s.json").string(), info); });
  CHECK(e.id() == "io.cannot-write");
}

namespace {

// tests/weft-preload-test.la's shared object, which `make check` builds in
// .libs beside the test program.
fs::path preload_test_library() {
  const fs::path library = fs::read_symlink("/proc/self/exe").parent_path() / ".libs" / "weft-preload-test.so";
  INFO("build it with `make check` or `make tests/weft-preload-test.la`");
  REQUIRE(fs::exists(library));
  return library;
}

// A counter of the preload's (visible: it is loaded RTLD_GLOBAL).
int preload_counter(const char* name) {
  const void* calls = dlsym(RTLD_DEFAULT, name);
  REQUIRE(calls);
  return *static_cast<const int*>(calls);
}
int preload_setup_calls() { return preload_counter("weft_preload_test_calls"); }
int preload_teardown_calls() { return preload_counter("weft_preload_test_teardowns"); }

}  // namespace

TEST_CASE("load_preloads loads shared objects and runs their weft_setup", "[options]") {
  World world;
  const std::string library = preload_test_library().string();

  dist::load_preloads({library});
  const int calls = preload_setup_calls();
  CHECK(calls >= 1);
  // A library without weft_setup is fine; each load runs weft_setup again.
  dist::load_preloads({"libm.so.6", library});
  CHECK(preload_setup_calls() == calls + 1);
  dist::load_preloads({});
  CHECK(preload_setup_calls() == calls + 1);

  world.set_env("PRELOAD_TEST_STATUS", "3");
  weft::Error e = error_of([&] { dist::load_preloads({library}); });
  CHECK(e.id() == "config.preload-setup-failed");
  CHECK(e.text() == "weft_setup() of preload '" + library + "' returned 3");
  CHECK(preload_setup_calls() == calls + 2);
  world.set_env("PRELOAD_TEST_STATUS", "0");

  // Libraries load in order, up to the one that fails.
  const std::string missing = (world.root() / "libmissing.so").string();
  e = error_of([&] { dist::load_preloads({library, missing, library}); });
  CHECK(e.id() == "config.preload-failed");
  CHECK(e.text().starts_with("cannot load preload '" + missing + "': "));
  CHECK(e.text().find("No such file or directory") != std::string::npos);
  CHECK(preload_setup_calls() == calls + 3);

  // Not a shared object: dlerror's reason is in the message.
  const fs::path text = world.root() / "text.so";
  std::ofstream(text) << "not ELF";
  e = error_of([&] { dist::load_preloads({text.string()}); });
  CHECK(e.id() == "config.preload-failed");
  CHECK(e.text().starts_with("cannot load preload '" + text.string() + "': " + text.string() + ": "));

  // Each load whose weft_setup succeeded (3: not the one that returned 3)
  // gets its weft_teardown, once.
  const int teardowns = preload_teardown_calls();
  dist::teardown_preloads();
  CHECK(preload_teardown_calls() == teardowns + 3);
  dist::teardown_preloads();
  CHECK(preload_teardown_calls() == teardowns + 3);
}

TEST_CASE("node_info and worker_options describe this machine", "[options]") {
  World world;
  const dist::NodeInfo node = dist::node_info();
  CHECK(node.cores >= 1);
  if (const unsigned all = std::thread::hardware_concurrency()) CHECK(node.cores <= all);
  const std::uint64_t physical =
      static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  CHECK(node.memory > 0);
  CHECK(node.memory <= physical);

  const dist::WorkerOptions options = dist::worker_options(1);
  CHECK(options.nthreads == node.cores);
  CHECK(options.memory_limit == node.memory);  // auto, one rank on the node
  CHECK(options.local_directory == "/tmp");
}
