// weft::main and its pieces: start-up, the rank's role, shutdown.
#include "weft/main.hpp"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "client_impl.hpp"
#include "options.hpp"
#include "runtime_signals.hpp"
#include "transport.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"
#include "worker.hpp"

namespace weft {

namespace dist {
namespace {
// Read by other threads (the comm threads), so a lock-free atomic rather than
// volatile sig_atomic_t, which is safe only within the signalled thread
// (ThreadSanitizer reported the race). Lock-free atomics are signal-safe.
std::atomic<int> received_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_stop_signal(int sig) { received_signal.store(sig, std::memory_order_relaxed); }
}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

int stop_signal() noexcept { return received_signal.load(std::memory_order_relaxed); }

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}
}  // namespace dist

namespace {

// The process's runtime: one per process, between init() and finalize().
struct Runtime {
  bool started = false;
  bool mpi = false;  // MPI_Init_thread was called here
  int rank = 0;
  int size = 1;
  std::unique_ptr<detail::ClientImpl> client_impl;
  std::unique_ptr<Client> client;
  std::unique_ptr<dist::Transport> worker_transport;
  MPI_Comm workers = MPI_COMM_NULL;  // the worker ranks, for collective steps
  dist::WorkerOptions worker_options;
};

// Never destroyed: std::exit while MPI runs (a task or fn calling exit) must
// not run ~Transport, a collective that would wait for the other ranks
// forever; the process leaves without MPI_Finalize and mpirun ends the job.
Runtime& runtime() {
  static Runtime& r = *new Runtime;
  return r;
}

dist::IdlePolicy idle_policy() {
  dist::IdlePolicy p;
  p.spin_seconds = config::get_seconds("distributed.comm.spin");
  p.max_pause_seconds = config::get_seconds("distributed.comm.max-pause");
  p.first_pause_seconds = std::min(p.first_pause_seconds, p.max_pause_seconds);
  return p;
}

// Hosts and pids of every rank, for the scheduler file (collective).
void write_scheduler_file(const Runtime& rt, const std::string& path, unsigned ranks_on_node) {
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(host, &len);
  std::vector<char> hosts(static_cast<std::size_t>(rt.size) * MPI_MAX_PROCESSOR_NAME);
  std::int64_t pid = getpid();
  std::vector<std::int64_t> pids(static_cast<std::size_t>(rt.size));
  MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
             MPI_COMM_WORLD);
  MPI_Gather(&pid, 1, MPI_INT64_T, pids.data(), 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
  if (rt.rank != 0) return;
  dist::WorkerOptions wo = dist::worker_options(ranks_on_node);
  std::vector<dist::RankInfo> ranks;
  for (int r = 0; r < rt.size; ++r) {
    dist::RankInfo info;
    info.rank = r;
    info.host = std::string(&hosts[static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME]);
    info.pid = pids[static_cast<std::size_t>(r)];
    info.role = r == 0 ? dist::RankInfo::Role::scheduler : dist::RankInfo::Role::worker;
    info.name = r == 0 ? "scheduler" : dist::worker_name(wo, static_cast<unsigned>(r - 1));
    ranks.push_back(std::move(info));
  }
  dist::write_scheduler_file(path, dist::scheduler_info(ranks));
}

}  // namespace

