// The main of the Catch2-based MPI test programs under tests/mpi/: the
// Catch2 session runs inside weft::main on rank 0 while the worker ranks
// serve, so the test cases submit to a real cluster. Include it once, in the
// file that defines CATCH_CONFIG_RUNNER, after <catch2/catch.hpp>.
#pragma once

#include <cstdio>

#include "weft/client.hpp"
#include "weft/main.hpp"

namespace weft::mpi_test {

/// The running session's client (rank 0).
inline weft::Client*& session_client() {
  static weft::Client* client = nullptr;
  return client;
}
inline weft::Client& client() { return *session_client(); }

/// Runs the Catch2 session with argv's Catch2 options inside weft::main;
/// `name` starts the line saying how many ranks and workers it has.
inline int run_catch_session(int argc, char** argv, const char* name) {
  return weft::main(argc, argv, [&](weft::Client& c) {
    session_client() = &c;
    Catch::Session session;
    const int status = session.applyCommandLine(argc, argv);
    if (status != 0) return status;
    std::printf("%s: %d rank(s), %d worker(s)\n", name, weft::nranks(), c.nworkers());
    return session.run();
  });
}

}  // namespace weft::mpi_test
