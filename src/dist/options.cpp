// weft::main's flags and the worker settings they feed (options.hpp).
//
// A flag's value is checked by the same function that later reads the key
// for a worker, so `--nthreads abc` fails at start-up, naming the flag, just
// as `nthreads: abc` in a file fails naming the file. Values are checked
// before any is set, so a bad command line changes nothing.
#include "options.hpp"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "../core/atomic_file.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::dist {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kNthreads = "distributed.worker.nthreads";
constexpr std::string_view kMemoryLimit = "distributed.worker.memory-limit";
constexpr std::string_view kLocalDirectory = "distributed.worker.local-directory";
constexpr std::string_view kResources = "distributed.worker.resources";
constexpr std::string_view kPreload = "distributed.worker.preload";
constexpr std::string_view kLifetime = "distributed.worker.lifetime";
constexpr std::string_view kName = "distributed.worker.name";

/// A key and where its value came from, for errors that name both.
struct Origin {
  std::string_view key;
  std::string source;

  [[noreturn]] void bad(const std::string& why) const {
    throw ConfigError("bad-value", "bad value for '" + std::string(key) + "' in " + source + ": " + why);
  }
};

Origin configured(std::string_view key) { return {key, config::source_of(key)}; }

template <class T>
bool read_whole(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\n");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
}

// ---- the settings, each checked the same way from a flag or the config ------

unsigned checked_nthreads(std::int64_t n, const Origin& origin) {
  if (n < 1 || n > UINT_MAX) origin.bad("expected a positive number of threads, got " + std::to_string(n));
  return static_cast<unsigned>(n);
}

unsigned nthreads_from_text(std::string_view text, const Origin& origin) {
  std::int64_t n = 0;
  if (!read_whole(trim(text), n)) origin.bad("expected a positive integer, got '" + std::string(text) + "'");
  return checked_nthreads(n, origin);
}

/// Dask's parse_memory_limit, with "auto" as the rank's share of the node.
std::uint64_t memory_limit_bytes(std::string_view written, const Origin& origin, const NodeInfo& node,
                                 unsigned ranks_on_node) {
  const std::string_view text = trim(written);
  const std::string forms = "use auto, 0 (no limit), a fraction of the node's memory such as 0.5, "
                            "or a byte size such as 5GB";
  if (text == "auto") return node.memory / ranks_on_node;
  std::uint64_t bytes = 0;
  if (double number = 0; read_whole(text, number)) {
    if (!std::isfinite(number) || number < 0 || number >= 0x1p64)
      origin.bad("'" + std::string(text) + "' is not a memory limit; " + forms);
    if (number == 0) return 0;
    // At least a byte: a tiny fraction must not turn into 0, "no limit".
    if (number <= 1) return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(number * node.memory));
    bytes = static_cast<std::uint64_t>(number);
  } else {
    try {
      bytes = config::parse_bytes(text);
    } catch (const ValueError& e) {
      origin.bad(e.text() + "; " + forms);
    }
  }
  return node.memory != 0 ? std::min(bytes, node.memory) : bytes;
}

std::map<std::string, double> resources_from_text(std::string_view text, const Origin& origin) {
  try {
    return parse_resources(text);
  } catch (const ValueError& e) {
    origin.bad(e.text());
  }
}

double checked_lifetime(double seconds, const Origin& origin) {
  if (!(seconds > 0)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    origin.bad(std::string("a lifetime must be positive (null for none), got ") + text + " seconds");
  }
  return seconds;
}

double lifetime_from_text(std::string_view text, const Origin& origin) {
  try {
    return checked_lifetime(config::parse_timedelta(text), origin);
  } catch (const ValueError& e) {
    origin.bad(e.text());
  }
}

/// LD_PRELOAD's syntax: paths separated by spaces or colons.
std::vector<std::string> split_preloads(std::string_view text) {
  std::vector<std::string> paths;
  constexpr std::string_view separators = " \t\n:";
  for (std::size_t at = text.find_first_not_of(separators); at != std::string_view::npos;) {
    const std::size_t end = std::min(text.find_first_of(separators, at), text.size());
    paths.emplace_back(text.substr(at, end - at));
    at = text.find_first_not_of(separators, end);
  }
  return paths;
}