void init(int& argc, char**& argv) {
  Runtime& rt = runtime();
  if (rt.started) throw RuntimeError("already-started", "weft::init was called twice");
  dist::strip_flags(argc, argv);
  dist::load_preloads(dist::worker_options(1).preload);
  if (!dist::launched_by_mpi()) {
    rt.client_impl = std::make_unique<detail::ClientImpl>();
    rt.client = std::make_unique<Client>(*rt.client_impl);
    rt.started = true;
    return;
  }
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  rt.mpi = true;
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    rt.mpi = false;
    throw RuntimeError("mpi-thread-level",
                       "the MPI library gives thread level " + std::to_string(provided) +
                           "; weft's comm thread needs MPI_THREAD_SERIALIZED (rebuild Open MPI with threads)");
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rt.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &rt.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rt.rank, MPI_INFO_NULL, &node);
  int ranks_on_node = 1;
  MPI_Comm_size(node, &ranks_on_node);
  MPI_Comm_free(&node);
  // Collective steps get a communicator of the workers alone (rank 0 runs
  // the client and never takes part).
  MPI_Comm_split(MPI_COMM_WORLD, rt.rank == 0 ? MPI_UNDEFINED : 0, rt.rank, &rt.workers);
  if (auto path = config::get_optional<std::string>("distributed.scheduler-file"))
    write_scheduler_file(rt, *path, static_cast<unsigned>(ranks_on_node));
  dist::install_stop_signals();
  rt.started = true;
  if (rt.size == 1) {
    rt.client_impl = std::make_unique<detail::ClientImpl>();
  } else if (rt.rank == 0) {
    dist::SchedulerOptions so;
    so.worker_saturation = static_cast<std::uint32_t>(
        std::max<std::int64_t>(1, config::get<std::int64_t>("distributed.scheduler.worker-saturation")));
    so.allowed_failures = static_cast<std::uint32_t>(
        std::max<std::int64_t>(0, config::get<std::int64_t>("distributed.scheduler.allowed-failures")));
    rt.client_impl = std::make_unique<detail::ClientImpl>(
        std::make_unique<dist::Transport>(MPI_COMM_WORLD, idle_policy()), so);
  } else {
    rt.worker_transport = std::make_unique<dist::Transport>(MPI_COMM_WORLD, idle_policy());
    rt.worker_options = dist::worker_options(static_cast<unsigned>(ranks_on_node));
    return;
  }
  rt.client = std::make_unique<Client>(*rt.client_impl);
}

bool is_client() { return runtime().rank == 0; }

Client& client() {
  Runtime& rt = runtime();
  if (!rt.client)
    throw RuntimeError("not-client", rt.started ? "weft::client() is only available on rank 0"
                                                : "weft::client() needs weft::init or weft::main first");
  return *rt.client;
}

int serve() {
  Runtime& rt = runtime();
  if (!rt.worker_transport) throw RuntimeError("not-worker", "weft::serve() runs on worker ranks only");
  dist::Worker worker(*rt.worker_transport, rt.workers, rt.worker_options);
  int status = worker.serve();
  // Threads stuck in tasks cannot be joined: finalise MPI (the other ranks
  // wait for this rank there) and leave without destroying the worker.
  if (worker.abandoned()) std::_Exit(finalize(status));
  return status;
}

int finalize(int status) {
  Runtime& rt = runtime();
  if (!rt.started) return status;
  rt.client.reset();
  // A drain decides every rank's status (128 + signal, or 124 for a lifetime).
  if (rt.client_impl && rt.client_impl->distributed()) status = rt.client_impl->shutdown(status);
  rt.client_impl.reset();
  rt.worker_transport.reset();
  if (rt.workers != MPI_COMM_NULL) MPI_Comm_free(&rt.workers);
  dist::teardown_preloads();
  if (rt.mpi) MPI_Finalize();
  config::clear_cli();
  rt = Runtime{};
  return status;
}

int rank() noexcept { return runtime().rank; }
int nranks() noexcept { return runtime().size; }

namespace detail {
ClientImpl* distributed_client() noexcept {
  Runtime& rt = runtime();
  return rt.client_impl && rt.client_impl->distributed() ? rt.client_impl.get() : nullptr;
}
ClientImpl* active_client() noexcept { return runtime().client_impl.get(); }
}  // namespace detail

int main(int& argc, char**& argv, const std::function<int(Client&)>& fn) {
  try {
    init(argc, argv);
  } catch (const std::exception& e) {
    // Every rank reads the same flags and configuration, so every rank fails
    // alike; rank 0 (or a process without MPI) says why.
    if (runtime().rank == 0) std::fprintf(stderr, "weft: error: %s\n", e.what());
    dist::teardown_preloads();  // the libraries set up before the failure
    if (runtime().mpi) MPI_Finalize();
    runtime() = Runtime{};
    return 1;
  }
  int status = 0;
  if (is_client()) {
    try {
      status = fn(client());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "weft: error: %s\n", e.what());
      status = 1;
    } catch (...) {
      std::fprintf(stderr, "weft: error: an exception that is not a std::exception escaped the client\n");
      status = 1;
    }
    // Distributed, the signal drains the job (finalize); in one process it
    // just ends it.
    if (int sig = dist::stop_signal(); sig != 0 && !detail::distributed_client()) {
      std::fprintf(stderr, "weft: stopped by signal %d (%s)\n", sig, strsignal(sig));
      status = 128 + sig;
    }
  } else {
    status = serve();
  }
  return finalize(status);
}

}  // namespace weft
