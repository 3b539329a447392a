// Worker memory end to end, run by tests/mpi/memory.sh on 3 ranks (two
// workers) with a --memory-limit; the script sets the thresholds:
//   memory-test heartbeat  every worker heartbeats (Client::scheduler_info);
//                          a worker whose task hangs past worker-ttl stops,
//                          and starts again when the task ends
//   memory-test spill      results beyond the target are spilled and read
//                          back (task inputs, a peer's fetch, the client's
//                          gather) equal to a run that keeps them in memory
//   memory-test pause      a worker above the pause threshold starts no task
//                          until the memory is freed
//   memory-test terminate  a task allocating past the terminate threshold:
//                          the client's wait fails with MemoryError
// A failed check throws, so weft::main reports it and exits with status 1.
#include <chrono>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("memory-test: check failed: " + what);
}

// Polls scheduler_info until `done` holds for it (heartbeats are periodic);
// false after `seconds`.
template <class Done>
bool eventually(weft::Client& client, double seconds, Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done(client.scheduler_info())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// A block of `n` doubles that depends on `seed` only.
std::vector<double> block(long seed, long n) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<double>((seed * 7919 + i * 31) % 1000) * 0.5;
  return v;
}
double total(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}
long sleep_ms(long ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
long inc(long x) { return x + 1; }

// `mib` MiB, every page written, held as the task's result.
std::vector<char> hog(long mib) { return std::vector<char>(static_cast<std::size_t>(mib) << 20, '\1'); }

// Allocates `mib` MiB in 8 MiB steps, pausing between them so the nanny
// sees the memory grow; frees it all at the end.
long grow(long mib) {
  std::vector<std::vector<char>> held;
  for (long done = 0; done < mib; done += 8) {
    held.emplace_back(std::size_t{8} << 20, '\1');
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return static_cast<long>(held.size());
}

int heartbeat(weft::Client& client) {
  check(eventually(client, 20,
                   [&](const weft::SchedulerInfo& info) {
                     if (static_cast<int>(info.workers.size()) != client.nworkers()) return false;
                     for (const auto& [rank, w] : info.workers)
                       if (w.heartbeats < 2 || w.metrics.memory == 0 || w.last_seen < 0) return false;
                     return true;
                   }),
        "every worker heartbeats, with its RSS");
  const weft::SchedulerInfo first = client.scheduler_info();
  for (const auto& [rank, w] : first.workers) {
    check(w.rank == rank && rank >= 1 && rank <= client.nworkers(), "workers by rank");
    check(w.metrics.memory_limit == 300ull << 20, "the memory limit of rank " + std::to_string(rank));
    check(w.metrics.peak_memory >= w.metrics.memory, "peak RSS is at least RSS");
  }

  // Worker rank 1 runs a task longer than worker-ttl (1s here): it stops
  // heartbeating while worker rank 2 goes on.
  auto stuck = client.submit(weft::SubmitOptions{.worker = 1}, sleep_ms, 6000L);
  check(eventually(client, 20, [](const weft::SchedulerInfo& info) {
          return info.workers.at(1).metrics.executing == 1;
        }), "rank 1 reports the task executing");
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));  // past worker-ttl
  const weft::SchedulerInfo before = client.scheduler_info();
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
  const weft::SchedulerInfo after = client.scheduler_info();
  check(after.workers.at(1).heartbeats == before.workers.at(1).heartbeats, "a hung worker stops heartbeating");
  check(after.workers.at(2).heartbeats > before.workers.at(2).heartbeats, "the other worker goes on");
  // Rank 0 may remove the silent worker meanwhile (the task then fails with
  // KilledWorker): its heartbeats are heard again once the task ends.
  weft::wait(std::vector{stuck});
  const std::uint64_t seen = client.scheduler_info().workers.at(1).heartbeats;
  check(eventually(client, 20,
                   [&](const weft::SchedulerInfo& info) { return info.workers.at(1).heartbeats > seen; }),
        "heartbeats resume once the task finished");
  std::printf("memory-test: heartbeat ok\n");
  return 0;
}

