// Resilience under mpirun, run by tests/mpi/resilience.sh:
//   resilience-test hung      a task that never returns hangs worker rank 1;
//                             rank 0 removes it and the tasks run elsewhere
//   resilience-test retries DIR  a task failing its first 2 attempts succeeds
//                             with retries=2 and errs with retries=1
//   resilience-test killed    (allowed-failures 0) a hung task errs as KilledWorker
// Each mode exits 0 when what it checks holds, and says what failed otherwise.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace {

[[noreturn]] void hang() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

// x * 10 plus the rank that ran it; worker rank 1 never returns.
long hang_on_rank_1(long x) {
  if (weft::rank() == 1) hang();
  return x * 10 + weft::rank();
}

long hang_anywhere(long) { hang(); }

// Counts its attempts in `path` (attempts run one after another) and throws
// on the first two.
long flaky(std::string path) {
  long attempts = 0;
  std::ifstream(path) >> attempts;
  std::ofstream(path) << ++attempts;
  if (attempts <= 2) throw std::runtime_error("flaky attempt " + std::to_string(attempts));
  return attempts;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "resilience-test: FAIL: %s\n", what.c_str());
  return 1;
}

int hung(weft::Client& client) {
  std::vector<long> xs{1, 2, 3, 4};
  auto futures = client.map(hang_on_rank_1, xs);
  std::vector<long> got = client.gather(futures);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    long rank = got[i] % 10;
    if (got[i] / 10 != xs[i] || rank < 2 || rank >= weft::nranks())
      return fail("task " + std::to_string(i) + " gave " + std::to_string(got[i]));
  }
  // Work goes on on the workers that are left.
  if (client.submit(hang_on_rank_1, 7L).result() / 10 != 7) return fail("a task after the removal");
  std::printf("resilience-test: hung ok\n");
  return 0;
}

int retries(weft::Client& client, const std::string& dir) {
  weft::SubmitOptions twice;
  twice.retries = 2;
  twice.pure = false;
  if (long n = client.submit(twice, flaky, dir + "/twice").result(); n != 3)
    return fail("retries=2: " + std::to_string(n) + " attempts");
  weft::SubmitOptions once;
  once.retries = 1;
  once.pure = false;
  auto f = client.submit(once, flaky, dir + "/once");
  try {
    f.result();
    return fail("retries=1 should err");
  } catch (const weft::TaskError& e) {
    if (e.original_message().find("flaky attempt 2") == std::string::npos)
      return fail(std::string("retries=1 erred with: ") + e.what());
  }
  std::printf("resilience-test: retries ok\n");
  return 0;
}

int killed(weft::Client& client) {
  auto f = client.submit(hang_anywhere, 1L);
  try {
    f.result();
    return fail("a hung task with allowed-failures 0 should err");
  } catch (const weft::KilledWorker& e) {
    std::string text = e.what();
    if (e.id() != "runtime.killed-worker" || e.key() != f.key().str() ||
        text.find("stopped heartbeating") == std::string::npos || text.find("worker rank") == std::string::npos)
      return fail("KilledWorker says: " + text);
  }
  // The other workers carry on.
  if (client.submit(hang_on_rank_1, 5L).result() / 10 != 5) return fail("a task after the kill");
  std::printf("resilience-test: killed ok\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return weft::main(argc, argv, [&](weft::Client& client) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "hung") return hung(client);
    if (mode == "retries" && argc > 2) return retries(client, argv[2]);
    if (mode == "killed") return killed(client);
    return fail("unknown mode '" + mode + "'");
  });
}
