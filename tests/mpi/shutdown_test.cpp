// How a weft::main program ends, run by tests/mpi/shutdown.sh and
// tests/mpi/rank_death.sh under mpirun:
//   shutdown-test status N   fn returns N: every rank exits with N
//   shutdown-test throw      fn throws: one message, status 1
//   shutdown-test wait       fn waits on a long task; the script signals mpirun
//   shutdown-test flags      weft's flags were stripped and reached every rank
//   shutdown-test drain S    a task of S seconds runs on worker rank 1 (it
//                            says so on stdout) with two tasks after it; the
//                            script sends a stop signal (the walltime drain)
//   shutdown-test lifetime   twenty 1 s tasks; run with --lifetime
//   shutdown-test die SIG    a task on worker rank 1 raises SIG (KILL, SEGV;
//                            EXIT: calls std::exit(3))
//   shutdown-test die-collective SIG   in a collective step, worker rank 1
//                            raises SIG while the other workers are in MPI_Barrier
// Every rank that returns from weft::main prints its exit status.
#include <mpi.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "weft/collective.hpp"
#include "weft/weft.hpp"

namespace {
long sleepy(long seconds) {
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  return seconds;
}
long announced_sleep(long seconds) {
  std::printf("shutdown-test: task running on rank %d\n", weft::rank());
  std::fflush(stdout);
  return sleepy(seconds);
}
long plus_one(long x) { return x + 1; }
long nap(long i) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return i;
}
// A signal's number; 0 for EXIT: std::exit(3) without MPI_Finalize.
int signal_number(const std::string& name) {
  if (name == "KILL") return SIGKILL;
  if (name == "SEGV") return SIGSEGV;
  if (name == "EXIT") return 0;
  throw std::invalid_argument("shutdown-test: unknown signal '" + name + "'");
}
int raise_on_first_worker(int sig) {
  std::printf("shutdown-test: rank %d raises signal %d\n", weft::rank(), sig);
  std::fflush(stdout);
  if (sig == 0) std::exit(3);
  std::raise(sig);
  return sig;
}
int die_in_collective(const weft::CollectiveContext& ctx, int sig) {
  if (ctx.rank == 0) raise_on_first_worker(sig);
  MPI_Barrier(ctx.comm);
  return ctx.rank;
}
std::int64_t configured_threads() { return weft::config::get<std::int64_t>("distributed.worker.nthreads"); }
}  // namespace

int main(int argc, char** argv) {
  const int status = weft::main(argc, argv, [&](weft::Client& client) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "status") return std::stoi(argv[2]);
    if (mode == "throw") throw std::runtime_error("boom from the client");
    if (mode == "wait") {
      std::printf("shutdown-test: waiting\n");
      std::fflush(stdout);
      return static_cast<int>(client.submit(sleepy, 4L).result());
    }
    if (mode == "flags") {
      // `--nthreads 2` was removed from argv and set on every rank.
      for (int i = 0; i < argc; ++i)
        if (std::string(argv[i]).rfind("--nthreads", 0) == 0) return 10;
      if (argc != 2) return 11;
      if (configured_threads() != 2) return 12;
      for (std::int64_t n : client.run(configured_threads))
        if (n != 2) return 13;
      return 0;
    }
    if (mode == "drain") {
      weft::SubmitOptions on_first;
      on_first.worker = 1;
      auto running = client.submit(on_first, announced_sleep, std::stol(argv[2]));
      auto second = client.submit(plus_one, running);
      auto third = client.submit(plus_one, second);
      // Throws weft::RuntimeError "terminated" once the drain starts.
      return static_cast<int>(third.result());
    }
    if (mode == "lifetime") {
      std::vector<long> items(20);
      for (std::size_t i = 0; i < items.size(); ++i) items[i] = static_cast<long>(i);
      long sum = 0;
      for (long v : client.gather(client.map(nap, items))) sum += v;
      return static_cast<int>(sum);
    }
    if (mode == "die") {
      weft::SubmitOptions on_first;
      on_first.worker = 1;
      return client.submit(on_first, raise_on_first_worker, signal_number(argv[2])).result();
    }
    if (mode == "die-collective") {
      std::vector<int> ranks = weft::collective(die_in_collective)(signal_number(argv[2])).compute();
      return static_cast<int>(ranks.size());
    }
    std::fprintf(stderr, "shutdown-test: unknown mode '%s'\n", mode.c_str());
    return 2;
  });
  std::fprintf(stderr, "shutdown-test: exit status %d\n", status);
  return status;
}
