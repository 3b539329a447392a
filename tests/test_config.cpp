// weft::config: defaults, the precedence of layers, set scopes, errors that
// name key and source, value syntax (as dask.utils) and concurrent use.
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config_world.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace cfg = weft::config;
namespace fs = std::filesystem;

namespace {

using weft_test::EnvVar;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

using Isolated = weft_test::ConfigWorld;

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

}  // namespace

TEST_CASE("config defaults come from weft.yaml", "[config]") {
  Isolated world;
  CHECK(cfg::get<std::string>("scheduler") == "threads");
  CHECK(cfg::is_null("num-workers"));
  CHECK(cfg::is_null("temporary-directory"));
  CHECK_FALSE(cfg::get<bool>("tokenize.ensure-deterministic"));
  CHECK(cfg::get<bool>("optimization.fuse.active"));
  CHECK(cfg::get<std::int64_t>("optimization.fuse.max-height") == 1000000);
  CHECK(cfg::get<int>("optimization.fuse.max-height") == 1000000);
  CHECK(cfg::get<double>("optimization.fuse.max-height") == 1e6);
  CHECK(cfg::get<bool>("optimization.inline.active"));
  CHECK(cfg::get_seconds("diagnostics.progress.interval") == Approx(0.1));
  CHECK(cfg::get_seconds("diagnostics.progress.log-interval") == 10);
  CHECK(cfg::get_seconds("diagnostics.progress.minimum") == 0);
  CHECK(cfg::get<std::string>("diagnostics.progress.interval") == "100ms");
  CHECK(cfg::get_bytes("array.chunk-size") == 128ull << 20);
  CHECK(cfg::source_of("scheduler") == "defaults");
  // Case and '_' / '-' do not matter, as in Dask's canonical_name.
  CHECK(cfg::get<bool>("Optimization.Fuse.Active"));
  CHECK(cfg::is_null("num_workers"));
  CHECK_FALSE(cfg::get_optional<int>("num-workers"));
  CHECK(cfg::get_optional<std::string>("scheduler") == "threads");
  CHECK(cfg::generation() != 0);
}

TEST_CASE("config defaults file documents every key", "[config]") {
  // Each key line has a comment on it or on the line above (sections
  // included), so the installed weft.yaml explains everything it allows.
  std::istringstream lines{std::string(cfg::defaults_yaml())};
  const std::regex key_line(R"(^\s*([a-z0-9-]+):\s*([^#]*?)\s*(#.*)?$)");
  std::string line, previous;
  std::size_t leaves = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, key_line)) {
      const bool section = m[2].str().empty();
      if (!section) {
        ++leaves;
        INFO(line);
        CHECK((m[3].matched || previous.find('#') != std::string::npos));
      }
    }
    previous = line;
  }
  // The line scan saw every key.
  auto count_leaves = [](const YAML::Node& node, auto&& self) -> std::size_t {
    std::size_t n = 0;
    for (const auto& item : node) n += item.second.IsMap() ? self(item.second, self) : 1;
    return n;
  };
  CHECK(leaves == count_leaves(YAML::Load(std::string(cfg::defaults_yaml())), count_leaves));
  // The merged config dumps as YAML that reads back to the same values.
  Isolated world;
  const YAML::Node dumped = YAML::Load(cfg::dump_yaml());
  CHECK(dumped["scheduler"].as<std::string>() == "threads");
  CHECK(dumped["num-workers"].IsNull());
  CHECK(dumped["optimization"]["fuse"]["max-height"].as<std::int64_t>() == 1000000);
  CHECK(dumped["array"]["chunk-size"].as<std::string>() == "128MiB");
}

