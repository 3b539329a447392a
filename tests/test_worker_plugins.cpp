// dist::WorkerPlugins without MPI: registration, replacement, teardown
// order, the recorded transitions a worker's comm thread delivers, and a
// local computation's transitions. tests/mpi/plugins.sh runs them on ranks.
#include <catch2/catch.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/dist/worker_plugins.hpp"
#include "weft/compute.hpp"
#include "weft/delayed.hpp"
#include "weft/error.hpp"
#include "weft/scheduler.hpp"

namespace {

using weft::WorkerTaskState;
using weft::dist::WorkerPlugins;

// What the plugins of one test did, in order.
struct Journal {
  std::mutex mutex;
  std::vector<std::string> lines;
  void add(std::string line) {
    std::lock_guard lock(mutex);
    lines.push_back(std::move(line));
  }
};

struct Noting : weft::WorkerPlugin {
  Noting(Journal& journal, std::string tag) : journal(journal), tag(std::move(tag)) {}
  void setup(const weft::WorkerContext& w) override { journal.add(tag + " setup on " + w.host); }
  void teardown() override { journal.add(tag + " teardown"); }
  void transition(const weft::Key& key, WorkerTaskState start, WorkerTaskState finish) override {
    journal.add(tag + " " + key.str() + " " + weft::to_string(start) + ">" + weft::to_string(finish));
  }
  Journal& journal;
  std::string tag;
};

// Throws in setup, or else in every transition.
struct Throwing : weft::WorkerPlugin {
  explicit Throwing(bool in_setup) : in_setup(in_setup) {}
  void setup(const weft::WorkerContext&) override {
    if (in_setup) throw std::runtime_error("no setup here");
  }
  void transition(const weft::Key&, WorkerTaskState, WorkerTaskState) override { throw std::runtime_error("hook"); }
  bool in_setup;
};

weft::WorkerContext context() {
  weft::WorkerContext c;
  c.rank = 3;
  c.host = "node7";
  return c;
}

// The factory task's result, as install expects it.
std::function<weft::Value()> make(std::shared_ptr<weft::WorkerPlugin> plugin) {
  return [plugin] { return weft::Value::of(plugin); };
}

}  // namespace

TEST_CASE("worker plugins are set up, replaced by name and torn down in reverse order", "[plugins]") {
  Journal journal;
  WorkerPlugins plugins(context(), false);
  plugins.install("a", make(std::make_shared<Noting>(journal, "a1")));
  plugins.install("b", make(std::make_shared<Noting>(journal, "b")));
  plugins.install("a", make(std::make_shared<Noting>(journal, "a2")));  // replaces a1: now registered last
  CHECK(std::dynamic_pointer_cast<Noting>(plugins.find("a"))->tag == "a2");
  CHECK(plugins.find("c") == nullptr);
  CHECK_FALSE(plugins.remove("c"));
  plugins.teardown_all();
  CHECK(plugins.find("a") == nullptr);
  plugins.teardown_all();  // nothing left to tear down
  CHECK(journal.lines == std::vector<std::string>{"a1 setup on node7", "b setup on node7", "a2 setup on node7",
                                                  "a1 teardown", "a2 teardown", "b teardown"});
}

TEST_CASE("a plugin whose making or setup throws is not kept", "[plugins]") {
  Journal journal;
  WorkerPlugins plugins(context(), false);
  plugins.install("p", make(std::make_shared<Noting>(journal, "kept")));
  try {
    plugins.install("p", make(std::make_shared<Throwing>(true)));
    FAIL("install did not throw");
  } catch (const weft::RuntimeError& e) {
    CHECK(e.id() == "runtime.plugin-setup-failed");
    CHECK(e.text() == "worker plugin 'p' failed its setup on worker rank 3 (node7): std::runtime_error: no setup here");
  }
  try {
    plugins.install("q", [] () -> weft::Value { throw std::length_error("too long"); });
    FAIL("install did not throw");
  } catch (const weft::RuntimeError& e) {
    CHECK(e.text() == "worker plugin 'q' failed its setup on worker rank 3 (node7): std::length_error: too long");
  }
  // The earlier plugin of that name stays, untouched.
  CHECK(std::dynamic_pointer_cast<Noting>(plugins.find("p"))->tag == "kept");
  CHECK(plugins.find("q") == nullptr);
  CHECK(plugins.remove("p"));
  CHECK(journal.lines == std::vector<std::string>{"kept setup on node7", "kept teardown"});
}

TEST_CASE("recorded transitions reach the hooks in order when delivered", "[plugins]") {
  Journal journal;
  WorkerPlugins plugins(context(), false);
  const weft::Key x("x"), y("y");
  // Nothing is recorded while no plugin is registered.
  plugins.record(1, x, WorkerTaskState::released, WorkerTaskState::waiting);
  CHECK_FALSE(plugins.deliver());

  plugins.install("n", make(std::make_shared<Noting>(journal, "n")));
  plugins.install("t", make(std::make_shared<Throwing>(false)));  // a hook that throws is reported; the others go on
  plugins.record(1, x, WorkerTaskState::ready, WorkerTaskState::executing);
  plugins.record(1, x, WorkerTaskState::executing, WorkerTaskState::memory);
  plugins.record(2, y, WorkerTaskState::executing, WorkerTaskState::error);
  plugins.record_released(2);  // y never reached memory here: nothing
  plugins.record_released(1);
  plugins.record_released(1);  // freed once only
  CHECK(journal.lines.size() == 1);  // the setup: no transition before delivery
  CHECK(plugins.deliver());
  CHECK_FALSE(plugins.deliver());
  CHECK(journal.lines == std::vector<std::string>{"n setup on node7", "n x ready>executing", "n x executing>memory",
                                                  "n y executing>error", "n x memory>released"});
}

TEST_CASE("the local pool's tasks are transitions while a local plugin is registered", "[plugins]") {
  Journal journal;
  WorkerPlugins plugins(context(), true);
  auto add = [](long a, long b) { return a + b; };
  auto task = weft::delayed(add, {.name = "add"})(1L, 2L);
  plugins.install("n", make(std::make_shared<Noting>(journal, "n")));
  CHECK(task.compute(weft::scheduler::threads) == 3);
  const std::string key = task.key().str();
  CHECK(journal.lines == std::vector<std::string>{"n setup on node7", "n " + key + " released>waiting",
                                                  "n " + key + " waiting>ready", "n " + key + " ready>executing",
                                                  "n " + key + " executing>memory"});
  plugins.teardown_all();
  // Torn down: later computations are not heard.
  CHECK(weft::delayed(add)(3L, 4L).compute(weft::scheduler::threads) == 7);
  CHECK(journal.lines.size() == 6);
  CHECK(journal.lines.back() == "n teardown");
}
