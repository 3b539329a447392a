// How a weft::main program ends, run by tests/mpi/shutdown.sh under mpirun:
//   shutdown-test status N   fn returns N: every rank exits with N
//   shutdown-test throw      fn throws: one message, status 1
//   shutdown-test wait       fn waits on a long task; the script sends SIGTERM
//   shutdown-test flags      weft's flags were stripped and reached every rank
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "weft/weft.hpp"

namespace {
long sleepy(long seconds) {
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  return seconds;
}
std::int64_t configured_threads() { return weft::config::get<std::int64_t>("distributed.worker.nthreads"); }
}  // namespace

int main(int argc, char** argv) {
  return weft::main(argc, argv, [&](weft::Client& client) {
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
    std::fprintf(stderr, "shutdown-test: unknown mode '%s'\n", mode.c_str());
    return 2;
  });
}