TEST_CASE("config layers override in the documented order", "[config]") {
  Isolated world;
  // Six keys; layer n (1 = first system folder) sets keys n..6, so key n
  // shows which layer wins over all those below it.
  const std::vector<std::string> keys = {"num-workers",
                                         "temporary-directory",
                                         "optimization.fuse.max-height",
                                         "diagnostics.progress.interval",
                                         "array.chunk-size",
                                         "scheduler"};
  // Each key as nested YAML: "a.b: v" is written "a:\n  b: v".
  auto yaml_from = [&](std::size_t first, const std::string& value) {
    std::string text;
    for (std::size_t k = first; k < keys.size(); ++k) {
      std::string indent;
      std::size_t start = 0;
      for (std::size_t dot = keys[k].find('.'); dot != std::string::npos; dot = keys[k].find('.', start)) {
        text += indent + keys[k].substr(start, dot - start) + ":\n";
        indent += "  ";
        start = dot + 1;
      }
      text += indent + keys[k].substr(start) + ": " + value + "\n";
    }
    return text;
  };
  const fs::path etc = world.root() / "etc", prefix_etc = world.root() / "prefix-etc",
                 user = world.root() / "user";
  write(etc / "a.yaml", yaml_from(0, "1"));
  write(etc / "b.yml", yaml_from(0, "2"));   // later name in a folder wins
  write(etc / "c.txt", yaml_from(0, "99"));  // not *.yaml: ignored
  write(prefix_etc / "weft.yaml", yaml_from(1, "3"));
  write(user / "weft.yaml", yaml_from(2, "4"));
  write(world.root() / "env-config" / "x.yaml", yaml_from(3, "5"));
  world.set_env("WEFT_ARRAY__CHUNK_SIZE", "6");
  world.set_env("WEFT_SCHEDULER", "6");
  cfg::Paths paths = world.paths();
  paths.weft_config = (world.root() / "env-config").string();  // a folder; a file in the next test
  cfg::refresh(paths);
  cfg::set_cli("scheduler", "7", "--scheduler");

  CHECK(cfg::get<std::int64_t>("num-workers") == 2);
  CHECK(cfg::source_of("num-workers") == (etc / "b.yml").string());
  CHECK(cfg::get<std::int64_t>("temporary-directory") == 3);
  CHECK(cfg::source_of("temporary-directory") == (prefix_etc / "weft.yaml").string());
  CHECK(cfg::get<std::int64_t>("optimization.fuse.max-height") == 4);
  CHECK(cfg::source_of("optimization.fuse.max-height") == (user / "weft.yaml").string());
  CHECK(cfg::get_seconds("diagnostics.progress.interval") == 5);
  CHECK(cfg::source_of("diagnostics.progress.interval") == (world.root() / "env-config" / "x.yaml").string());
  CHECK(cfg::get_bytes("array.chunk-size") == 6);
  CHECK(cfg::source_of("array.chunk-size") == "environment variable WEFT_ARRAY__CHUNK_SIZE");
  CHECK(cfg::get<std::string>("scheduler") == "7");
  CHECK(cfg::source_of("scheduler") == "command-line flag --scheduler");
  {
    cfg::set scope{{"scheduler", "sync"}};
    CHECK(cfg::get<std::string>("scheduler") == "sync");
    CHECK(cfg::source_of("scheduler") == "weft::config::set");
  }
  CHECK(cfg::get<std::string>("scheduler") == "7");
  cfg::clear_cli();
  CHECK(cfg::get<std::string>("scheduler") == "6");
  // refresh() keeps command-line values and live scopes.
  cfg::set_cli("scheduler", "sync");
  cfg::set scope{{"num-workers", 8}};
  cfg::refresh(paths);
  CHECK(cfg::source_of("scheduler") == "command line");
  CHECK(cfg::get<std::int64_t>("num-workers") == 8);
}

TEST_CASE("config default paths follow XDG_CONFIG_HOME, HOME and WEFT_CONFIG", "[config]") {
  Isolated world;
  {
    EnvVar xdg("XDG_CONFIG_HOME", (world.root() / "xdg").string());
    EnvVar weft_config("WEFT_CONFIG", (world.root() / "one.yaml").string());
    const cfg::Paths paths = cfg::default_paths();
    CHECK(paths.user_dir == (world.root() / "xdg" / "weft").string());
    CHECK(paths.weft_config == (world.root() / "one.yaml").string());
    REQUIRE_FALSE(paths.system_dirs.empty());
    CHECK(paths.system_dirs.front() == "/etc/weft");

    // refresh() reads them: a user file, then WEFT_CONFIG naming one file.
    write(world.root() / "xdg" / "weft" / "u.yaml", "scheduler: sync\nnum-workers: 3\n");
    write(world.root() / "one.yaml", "num-workers: 4\n");
    cfg::refresh();
    CHECK(cfg::get<std::string>("scheduler") == "sync");
    CHECK(cfg::get<std::int64_t>("num-workers") == 4);
    CHECK(cfg::source_of("num-workers") == (world.root() / "one.yaml").string());
  }
  {
    EnvVar xdg("XDG_CONFIG_HOME", std::nullopt);
    EnvVar home("HOME", (world.root() / "home").string());
    CHECK(cfg::default_paths().user_dir == (world.root() / "home" / ".config" / "weft").string());
    CHECK(cfg::default_paths().weft_config.empty());
  }
}

