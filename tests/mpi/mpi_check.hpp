// Checks for the MPI test programs under tests/mpi/ (plain programs, no
// Catch2: every rank runs the same steps, and a failure must stop them all).
// A failed check prints "rank R: file:line: text" and calls MPI_Abort, so
// mpirun exits non-zero instead of leaving the other ranks waiting. The
// programs themselves are only started through tests/mpi/mpirun.sh's
// weft_mpirun, which wraps mpirun in `timeout` so a hang fails the test.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <source_location>
#include <string>

#include "weft/error.hpp"

namespace weft::mpi_test {

/// This process's rank in MPI_COMM_WORLD, for messages (-1 before MPI_Init).
inline int& world_rank() {
  static int rank = -1;
  return rank;
}

[[noreturn]] inline void fail(const std::string& text,
                              std::source_location where = std::source_location::current()) {
  std::fprintf(stderr, "rank %d: %s:%u: %s\n", world_rank(), where.file_name(),
               static_cast<unsigned>(where.line()), text.c_str());
  std::fflush(stderr);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

inline void check(bool ok, const std::string& text,
                  std::source_location where = std::source_location::current()) {
  if (!ok) fail("check failed: " + text, where);
}

/// Runs `f`, which must throw a weft::Error of type E with id `id`.
template <class E, class F>
void check_throws(F&& f, const std::string& id,
                  std::source_location where = std::source_location::current()) {
  try {
    f();
  } catch (const E& e) {
    if (e.id() != id) fail("expected error id " + id + ", got: " + e.what(), where);
    return;
  } catch (const std::exception& e) {
    fail("expected error id " + id + ", got another exception: " + e.what(), where);
  }
  fail("expected error id " + id + ", nothing was thrown", where);
}

}  // namespace weft::mpi_test