unsigned default_nthreads(const NodeInfo& node, unsigned ranks_on_node) {
  // srun/sbatch --cpus-per-task: the job says what each rank's share is.
  std::int64_t per_task = 0;
  if (const char* value = std::getenv("SLURM_CPUS_PER_TASK");
      value && read_whole(std::string_view(value), per_task) && per_task > 0 && per_task <= UINT_MAX)
    return static_cast<unsigned>(per_task);
  return std::max(1u, node.cores / ranks_on_node);
}

std::string default_local_directory() {
  // An explicit temporary-directory wins, as in Dask; then the job's
  // node-local scratch, as batch systems and site prologs name it.
  if (auto temporary = config::get_optional<std::string>("temporary-directory")) return *temporary;
  for (const char* variable : {"SLURM_TMPDIR", "TMPDIR", "LOCAL_SCRATCH"}) {
    const char* value = std::getenv(variable);
    std::error_code ec;
    if (value && *value && fs::is_directory(value, ec)) return value;
  }
  return "/tmp";
}

// ---- the flags ---------------------------------------------------------------

struct Flag {
  std::string_view name;  ///< "--nthreads"
  std::string_view key;
  /// Throws ConfigError "bad-value" for text the setting cannot use; null
  /// where any text will do.
  void (*check)(std::string_view text, const Origin& origin);
  bool numeric;  ///< passed to the config as written; others as a quoted string
};

const Flag kFlags[] = {
    {"--nthreads", kNthreads, [](std::string_view t, const Origin& o) { nthreads_from_text(t, o); }, true},
    {"--memory-limit", kMemoryLimit,
     [](std::string_view t, const Origin& o) { memory_limit_bytes(t, o, node_info(), 1); }, false},
    {"--local-directory", kLocalDirectory, nullptr, false},
    {"--scheduler-file", "distributed.scheduler-file", nullptr, false},
    {"--resources", kResources, [](std::string_view t, const Origin& o) { resources_from_text(t, o); }, false},
    {"--preload", kPreload, nullptr, false},
    {"--lifetime", kLifetime, [](std::string_view t, const Origin& o) { lifetime_from_text(t, o); }, false},
    {"--name", kName, nullptr, false},
};

const Flag* find_flag(std::string_view name) {
  for (const Flag& flag : kFlags)
    if (flag.name == name) return &flag;
  return nullptr;
}

/// `text` as a double-quoted YAML scalar, so that the config keeps it as a
/// string: --name 7 names a worker "7", --name yes does not set a bool.
std::string yaml_string(const std::string& text, const Origin& origin) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << text;
  if (!out.good()) origin.bad(out.GetLastError());
  return out.c_str();
}

// ---- the node ----------------------------------------------------------------

std::optional<std::uint64_t> read_limit(const fs::path& file) {
  std::ifstream in(file);
  std::string word;
  std::uint64_t limit = 0;
  if (in >> word && read_whole(std::string_view(word), limit)) return limit;
  return std::nullopt;  // missing, or "max": no limit
}

/// The lowest memory limit from cgroup `path` (in the hierarchy mounted at
/// `root`) up to the top: a parent's limit binds its children too.
std::optional<std::uint64_t> lowest_limit(const fs::path& root, std::string_view path, const char* file) {
  std::optional<std::uint64_t> lowest;
  for (fs::path at = fs::path(path).relative_path();; at = at.parent_path()) {
    if (const auto limit = read_limit(root / at / file)) lowest = std::min(lowest.value_or(UINT64_MAX), *limit);
    if (at.empty()) break;
  }
  return lowest;
}

/// The memory limit of this process's cgroups; v1 "memory" hierarchy, or v2
/// (mounted at /sys/fs/cgroup, or under it at unified/ on hybrid systems).
std::optional<std::uint64_t> cgroup_memory_limit() {
  std::ifstream in("/proc/self/cgroup");
  std::optional<std::uint64_t> lowest;
  auto consider = [&](std::optional<std::uint64_t> limit) {
    if (limit) lowest = std::min(lowest.value_or(UINT64_MAX), *limit);
  };
  for (std::string line; std::getline(in, line);) {
    // hierarchy-id:controllers:path
    const std::size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string_view controllers = std::string_view(line).substr(first + 1, second - first - 1);
    const std::string_view path = std::string_view(line).substr(second + 1);
    if (controllers.empty()) {
      consider(lowest_limit("/sys/fs/cgroup", path, "memory.max"));
      consider(lowest_limit("/sys/fs/cgroup/unified", path, "memory.max"));
    } else if (("," + std::string(controllers) + ",").find(",memory,") != std::string::npos) {
      consider(lowest_limit("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes"));
    }
  }
  return lowest;
}