TEST_CASE("config set scopes nest and restore", "[config]") {
  Isolated world;
  const std::uint64_t g0 = cfg::generation();
  {
    cfg::set outer{{"scheduler", "sync"}, {"num-workers", 2}};
    CHECK(cfg::generation() != g0);
    CHECK(cfg::get<std::string>("scheduler") == "sync");
    CHECK(cfg::get<int>("num-workers") == 2);
    CHECK(cfg::get_optional<std::int64_t>("num-workers") == 2);
    {
      cfg::set inner("num-workers", 3);
      CHECK(cfg::get<int>("num-workers") == 3);
      CHECK(cfg::get<std::string>("scheduler") == "sync");
    }
    CHECK(cfg::get<int>("num-workers") == 2);
  }
  CHECK(cfg::get<std::string>("scheduler") == "threads");
  CHECK(cfg::is_null("num-workers"));
  CHECK(cfg::source_of("num-workers") == "defaults");

  // Scopes that end out of order remove exactly their own values.
  auto first = std::make_optional<cfg::set>("num-workers", 5);
  auto second = std::make_optional<cfg::set>("num-workers", 6);
  first.reset();
  CHECK(cfg::get<int>("num-workers") == 6);
  second.reset();
  CHECK(cfg::is_null("num-workers"));

  // Values of every C++ type; text is read as YAML.
  {
    cfg::set scope{
        {"optimization.fuse.active", false},      {"optimization.inline.active", "no"},
        {"optimization.fuse.max-height", 7u},     {"diagnostics.progress.interval", 0.25},
        {"array.chunk-size", std::int64_t{4096}}, {"temporary-directory", std::string("/scratch/x")}};
    CHECK_FALSE(cfg::get<bool>("optimization.fuse.active"));
    CHECK_FALSE(cfg::get<bool>("optimization.inline.active"));
    CHECK(cfg::get<int>("optimization.fuse.max-height") == 7);
    CHECK(cfg::get_seconds("diagnostics.progress.interval") == 0.25);
    CHECK(cfg::get_bytes("array.chunk-size") == 4096);
    CHECK(cfg::get<std::string>("temporary-directory") == "/scratch/x");
  }

  // A bad value sets nothing.
  const weft::Error e = error_of([] {
    cfg::set scope{{"scheduler", "sync"}, {"optimization.fuse.active", "many"}};
  });
  CHECK(e.id() == "config.bad-value");
  CHECK(cfg::get<std::string>("scheduler") == "threads");
  CHECK(error_of([] { cfg::SettingValue v(std::uint64_t{1} << 63); }).id() == "config.bad-value");
}

