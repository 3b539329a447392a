// main() of tests/mpi/array-suite: the array tests' NumPy comparisons
// (tests/test_array_*.cpp, the objects tests/weft-tests links too) run by
// the client (rank 0) inside weft::main while the other ranks serve as
// workers. On several ranks weft::test::test_schedulers() adds the
// distributed scheduler, and a plain compute() runs on the cluster, so every
// case computes its arrays there as well as on sync and threads. Arguments
// are Catch2's (a tag subset, -s, ...). Run by tests/mpi/array-suite.sh.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "array-suite"); }
