// A preload for tests/test_options.cpp, built as tests/weft-preload-test.la.
// weft_setup counts its calls, so the test sees that it ran, and returns the
// number in $PRELOAD_TEST_STATUS (0 when unset), so the test can make it
// fail. (Not a WEFT_* variable: the config would take it for a key.)
#include <cstdlib>

extern "C" {

int weft_preload_test_calls = 0;

int weft_setup(void) {
  ++weft_preload_test_calls;
  const char* status = std::getenv("PRELOAD_TEST_STATUS");
  return status ? std::atoi(status) : 0;
}

}  // extern "C"