TEST_CASE("config unknown keys name the key, the source and a suggestion", "[config]") {
  Isolated world;
  const fs::path file = world.root() / "user" / "a.yaml";
  write(file, "optimization:\n  fuse:\n    activ: false\n");
  weft::Error e = error_of([&] { cfg::refresh(world.paths()); });
  CHECK(e.id() == "config.unknown-key");
  CHECK(std::string(e.what()) == "[weft.config.unknown-key] unknown key 'optimization.fuse.activ' in " +
                                     file.string() + " (did you mean 'optimization.fuse.active'?)");
  CHECK(error_of([&] { cfg::validate_file(file.string()); }).id() == "config.unknown-key");
  // The failed refresh changed nothing.
  CHECK(cfg::get<bool>("optimization.fuse.active"));
  fs::remove(file);

  // A misspelt section is reported with the whole key.
  write(file, "optimisation:\n  fuse:\n    active: false\n");
  e = error_of([&] { cfg::validate_file(file.string()); });
  CHECK(e.text() == "unknown key 'optimisation.fuse.active' in " + file.string() +
                        " (did you mean 'optimization.fuse.active'?)");
  fs::remove(file);

  {
    EnvVar var("WEFT_NUM_WORKER", "2");
    e = error_of([&] { cfg::refresh(world.paths()); });
    CHECK(e.id() == "config.unknown-key");
    CHECK(e.text() ==
          "unknown key 'num-worker' in environment variable WEFT_NUM_WORKER "
          "(did you mean 'num-workers'?)");
  }
  e = error_of([] { cfg::set scope{{"fuse.active", false}}; });
  CHECK(e.text() ==
        "unknown key 'fuse.active' in weft::config::set (did you mean 'optimization.fuse.active'?)");
  e = error_of([] { cfg::set_cli("nthreads", "4", "--nthreads"); });
  CHECK(e.text() ==
        "unknown key 'nthreads' in command-line flag --nthreads (did you mean 'distributed.worker.nthreads'?)");
  e = error_of([] { cfg::set_cli("no-such-flag", "4", "--no-such-flag"); });
  CHECK(e.text() == "unknown key 'no-such-flag' in command-line flag --no-such-flag");
  e = error_of([] { cfg::get<int>("no-such-key"); });
  CHECK(e.id() == "config.unknown-key");
  CHECK(e.text() == "unknown key 'no-such-key'");
  e = error_of([] { cfg::set scope{{"optimization.fuse", true}}; });
  CHECK(e.id() == "config.unknown-key");
  CHECK(e.text().find("is a section") != std::string::npos);
}

TEST_CASE("config bad values name the key and the source", "[config]") {
  Isolated world;
  const fs::path file = world.root() / "bad.yaml";
  auto file_error = [&](const std::string& text) {
    write(file, text);
    return error_of([&] { cfg::validate_file(file.string()); });
  };
  weft::Error e = file_error("optimization:\n  fuse:\n    active: maybe\n");
  CHECK(e.id() == "config.bad-value");
  CHECK(e.text() == "bad value for 'optimization.fuse.active' in " + file.string() +
                        ": expected a bool (true or false), got 'maybe'");
  e = file_error("optimization:\n  fuse:\n    max-height: 2.5\n");
  CHECK(e.text() == "bad value for 'optimization.fuse.max-height' in " + file.string() +
                        ": expected an integer, got '2.5'");
  e = file_error("scheduler: null\n");
  CHECK(e.text() == "bad value for 'scheduler' in " + file.string() + ": expected a string, got null");
  e = file_error("scheduler: {a: 1}\n");
  CHECK(e.text() == "bad value for 'scheduler' in " + file.string() + ": expected a string, got a mapping");
  e = file_error("optimization: true\n");
  CHECK(e.id() == "config.bad-value");
  CHECK(e.text().find("'optimization' in " + file.string() + ": it is a section") != std::string::npos);
  e = file_error("scheduler: [sync\n");
  CHECK(e.id() == "config.bad-file");
  CHECK(e.text().starts_with(file.string() + ":2:1: not valid YAML: "));
  e = file_error("- scheduler\n");
  CHECK(e.id() == "config.bad-file");
  CHECK(error_of([&] { cfg::validate_file((world.root() / "missing.yaml").string()); }).id() ==
        "config.bad-file");
  // Empty files and empty sections are fine.
  write(file, "");
  cfg::validate_file(file.string());
  write(file, "optimization:\n# fuse: ...\n");
  cfg::validate_file(file.string());

  {
    EnvVar var("WEFT_ARRAY__CHUNK_SIZE", "5XB");
    e = error_of([&] { cfg::refresh(world.paths()); });
    CHECK(e.id() == "config.bad-value");
    CHECK(e.text() ==
          "bad value for 'array.chunk-size' in environment variable WEFT_ARRAY__CHUNK_SIZE: "
          "cannot read '5XB' as a byte size: 'XB' is not a byte unit "
          "(use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)");
  }
  e = error_of([] { cfg::set scope{{"diagnostics.progress.interval", "5 parsecs"}}; });
  CHECK(e.id() == "config.bad-value");
  CHECK(
      e.text().starts_with("bad value for 'diagnostics.progress.interval' in weft::config::set: "
                           "cannot read '5 parsecs' as a duration: 'parsecs' is not a time unit"));
  e = error_of([] { cfg::set_cli("optimization.fuse.active", "maybe", "--fuse"); });
  CHECK(e.text() ==
        "bad value for 'optimization.fuse.active' in command-line flag --fuse: "
        "expected a bool (true or false), got 'maybe'");
  {
    EnvVar var("WEFT_CONFIG", (world.root() / "nowhere").string());
    e = error_of([] { cfg::refresh(cfg::Paths{{}, "", cfg::default_paths().weft_config}); });
    CHECK(e.id() == "config.bad-file");
    CHECK(e.text().find("nowhere") != std::string::npos);
  }

  // Reading a value as another type.
  e = error_of([] { cfg::get<bool>("scheduler"); });
  CHECK(e.id() == "config.type-mismatch");
  CHECK(e.text() == "'scheduler' is 'threads' (from defaults), not a bool");
  CHECK(error_of([] { cfg::get_optional<bool>("scheduler"); }).id() == "config.type-mismatch");
  e = error_of([] { cfg::get<std::int64_t>("num-workers"); });
  CHECK(e.text() == "'num-workers' is null (from defaults), not an integer");
  {
    cfg::set scope{{"num-workers", std::int64_t{1} << 40}};
    CHECK(error_of([] { cfg::get<int>("num-workers"); }).id() == "config.type-mismatch");
    CHECK(cfg::get<std::int64_t>("num-workers") == std::int64_t{1} << 40);
  }
  {
    // A key whose default is null takes any scalar; get_bytes checks it then.
    cfg::set scope{{"temporary-directory", "5XB"}};
    e = error_of([] { cfg::get_bytes("temporary-directory"); });
    CHECK(e.id() == "config.bad-value");
    CHECK(
        e.text().starts_with("bad value for 'temporary-directory' in weft::config::set: cannot read '5XB'"));
  }
}

