// Worker plugins (weft/worker_plugin.hpp): Catch2 cases run by the client
// inside weft::main. Run by tests/mpi/plugins.sh without a launcher (the
// process's pool is the one worker, rank 0) and on 3 ranks with a --preload.
// Plugins record what they see in per-process logs that Client::run reads
// back; teardowns write files into $PLUGINS_TEST_DIR, which the script
// checks after the job ended.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "weft/weft.hpp"

namespace {

using weft::WorkerTaskState;
using weft::mpi_test::client;
bool distributed() { return client().nworkers() > 0; }

std::string hostname() {
  char host[HOST_NAME_MAX + 1] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// What happened to plugins in this process, in order ("setup first", ...).
std::mutex events_mutex;
std::vector<std::string> events;
void note(const std::string& event) {
  std::lock_guard lock(events_mutex);
  events.push_back(event);
}
std::string events_here() {
  std::lock_guard lock(events_mutex);
  std::string out;
  for (const std::string& e : events) out += e + ";";
  return out;
}

// Remembers its setup's context and notes setup and teardown under its tag.
struct Recorder : weft::WorkerPlugin {
  explicit Recorder(std::string tag) : tag(std::move(tag)) {}
  void setup(const weft::WorkerContext& w) override {
    context = w;
    note("setup " + tag);
  }
  void teardown() override { note("teardown " + tag); }
  std::string tag;
  weft::WorkerContext context;
};

// Every transition of every key, in the order the hooks were called.
struct TransitionLog : weft::WorkerPlugin {
  void transition(const weft::Key& key, WorkerTaskState start, WorkerTaskState finish) override {
    std::lock_guard lock(mutex);
    (by_key[key.str()] += weft::to_string(start)) += std::string(">") + weft::to_string(finish) + " ";
  }
  std::mutex mutex;
  std::map<std::string, std::string> by_key;
};

// Writes <dir>/teardown-<rank> with the tasks it saw finish, at teardown.
struct TeardownFile : weft::WorkerPlugin {
  explicit TeardownFile(std::string dir) : dir(std::move(dir)) {}
  void setup(const weft::WorkerContext& w) override { rank = w.rank; }
  void transition(const weft::Key&, WorkerTaskState, WorkerTaskState finish) override {
    if (finish == WorkerTaskState::memory) ++finished;
  }
  void teardown() override {
    std::ofstream(dir + "/teardown-" + std::to_string(rank)) << "finished " << finished.load() << "\n";
  }
  std::string dir;
  int rank = -1;
  std::atomic<long> finished{0};
};

// Its setup throws on worker rank `fail_on` (-1: its constructor throws everywhere).
struct Refusing : weft::WorkerPlugin {
  explicit Refusing(int fail_on) : fail_on(fail_on) {
    if (fail_on < 0) throw std::invalid_argument("no Refusing today");
  }
  void setup(const weft::WorkerContext& w) override {
    if (w.rank == fail_on) throw std::runtime_error("setup refused on rank " + std::to_string(w.rank));
  }
  int fail_on;
};

long inc(long x) { return x + 1; }
long total(const std::vector<long>& xs) {
  long s = 0;
  for (long x : xs) s += x;
  return s;
}

// The worker ranks Client::run reaches: 1..n, or 0 without workers.
std::vector<int> worker_ranks() {
  std::vector<int> ranks;
  for (int r = 1; r <= client().nworkers(); ++r) ranks.push_back(r);
  if (ranks.empty()) ranks.push_back(0);
  return ranks;
}

weft::Error error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const weft::Error& e) {
    return e;
  }
  FAIL("no weft::Error was thrown");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("setup runs once per worker with its context", "[plugins]") {
  client().register_worker_plugin<Recorder>("recorder", std::string("ctx"));
  auto seen = client().run([] {
    auto p = weft::worker_plugin<Recorder>("recorder");
    const weft::WorkerContext& c = p->context;
    return std::to_string(weft::rank()) + " " + std::to_string(c.rank) + " " + c.host + " " + c.name + " " +
           std::to_string(c.nthreads) + " " + events_here();
  });
  const std::vector<int> ranks = worker_ranks();
  REQUIRE(seen.size() == ranks.size());
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    const std::string r = std::to_string(ranks[i]);
    // Run by the script with --nthreads 2 on worker ranks; the pool's size locally.
    const std::string nthreads = distributed() ? "2" : std::to_string(weft::worker_plugin<Recorder>("recorder")->context.nthreads);
    // Worker names are their index (no --name given); the local worker is index 0.
    const std::string name = std::to_string(distributed() ? ranks[i] - 1 : 0);
    CHECK(seen[i] == r + " " + r + " " + hostname() + " " + name + " " + nthreads + " setup ctx;");
  }
  client().unregister_worker_plugin("recorder");
}