int spill(weft::Client& client) {
  // 48 blocks of 8 MiB (384 MiB) on two workers of 200 MB: beyond the
  // target (0.6), so most of them are on disk while they are held.
  constexpr long kBlocks = 48, kSize = 1l << 20;
  std::vector<weft::Future<std::vector<double>>> blocks;
  for (long i = 0; i < kBlocks; ++i)
    blocks.push_back(client.submit(weft::SubmitOptions{.worker = 1 + static_cast<int>(i % 2)}, block, i, kSize));
  weft::wait(blocks);
  check(eventually(client, 20,
                   [](const weft::SchedulerInfo& info) {
                     for (const auto& [rank, w] : info.workers)
                       if (w.metrics.spilled_count == 0) return false;
                     return true;
                   }),
        "both workers spill");

  // Task inputs: every block read back by a task on its worker.
  std::vector<weft::Future<double>> totals;
  for (const auto& b : blocks) totals.push_back(client.submit(total, b));
  std::vector<double> got = client.gather(totals);
  for (long i = 0; i < kBlocks; ++i)
    check(got[static_cast<std::size_t>(i)] == total(block(i, kSize)), "total of block " + std::to_string(i));

  // Peer fetch: tasks on one worker read blocks the other holds (spilled).
  auto holders = client.who_has(blocks);
  int peer_reads = 0;
  for (long i = 0; i + 1 < kBlocks; i += 2) {
    const auto& b = blocks[static_cast<std::size_t>(i)];
    const int holder = holders.at(b.key().str()).at(0);
    auto f = client.submit(weft::SubmitOptions{.worker = 3 - holder}, dot, b, blocks[static_cast<std::size_t>(i + 1)]);
    check(f.result() == dot(block(i, kSize), block(i + 1, kSize)), "dot of blocks " + std::to_string(i));
    ++peer_reads;
  }
  check(peer_reads == kBlocks / 2, "peer reads");

  // The client's gather: every block back on rank 0, equal to a fresh one.
  for (long i = 0; i < kBlocks; ++i)
    check(blocks[static_cast<std::size_t>(i)].result() == block(i, kSize), "gathered block " + std::to_string(i));
  const weft::SchedulerInfo info = client.scheduler_info();
  for (const auto& [rank, w] : info.workers)
    check(w.metrics.spilled_bytes_total > 0, "rank " + std::to_string(rank) + " spilled");
  std::printf("memory-test: spill ok\n");
  return 0;
}

int pause(weft::Client& client) {
  // 260 MiB held on worker rank 1: past pause (0.8 of 300 MiB).
  auto big = client.submit(weft::SubmitOptions{.worker = 1}, hog, 260L);
  weft::wait(std::vector{big});
  check(eventually(client, 20, [](const weft::SchedulerInfo& info) { return info.workers.at(1).metrics.paused; }),
        "worker rank 1 pauses");
  auto later = client.submit(weft::SubmitOptions{.worker = 1}, inc, 41L);
  check(eventually(client, 20, [](const weft::SchedulerInfo& info) { return info.workers.at(1).metrics.ready == 1; }),
        "the task waits on the paused worker");
  check(later.status() == weft::FutureStatus::pending && client.scheduler_info().workers.at(1).metrics.executing == 0,
        "a paused worker starts no task");
  check(client.submit(weft::SubmitOptions{.worker = 2}, inc, 1L).result() == 2, "the other worker computes");
  big = {};  // frees the 260 MiB: the worker resumes
  check(later.result() == 42, "the task runs once the memory is free");
  check(eventually(client, 20, [](const weft::SchedulerInfo& info) { return !info.workers.at(1).metrics.paused; }),
        "worker rank 1 resumes");
  std::printf("memory-test: pause ok\n");
  return 0;
}

int terminate(weft::Client& client) {
  // Results for the message to name, then a task that grows past 0.95 of
  // 300 MiB on worker rank 1.
  std::vector<weft::Future<std::vector<double>>> held;
  for (long i = 0; i < 3; ++i) held.push_back(client.submit(weft::SubmitOptions{.worker = 1}, block, i, 1L << 18));
  weft::wait(held);
  auto runaway = client.submit(weft::SubmitOptions{.worker = 1}, grow, 400L);
  try {
    runaway.result();
  } catch (const weft::MemoryError& e) {
    check(e.id() == "worker.memory-exceeded", "the error id");
    std::printf("memory-test: caught: %s\n", e.what());
    throw;  // the job ends with its status
  }
  throw std::runtime_error("memory-test: the runaway task was not stopped");
}

}  // namespace

int main(int argc, char** argv) {
  return weft::main(argc, argv, [&](weft::Client& client) {
    const std::string mode = argc > 1 ? argv[1] : "";
    check(client.nworkers() == 2, "memory-test runs on 3 ranks");
    if (mode == "heartbeat") return heartbeat(client);
    if (mode == "spill") return spill(client);
    if (mode == "pause") return pause(client);
    if (mode == "terminate") return terminate(client);
    std::fprintf(stderr, "memory-test: unknown mode '%s'\n", mode.c_str());
    return 2;
  });
}