TEST_CASE("config environment variables are canonicalised and read as YAML", "[config]") {
  Isolated world;
  world.set_env("WEFT_OPTIMIZATION__FUSE__ACTIVE", "false");
  world.set_env("WEFT_optimization__inline__active", "no");
  world.set_env("WEFT_NUM_WORKERS", "3");
  world.set_env("WEFT_TEMPORARY-DIRECTORY", "'123'");
  world.set_env("WEFT_DIAGNOSTICS__PROGRESS__LOG_INTERVAL", "2 min");
  cfg::refresh(world.paths());
  CHECK_FALSE(cfg::get<bool>("optimization.fuse.active"));
  CHECK_FALSE(cfg::get<bool>("optimization.inline.active"));
  CHECK(cfg::get<int>("num-workers") == 3);
  CHECK(cfg::get<std::string>("temporary-directory") == "123");  // quoted: a string
  CHECK(cfg::get_seconds("diagnostics.progress.log-interval") == 120);
  CHECK(cfg::source_of("diagnostics.progress.log-interval") ==
        "environment variable WEFT_DIAGNOSTICS__PROGRESS__LOG_INTERVAL");
  CHECK(cfg::canonical_name("Num_Workers") == "num-workers");
  CHECK(cfg::canonical_name("optimization.fuse.MAX_HEIGHT") == "optimization.fuse.max-height");
}

TEST_CASE("config file strings expand environment variables", "[config]") {
  Isolated world;
  EnvVar scratch("TEST_CONFIG_SCRATCH", "/scratch/u1");
  CHECK(cfg::expand_environment_variables("$TEST_CONFIG_SCRATCH/a:${TEST_CONFIG_SCRATCH}b") ==
        "/scratch/u1/a:/scratch/u1b");
  CHECK(cfg::expand_environment_variables("$TEST_CONFIG_UNSET_VAR/x ${ $") ==
        "$TEST_CONFIG_UNSET_VAR/x ${ $");
  write(world.root() / "user" / "a.yaml", "temporary-directory: ${TEST_CONFIG_SCRATCH}/weft\n");
  cfg::refresh(world.paths());
  CHECK(cfg::get<std::string>("temporary-directory") == "/scratch/u1/weft");
}

