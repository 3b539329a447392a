// The command-line flags that weft::main consumes (dask-worker's --nthreads,
// --memory-limit, ...) and the worker settings read from them.
//
// Every flag sets a key of the `distributed` section of the configuration,
// in its command-line layer, so the same setting can come from a config file
// or a WEFT_* variable instead (docs/configuration.md, "The distributed
// runtime"). Nothing here knows MPI: the caller says how many ranks share the
// node, and which rank is which.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::dist {

/// Removes weft's flags from argv, `--flag value` and `--flag=value` alike,
/// and puts each value into the configuration's command-line layer
/// (config::set_cli, the source named after the flag). The program's other
/// arguments keep their order and argv[argc] stays nullptr; "--" and
/// everything after it are left alone. `--preload` may be repeated (the
/// libraries add up); for the other flags the last one wins.
/// Throws ConfigError "missing-value" for a flag without a value, and
/// "bad-value" naming the flag and the problem for a value that the setting
/// cannot use (--nthreads abc, --memory-limit 5XB, --resources GPU); then
/// neither argv nor the configuration has changed.
void strip_flags(int& argc, char** argv);

/// What the node offers the ranks on it.
struct NodeInfo {
  unsigned cores = 1;         ///< CPUs this process may run on (its affinity mask)
  std::uint64_t memory = 0;   ///< bytes: physical memory, or the cgroup's limit if lower
};

/// This node, now: cores from sched_getaffinity (else
/// std::thread::hardware_concurrency), memory from sysconf (else
/// /proc/meminfo), lowered to the memory limit of the process's cgroup (v1 or
/// v2), which is how batch systems confine a job to its share of a node.
NodeInfo node_info();

/// One worker's settings, resolved from the configuration.
struct WorkerOptions {
  unsigned nthreads = 1;                     ///< compute threads, at least 1
  std::uint64_t memory_limit = 0;            ///< bytes; 0: no limit
  std::string local_directory;               ///< node-local folder for spilled and staged data
  std::map<std::string, double> resources;   ///< e.g. {"GPU": 2}; empty: none
  std::vector<std::string> preload;          ///< shared objects, in order
  std::optional<double> lifetime_seconds;    ///< stop the worker after this long
  std::string name;                          ///< the configured name; "" if none (see worker_name)
};

/// Reads the `distributed.worker.*` keys for a rank that shares `node` with
/// `ranks_on_node` ranks (itself included; 0 counts as 1):
/// - nthreads null: $SLURM_CPUS_PER_TASK if set, else node.cores /
///   ranks_on_node, at least 1;
/// - memory-limit: "auto" = node.memory / ranks_on_node; a byte size ("5GB",
///   5e9); a number in (0, 1] = that fraction of node.memory; 0 = no limit; a
///   limit above node.memory is lowered to it (as Dask);
/// - local-directory null: the first of temporary-directory (if set),
///   $SLURM_TMPDIR, $TMPDIR, $LOCAL_SCRATCH that names a folder, else /tmp.
/// Throws ConfigError "bad-value" (or "type-mismatch") naming the key and
/// where its value came from.
WorkerOptions worker_options(unsigned ranks_on_node, const NodeInfo& node);
/// The same for this node (node_info()).
WorkerOptions worker_options(unsigned ranks_on_node);

/// This rank's node-local folder, as a worker's --local-directory resolves
/// it: distributed.worker.local-directory, else the default above (tasks and
/// collective steps read it on the rank they run on; a local run uses it too).
std::string local_directory();

/// Whether a launcher (mpirun, mpiexec, srun: Open MPI, MPICH/PMI, PMIx)
/// started this process, as opposed to a plain ./program, which must not
/// need MPI at all.
bool launched_by_mpi();

/// The name of worker `worker` (0-based), as dask-worker names its processes:
/// the configured name with the number appended ("gpu" -> "gpu0", "gpu1",
/// ...), or the number alone when no name is configured (as LocalCluster).
std::string worker_name(const WorkerOptions& options, unsigned worker);

/// Dask's resources syntax: "GPU=2 MEM=10e9" (pairs separated by spaces or
/// commas) -> {{"GPU", 2}, {"MEM", 1e10}}; "" -> {}. Throws ValueError
/// "bad-resources" quoting the text for a pair that is not NAME=AMOUNT, an
/// amount that is not a non-negative number, or a name given twice.
std::map<std::string, double> parse_resources(std::string_view text);

/// A rank as the scheduler file describes it.
struct RankInfo {
  enum class Role { scheduler, worker };
  int rank = 0;
  std::string host;
  std::int64_t pid = 0;
  Role role = Role::worker;
  std::string name;
};

/// The scheduler file's contents, shaped like Dask's (its "type", "address"
/// and "workers" keys): the scheduler's address, rank, host, pid and start
/// time ("started", Unix seconds) at the top, and "workers" mapping each
/// worker's address to {"type": "Worker", "id", "name", "rank", "host",
/// "pid"}. An address is "mpi://HOST/RANK": it names a rank, there is
/// nothing to connect to. Throws ValueError "bad-ranks" unless exactly one
/// rank is the scheduler and no rank number repeats.
nlohmann::json scheduler_info(const std::vector<RankInfo>& ranks);

/// Writes `info` as indented JSON to `path`, atomically: readers (a job
/// script polling for the file) see the whole file or none. Throws IoError
/// "cannot-write" naming the path.
void write_scheduler_file(const std::string& path, const nlohmann::json& info);

/// dlopens each shared object in order (RTLD_NOW | RTLD_GLOBAL, so later
/// libraries and tasks see its symbols) and calls its
/// `extern "C" int weft_setup(void)` if it has one. A path without '/' is
/// searched as dlopen searches (LD_LIBRARY_PATH, ...). Libraries stay loaded.
/// Throws ConfigError "preload-failed" naming the path and dlerror's text,
/// "preload-setup-failed" naming the path and the status when weft_setup
/// returns non-zero (the libraries before it stay loaded).
void load_preloads(const std::vector<std::string>& paths);
/// Calls `extern "C" void weft_teardown(void)` of each library load_preloads
/// set up (weft_setup returned 0, or it has none), the last loaded first,
/// once: weft::finalize does, on every rank, before MPI_Finalize.
void teardown_preloads();

}  // namespace weft::dist
