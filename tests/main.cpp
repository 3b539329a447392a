// tests/main.cpp - main() of tests/weft-tests, the one Catch2 binary that
// holds every unit test (tests/test_<concept>.cpp).
//
// Besides Catch2's own console report, the run writes one automake result
// line per test case to the file named by $TEST_CASE_RESULTS_FILE, when set
// (not WEFT_*: every WEFT_* variable must be a config key):
// tests/catch2-driver sets it, so `make check` counts test cases.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

namespace {

class AutomakeResults : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testRunStarting(const Catch::TestRunInfo& info) override {
    TestEventListenerBase::testRunStarting(info);
    if (const char* path = std::getenv("TEST_CASE_RESULTS_FILE")) out_.open(path);
  }

  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    TestEventListenerBase::testCaseEnded(stats);
    if (!out_.is_open()) return;
    const auto& assertions = stats.totals.assertions;
    const char* result = assertions.allPassed() ? "PASS" : assertions.allOk() ? "XFAIL" : "FAIL";
    // Flushed per test case, so that a crash keeps the results before it.
    out_ << ":test-result: " << result << ' ' << stats.testInfo.name << std::endl;
  }

  // Tells the driver the run was not cut short by a crash.
  void testRunEnded(const Catch::TestRunStats& stats) override {
    TestEventListenerBase::testRunEnded(stats);
    if (out_.is_open()) out_ << ":end-of-run:" << std::endl;
  }

 private:
  std::ofstream out_;
};

}  // namespace

CATCH_REGISTER_LISTENER(AutomakeResults)