std::uint64_t physical_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
  std::ifstream in("/proc/meminfo");
  for (std::string label; in >> label;) {
    std::uint64_t kib = 0;
    if (label == "MemTotal:" && in >> kib) return kib * 1024;
    in.ignore(LLONG_MAX, '\n');
  }
  return 0;
}

unsigned available_cores() {
  // A cpu_set_t covers 1024 CPUs; a larger machine fails the call and falls
  // back to the count of all cores.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

void strip_flags(int& argc, char** argv) {
  struct Given {
    const Flag* flag;
    std::string text;
    Origin origin() const { return {flag->key, "command-line flag " + std::string(flag->name)}; }
  };
  std::vector<Given> given;
  std::string preloads;  // --preload adds up
  std::vector<char*> kept;
  int i = argc > 0 ? 1 : 0;
  if (argc > 0) kept.push_back(argv[0]);
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    const std::size_t eq = arg.find('=');
    const Flag* flag = arg.starts_with("--") ? find_flag(arg.substr(0, eq)) : nullptr;
    if (!flag) {
      kept.push_back(argv[i]);
      continue;
    }
    std::string_view text;
    if (eq != std::string_view::npos)
      text = arg.substr(eq + 1);
    else if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--"))
      text = argv[++i];
    if (text.empty())
      throw ConfigError("missing-value", "command-line flag " + std::string(flag->name) + " needs a value (" +
                                             std::string(flag->name) + " VALUE or " + std::string(flag->name) +
                                             "=VALUE)");
    if (flag->key == kPreload) {
      preloads += (preloads.empty() ? "" : " ") + std::string(text);
      continue;
    }
    given.push_back({flag, std::string(text)});
    if (flag->check) flag->check(text, given.back().origin());
  }
  if (!preloads.empty()) given.push_back({find_flag("--preload"), preloads});
  std::vector<std::string> values;
  for (const Given& g : given) values.push_back(g.flag->numeric ? g.text : yaml_string(g.text, g.origin()));

  for (std::size_t k = 0; k < given.size(); ++k) config::set_cli(given[k].flag->key, values[k], given[k].flag->name);
  for (; i < argc; ++i) kept.push_back(argv[i]);  // "--" and what follows it
  std::copy(kept.begin(), kept.end(), argv);
  argc = static_cast<int>(kept.size());
  argv[argc] = nullptr;
}

NodeInfo node_info() {
  NodeInfo node;
  node.cores = available_cores();
  node.memory = physical_memory();
  if (const auto limit = cgroup_memory_limit(); limit && (node.memory == 0 || *limit < node.memory))
    node.memory = *limit;
  return node;
}

WorkerOptions worker_options(unsigned ranks_on_node, const NodeInfo& node) {
  ranks_on_node = std::max(1u, ranks_on_node);
  WorkerOptions options;
  const auto nthreads = config::get_optional<std::int64_t>(kNthreads);
  options.nthreads = nthreads ? checked_nthreads(*nthreads, configured(kNthreads))
                              : default_nthreads(node, ranks_on_node);
  options.memory_limit = memory_limit_bytes(config::get<std::string>(kMemoryLimit), configured(kMemoryLimit),
                                            node, ranks_on_node);
  options.local_directory = local_directory();
  if (const auto resources = config::get_optional<std::string>(kResources))
    options.resources = resources_from_text(*resources, configured(kResources));
  if (const auto preload = config::get_optional<std::string>(kPreload)) options.preload = split_preloads(*preload);
  if (!config::is_null(kLifetime))
    options.lifetime_seconds = checked_lifetime(config::get_seconds(kLifetime), configured(kLifetime));
  options.name = config::get_optional<std::string>(kName).value_or("");
  return options;
}

WorkerOptions worker_options(unsigned ranks_on_node) { return worker_options(ranks_on_node, node_info()); }

std::string local_directory() {
  const auto directory = config::get_optional<std::string>(kLocalDirectory);
  return directory ? *directory : default_local_directory();
}

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