TEST_CASE("transition hooks see each task's transitions in order", "[plugins]") {
  client().register_worker_plugin<TransitionLog>("log");
  std::vector<std::string> inc_keys;
  std::string total_key;
  {
    std::vector<long> xs(24);
    for (long i = 0; i < 24; ++i) xs[static_cast<std::size_t>(i)] = i;
    auto incs = client().map(inc, xs);
    auto sum = client().submit(total, incs);
    CHECK(sum.result() == 24 * 25 / 2);
    for (const auto& f : incs) inc_keys.push_back(f.key().str());
    total_key = sum.key().str();
  }  // the futures go: their results are freed on the workers
  auto logs = client().run([] {
    auto log = weft::worker_plugin<TransitionLog>("log");
    std::lock_guard lock(log->mutex);
    std::vector<std::string> out;
    for (const auto& [key, seq] : log->by_key) out.push_back(key + "=" + seq);
    return out;
  });
  // Per key: the worker that ran it saw the whole life (a worker it was
  // stolen from saw it leave before it ran).
  std::map<std::string, std::vector<std::string>> sequences;
  for (const auto& worker : logs)
    for (const std::string& entry : worker) {
      const std::size_t eq = entry.find('=');
      sequences[entry.substr(0, eq)].push_back(entry.substr(eq + 1));
    }
  const std::string ran = "released>waiting waiting>ready ready>executing executing>memory ";
  // Locally the pool frees results inside its computation, unseen.
  const std::string life = distributed() ? ran + "memory>released " : ran;
  std::vector<std::string> keys = inc_keys;
  keys.push_back(total_key);
  for (const std::string& key : keys) {
    INFO("key " << key);
    REQUIRE(sequences.contains(key));
    int full = 0;
    for (const std::string& seq : sequences[key]) {
      CAPTURE(seq);
      if (seq == life) ++full;
      else CHECK((seq == "released>waiting waiting>ready ready>released " || seq == "released>waiting waiting>released "));
    }
    CHECK(full == 1);
  }
  CHECK(sequences.size() == keys.size());
  client().unregister_worker_plugin("log");
}

TEST_CASE("a plugin registered again under its name replaces the old one", "[plugins]") {
  client().register_worker_plugin<Recorder>("gen", std::string("first"));
  client().register_worker_plugin<Recorder>("gen", std::string("second"));
  auto seen = client().run([] { return weft::worker_plugin<Recorder>("gen")->tag + " " + events_here(); });
  for (const std::string& s : seen) {
    CHECK(s.starts_with("second "));
    CHECK(s.ends_with("setup first;setup second;teardown first;"));
  }
  client().unregister_worker_plugin("gen");
  seen = client().run([] { return events_here(); });
  for (const std::string& s : seen) CHECK(s.ends_with("setup first;setup second;teardown first;teardown second;"));

  weft::Error e = error_of([] { client().unregister_worker_plugin("gen"); });
  CHECK(e.id() == "value.no-plugin");
  CHECK(e.text() == "no worker plugin named 'gen' is registered");
  // A task looking for it gets the same error.
  e = error_of([] { client().run([] { return weft::worker_plugin<Recorder>("gen")->tag; }); });
  CHECK(std::string(e.what()).find("[weft.value.no-plugin] no worker plugin named 'gen' is registered on this worker") !=
        std::string::npos);
}

TEST_CASE("a plugin whose setup throws fails the registration with the reason", "[plugins]") {
  const int last = worker_ranks().back();
  weft::Error e = error_of([&] { client().register_worker_plugin<Refusing>("refusing", last); });
  CHECK(e.id() == "runtime.plugin-setup-failed");
  const std::string where = distributed() ? "worker rank " + std::to_string(last) : std::string("the local worker");
  CHECK(e.text() == "worker plugin 'refusing' failed its setup on " + where + " (" + hostname() +
                        "): std::runtime_error: setup refused on rank " + std::to_string(last));
  // The other workers kept it; the refusing one has none.
  auto kept = client().run([] {
    try {
      return weft::worker_plugin<Refusing>("refusing")->fail_on >= 0;
    } catch (const weft::ValueError&) {
      return false;
    }
  });
  for (std::size_t i = 0; i < kept.size(); ++i) CHECK(kept[i] == (worker_ranks()[i] != last));
  if (distributed() && client().nworkers() > 1) client().unregister_worker_plugin("refusing");

  // A constructor that throws reads the same, on every worker.
  e = error_of([] { client().register_worker_plugin<Refusing>("refusing", -1); });
  CHECK(e.id() == "runtime.plugin-setup-failed");
  CHECK(e.text().find("): std::invalid_argument: no Refusing today") != std::string::npos);
  if (distributed() && client().nworkers() > 1)
    CHECK(e.text().ends_with(" (and on " + std::to_string(client().nworkers() - 1) + " more of the " +
                             std::to_string(client().nworkers()) + " workers)"));
}

TEST_CASE("the wrong plugin type is refused", "[plugins]") {
  client().register_worker_plugin<Recorder>("typed", std::string("t"));
  weft::Error e = error_of([] { client().run([] { return weft::worker_plugin<TransitionLog>("typed")->by_key.size(); }); });
  CHECK(std::string(e.what()).find("[weft.type.plugin-type]") != std::string::npos);
  client().unregister_worker_plugin("typed");
}

// Registered last and left registered: its teardown runs when the job stops
// (the script checks the files).
TEST_CASE("teardown runs when the workers stop", "[plugins]") {
  const char* dir = std::getenv("PLUGINS_TEST_DIR");
  REQUIRE(dir);
  client().register_worker_plugin<TeardownFile>("teardown-file", std::string(dir));
  // Inputs no earlier case used: inc(1) and the like may still be live
  // futures from there, which would run no task here (seen in CI: 0 finished).
  auto xs = client().map(inc, std::vector<long>{101, 102, 103, 104, 105, 106});
  CHECK(client().gather(xs) == std::vector<long>{102, 103, 104, 105, 106, 107});
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "plugins-test"); }
