// A preload for tests/test_options.cpp and tests/mpi/plugins.sh, built as
// tests/weft-preload-test.la. weft_setup counts its calls, so the test sees
// that it ran, and returns the number in $PRELOAD_TEST_STATUS (0 when unset),
// so the test can make it fail. weft_teardown counts its calls too and, when
// $PRELOAD_TEST_TEARDOWN names a file, appends "teardown <pid>" to it, so a
// script sees it ran on every rank. (Not WEFT_* variables: the config would
// take them for keys.)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

extern "C" {

int weft_preload_test_calls = 0;
int weft_preload_test_teardowns = 0;

int weft_setup(void) {
  ++weft_preload_test_calls;
  const char* status = std::getenv("PRELOAD_TEST_STATUS");
  return status ? std::atoi(status) : 0;
}

void weft_teardown(void) {
  ++weft_preload_test_teardowns;
  const char* path = std::getenv("PRELOAD_TEST_TEARDOWN");
  if (!path) return;
  if (std::FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "teardown %ld\n", static_cast<long>(getpid()));
    std::fclose(f);
  }
}

}  // extern "C"