std::string worker_name(const WorkerOptions& options, unsigned worker) {
  return options.name + std::to_string(worker);
}

std::map<std::string, double> parse_resources(std::string_view text) {
  std::map<std::string, double> resources;
  auto bad = [&](const std::string& why) {
    return ValueError("bad-resources", "cannot read '" + std::string(text) + "' as resources: " + why +
                                           " (expected NAME=AMOUNT pairs, e.g. \"GPU=2 MEM=10e9\")");
  };
  constexpr std::string_view separators = " \t\n,";
  for (std::size_t at = text.find_first_not_of(separators); at != std::string_view::npos;) {
    const std::size_t end = std::min(text.find_first_of(separators, at), text.size());
    const std::string_view pair = text.substr(at, end - at);
    at = text.find_first_not_of(separators, end);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) throw bad("'" + std::string(pair) + "' is not NAME=AMOUNT");
    const std::string name(pair.substr(0, eq));
    double amount = 0;
    if (!read_whole(pair.substr(eq + 1), amount) || !std::isfinite(amount) || amount < 0)
      throw bad("the amount of " + name + " is not a non-negative number");
    if (!resources.emplace(name, amount).second) throw bad(name + " is given twice");
  }
  return resources;
}

nlohmann::json scheduler_info(const std::vector<RankInfo>& ranks) {
  const RankInfo* scheduler = nullptr;
  std::set<int> seen;
  for (const RankInfo& r : ranks) {
    if (!seen.insert(r.rank).second)
      throw ValueError("bad-ranks", "scheduler_info: rank " + std::to_string(r.rank) + " is listed twice");
    if (r.role != RankInfo::Role::scheduler) continue;
    if (scheduler)
      throw ValueError("bad-ranks", "scheduler_info: ranks " + std::to_string(scheduler->rank) + " and " +
                                        std::to_string(r.rank) + " are both the scheduler");
    scheduler = &r;
  }
  if (!scheduler) throw ValueError("bad-ranks", "scheduler_info: no rank is the scheduler");

  auto address = [](const RankInfo& r) { return "mpi://" + r.host + "/" + std::to_string(r.rank); };
  nlohmann::json workers = nlohmann::json::object();
  for (const RankInfo& r : ranks) {
    if (r.role != RankInfo::Role::worker) continue;
    workers[address(r)] = {{"type", "Worker"}, {"id", r.name}, {"name", r.name},
                           {"rank", r.rank},   {"host", r.host}, {"pid", r.pid}};
  }
  const double started =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return {{"type", "Scheduler"},     {"id", scheduler->name},     {"address", address(*scheduler)},
          {"rank", scheduler->rank}, {"host", scheduler->host}, {"pid", scheduler->pid},
          {"started", started},      {"workers", std::move(workers)}};
}

void write_scheduler_file(const std::string& path, const nlohmann::json& info) {
  // Replace bytes that are not UTF-8 (a strange host name) instead of failing.
  weft::detail::write_file_atomically(path, info.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                                      "scheduler file");
}

namespace {
// The weft_teardown of each library load_preloads set up, in load order.
std::vector<void (*)()>& preload_teardowns() {
  static std::vector<void (*)()> teardowns;
  return teardowns;
}
}  // namespace

void load_preloads(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
      const char* why = dlerror();
      throw ConfigError("preload-failed", "cannot load preload '" + path + "': " + (why ? why : "unknown error"));
    }
    // Searches this library and its dependencies only, not every library
    // loaded so far, so an earlier preload's weft_setup is not run again.
    if (void* setup = dlsym(library, "weft_setup")) {
      const int status = reinterpret_cast<int (*)()>(setup)();
      if (status != 0)
        throw ConfigError("preload-setup-failed",
                          "weft_setup() of preload '" + path + "' returned " + std::to_string(status));
    }
    if (void* teardown = dlsym(library, "weft_teardown"))
      preload_teardowns().push_back(reinterpret_cast<void (*)()>(teardown));
  }
}

void teardown_preloads() {
  std::vector<void (*)()> teardowns = std::move(preload_teardowns());
  preload_teardowns().clear();
  for (auto it = teardowns.rbegin(); it != teardowns.rend(); ++it) (*it)();
}

}  // namespace weft::dist