TEST_CASE("config dump_yaml shows the merged values", "[config]") {
  Isolated world;
  cfg::set scope{{"scheduler", "sync"}, {"temporary-directory", "'5'"}, {"num-workers", 2.0}};
  const YAML::Node dumped = YAML::Load(cfg::dump_yaml());
  CHECK(dumped["scheduler"].as<std::string>() == "sync");
  CHECK(dumped["num-workers"].Scalar() == "2.0");  // still a float when read back
  // A string that looks like a number is quoted, so it reads back as text.
  CHECK(dumped["temporary-directory"].Tag() == "!");
  CHECK(dumped["temporary-directory"].as<std::string>() == "5");
  cfg::set tenth("num-workers", 0.1);
  CHECK(YAML::Load(cfg::dump_yaml())["num-workers"].Scalar() == "0.1");
  CHECK(error_of([] { cfg::get<int>("num-workers"); }).text() ==
        "'num-workers' is 0.1 (from weft::config::set), not an integer");
}

TEST_CASE("parse_bytes reads sizes as dask.utils.parse_bytes does", "[config]") {
  const std::vector<std::pair<std::string, std::uint64_t>> table = {
      {"100", 100},
      {"100 B", 100},
      {"5 GB", 5000000000},
      {"5GB", 5000000000},
      {"1 KiB", 1024},
      {"1e6", 1000000},
      {"1e6 kB", 1000000000},
      {"MB", 1000000},
      {"128MiB", 134217728},
      {"128 mib", 134217728},
      {"1.5 kB", 1500},
      {"0.5 KiB", 512},
      {"5 gb", 5000000000},
      {"2 k", 2000},
      {"2Ki", 2048},
      {"1 PiB", 1ull << 50},
      {"18446744073709551615", 18446744073709551615ull},
  };
  for (const auto& [text, bytes] : table) {
    INFO(text);
    CHECK(cfg::parse_bytes(text) == bytes);
  }
  for (const char* bad : {"5XB", "", "abc kB", "-1 kB", "1e30 PiB", " ", "18446744073709551616"}) {
    INFO(bad);
    const weft::Error e = error_of([&] { cfg::parse_bytes(bad); });
    CHECK(e.id() == "value.bad-bytes");
    CHECK(e.text().starts_with("cannot read '" + std::string(bad) + "' as a byte size"));
  }
}

TEST_CASE("parse_timedelta reads durations as dask.utils.parse_timedelta does", "[config]") {
  const std::vector<std::pair<std::string, double>> table = {
      {"500ms", 0.5},   {"3 min", 180},     {"3m", 180},   {"2h", 7200},  {"1 us", 1e-6},
      {"1d", 86400},    {"1 week", 604800}, {"10", 10},    {"1.5s", 1.5}, {"ms", 1e-3},
      {"2 seconds", 2}, {"3 Minutes", 180}, {"1ns", 1e-9}, {"0s", 0},
  };
  for (const auto& [text, seconds] : table) {
    INFO(text);
    CHECK(cfg::parse_timedelta(text) == Approx(seconds));
  }
  CHECK(cfg::parse_timedelta("250", "ms") == Approx(0.25));
  CHECK(cfg::parse_timedelta("2 s", "ms") == 2);
  for (const char* bad : {"5 parsecs", "", "-1s", "x5s"}) {
    INFO(bad);
    const weft::Error e = error_of([&] { cfg::parse_timedelta(bad); });
    CHECK(e.id() == "value.bad-timedelta");
    CHECK(e.text().starts_with("cannot read '" + std::string(bad) + "' as a duration"));
  }
  CHECK(error_of([] { cfg::parse_timedelta("5", "fortnights"); }).id() == "value.bad-timedelta");
}

TEST_CASE("config reads and scopes from several threads at once", "[config]") {
  Isolated world;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      std::uint64_t cached_generation = 0;
      int workers = 0;
      while (!stop.load()) {
        // The caching pattern hot paths use: re-read when the generation moves.
        if (const std::uint64_t g = cfg::generation(); g != cached_generation) {
          cached_generation = g;
          workers = cfg::get_optional<int>("num-workers").value_or(0);
        }
        const std::string scheduler = cfg::get<std::string>("scheduler");
        if (workers < 0 || workers > 2 || (scheduler != "threads" && scheduler != "sync")) ++bad;
      }
    });
  }
  for (int i = 0; i < 500; ++i) {
    cfg::set outer{{"scheduler", "sync"}, {"num-workers", 1}};
    cfg::set inner("num-workers", 2);
  }
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(bad == 0);
  CHECK(cfg::is_null("num-workers"));
}
