// SchedulerState: the distributed scheduler's decisions, driven with events
// and checked by the instructions that come out (no MPI, no threads).
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "../src/dist/scheduler_state.hpp"

using weft::dist::Instruction;
using weft::dist::kAllWorkers;
using weft::dist::kNoTask;
using weft::dist::kNoWorker;
using weft::dist::SchedulerOptions;
using weft::dist::SchedulerState;
using weft::dist::TaskId;
using weft::dist::TaskSpec;
using weft::dist::TaskState;
using weft::dist::TransitionError;
using weft::dist::WorkerId;
using Kind = Instruction::Kind;

namespace {

Instruction assign(TaskId t, WorkerId w) { return {Kind::assign, TaskState::processing, t, w, kNoTask}; }
Instruction free_(TaskId t, WorkerId w) { return {Kind::free, TaskState::released, t, w, kNoTask}; }
Instruction steal(TaskId t, WorkerId w) { return {Kind::steal, TaskState::released, t, w, kNoTask}; }
Instruction forget(TaskId t) { return {Kind::forget, TaskState::released, t, kNoWorker, kNoTask}; }
Instruction in_memory(TaskId t, WorkerId w) { return {Kind::report, TaskState::memory, t, w, kNoTask}; }
Instruction erred(TaskId t, TaskId cause) { return {Kind::report, TaskState::erred, t, kNoWorker, cause}; }
Instruction cancelled(TaskId t) { return {Kind::report, TaskState::forgotten, t, kNoWorker, kNoTask}; }
Instruction acquire(TaskId t, WorkerId w, WorkerId from) {
  return {Kind::acquire, TaskState::released, t, w, kNoTask, from};
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<Instruction> {
  static std::string convert(const Instruction& i) {
    static const char* kinds[] = {"assign", "free", "steal", "report", "forget", "acquire"};
    std::string s = std::string(kinds[static_cast<int>(i.kind)]) + "(" + std::to_string(i.task);
    if (i.worker == kAllWorkers) s += ", all";
    else if (i.worker != kNoWorker) s += ", w" + std::to_string(i.worker);
    if (i.kind == Kind::report) s += std::string(", ") + to_string(i.state);
    if (i.cause != kNoTask) s += ", cause " + std::to_string(i.cause);
    return s + ")";
  }
};
}  // namespace Catch

namespace {

using Instructions = std::vector<Instruction>;

// A SchedulerState with helpers to add tasks and take what it decided.
struct Scheduler {
  explicit Scheduler(SchedulerOptions o = {}, std::vector<std::uint32_t> threads = {}) : s(o) {
    for (std::uint32_t n : threads) s.add_worker(n);
  }
  TaskId add(std::vector<TaskId> inputs, bool wanted = false, std::int32_t priority = 0,
             WorkerId restriction = kNoWorker, bool collective = false) {
    TaskSpec spec;
    spec.inputs = inputs;
    spec.wanted = wanted;
    spec.user_priority = priority;
    spec.restriction = restriction;
    spec.collective = collective;
    return s.add_task(spec);
  }
  Instructions take() {
    Instructions out;
    s.take_instructions(out);
    return out;
  }
  SchedulerState s;
};

SchedulerOptions saturation(std::uint32_t n) {
  SchedulerOptions o;
  o.worker_saturation = n;
  return o;
}

}  // namespace

TEST_CASE("a chain runs on one worker and frees each result after its user", "[scheduler-state]") {
  // A freed result's task is kept (released) while a task that used it lives:
  // the recipe to compute a lost result again.
  Scheduler c({}, {1, 1});
  TaskId a = c.add({});
  TaskId b = c.add({a});
  TaskId d = c.add({b}, true);
  // The root goes to the first worker; its chain follows it at once.
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0), assign(d, 0)});
  CHECK(c.s.processing_on(0) == 3);
  c.s.task_finished(a, 0, 8);
  CHECK(c.take().empty());
  c.s.task_finished(b, 0, 8);
  CHECK(c.take() == Instructions{free_(a, 0)});
  CHECK(c.s.state(a) == TaskState::released);
  c.s.task_finished(d, 0, 16);
  CHECK(c.take() == Instructions{in_memory(d, 0), free_(b, 0)});
  CHECK(c.s.state(d) == TaskState::memory);
  CHECK(c.s.nbytes(d) == 16);
  CHECK(c.s.held_by(0) == std::vector<TaskId>{d});
  c.s.release(d);
  CHECK(c.take() == Instructions{free_(d, 0), forget(d), forget(b), forget(a)});
  CHECK(c.s.live_tasks() == 0);
  CHECK(c.s.processing_on(0) == 0);
}

TEST_CASE("a diamond waits for both branches", "[scheduler-state]") {
  SchedulerOptions o;
  o.co_assign = false;
  Scheduler c(o, {1, 1});
  TaskId a = c.add({});
  TaskId b = c.add({a});
  TaskId d = c.add({a});
  TaskId e = c.add({b, d}, true);
  CHECK(c.take() == Instructions{assign(a, 0)});
  CHECK(c.s.state(e) == TaskState::waiting);
  c.s.task_finished(a, 0, 100);
  CHECK(c.take() == Instructions{assign(b, 0), assign(d, 0)});
  c.s.task_finished(b, 0, 10);
  CHECK(c.take().empty());
  c.s.task_finished(d, 0, 10);
  CHECK(c.take() == Instructions{assign(e, 0), free_(a, 0)});
  c.s.task_finished(e, 0, 1);
  Instructions got = c.take();
  CHECK(got.size() == 3);
  CHECK(got[0] == in_memory(e, 0));
  CHECK(std::count(got.begin(), got.end(), free_(b, 0)) == 1);
  CHECK(std::count(got.begin(), got.end(), free_(d, 0)) == 1);
  CHECK(c.s.live_tasks() == 4);
  c.s.release(e);
  got = c.take();
  CHECK(got.size() == 5);
  for (TaskId t : {a, b, d, e}) CHECK(std::count(got.begin(), got.end(), forget(t)) == 1);
  CHECK(c.s.live_tasks() == 0);
}

namespace {

// A simulated cluster: each worker takes the scheduler's messages in order
// from an inbox, runs tasks whose inputs are done, answers steals and frees
// as src/dist/worker.cpp does. The test drives it step by step and checks,
// as it goes, that no instruction names a forgotten id.
class Cluster {
 public:
  struct Task {  // a logical task: ids are reused, these are not
    std::vector<int> inputs;
    bool wanted = false;
    std::int32_t priority = 0;
    WorkerId restriction = kNoWorker;
    TaskId id = kNoTask;
    int runs = 0;
    bool done = false;     // ran, or erred
    bool failed = false;
    bool reported = false;
    bool released = false;  // the client dropped it, or it was cancelled
    WorkerId ran_on = kNoWorker;
  };

  Cluster(SchedulerOptions o, std::vector<std::uint32_t> threads) : s(o), workers(threads.size()) {
    for (std::uint32_t n : threads) s.add_worker(n);
  }

  int add(std::vector<int> inputs, bool wanted, std::int32_t priority = 0, WorkerId restriction = kNoWorker) {
    Task t;
    t.inputs = std::move(inputs);
    t.wanted = wanted;
    t.priority = priority;
    t.restriction = restriction;
    std::vector<TaskId> ids;
    for (int i : t.inputs) ids.push_back(tasks[static_cast<std::size_t>(i)].id);
    TaskSpec spec;
    spec.inputs = ids;
    spec.wanted = wanted;
    spec.user_priority = priority;
    spec.restriction = restriction;
    t.id = s.add_task(spec);
    tasks.push_back(t);
    int logical = static_cast<int>(tasks.size()) - 1;
    if (logical_of.size() <= t.id) logical_of.resize(t.id + 1, -1);
    REQUIRE(logical_of[t.id] == -1);
    logical_of[t.id] = logical;
    pump();
    return logical;
  }

  // Failed, or waiting for a failed task: never runs.
  bool doomed(int l) const {
    const Task& t = tasks[static_cast<std::size_t>(l)];
    return t.failed || std::any_of(t.inputs.begin(), t.inputs.end(), [this](int i) { return doomed(i); });
  }

  // Takes the scheduler's instructions and delivers them.
  void pump() {
    Instructions got;
    s.take_instructions(got);
    for (const Instruction& i : got) {
      INFO(Catch::StringMaker<Instruction>::convert(i));
      REQUIRE(i.task < logical_of.size());
      int l = logical_of[i.task];
      REQUIRE(l >= 0);  // never an instruction for a forgotten id
      Task& t = tasks[static_cast<std::size_t>(l)];
      switch (i.kind) {
        case Kind::assign:
          REQUIRE(i.worker < workers.size());
          if (t.restriction != kNoWorker) CHECK(i.worker == t.restriction);
          for (TaskId in : s.inputs_of(i.task)) {
            TaskState st = s.state(in);
            REQUIRE((st == TaskState::memory || st == TaskState::processing));
            if (st == TaskState::processing) CHECK(s.worker_of(in) == i.worker);  // co-assigned
            else if (s.worker_of(in) != i.worker) ++cross_inputs;
          }
          for (TaskId in : s.inputs_of(i.task)) {
            if (s.state(in) != TaskState::processing) continue;
            ++coassigned;
            break;
          }
          workers[i.worker].inbox.emplace_back(i, l);
          break;
        case Kind::free:
        case Kind::steal:
          REQUIRE(i.worker < workers.size());
          workers[i.worker].inbox.emplace_back(i, l);
          break;
        case Kind::report:
          if (i.state == TaskState::memory) {
            CHECK(t.done);
            CHECK_FALSE(t.failed);
            t.reported = true;
          } else if (i.state == TaskState::erred) {
            CHECK(doomed(l));
            t.reported = true;
          }
          break;
        case Kind::acquire:
          FAIL("an acquire without replicate or retire_workers");
          break;
        case Kind::forget:
          CHECK(s.state(i.task) == TaskState::forgotten);
          logical_of[i.task] = -1;
          t.id = kNoTask;
          break;
      }
    }
  }

  // The worker takes the next message from its inbox.
  void deliver(WorkerId w) {
    auto [i, l] = workers[w].inbox.front();
    workers[w].inbox.pop_front();
    std::vector<TaskId>& queue = workers[w].queue;
    auto it = std::find(queue.begin(), queue.end(), i.task);
    switch (i.kind) {
      case Kind::assign:
        // An input that was to run here failed before this came: dropped.
        if (!doomed(l)) queue.push_back(i.task);
        break;
      case Kind::free:
        if (it != queue.end()) {  // not started: give it back
          queue.erase(it);
          s.worker_released(i.task, w);
        }
        break;
      case Kind::steal: {
        bool given_up = it != queue.end();
        if (given_up) queue.erase(it);
        s.steal_response(i.task, w, given_up);
        break;
      }
      default: FAIL("a worker got a report or forget");
    }
    pump();
  }

  bool runnable(TaskId id) const {
    const Task& t = tasks[static_cast<std::size_t>(logical_of[id])];
    return std::all_of(t.inputs.begin(), t.inputs.end(),
                       [&](int i) { return tasks[static_cast<std::size_t>(i)].done; });
  }
  // Runs the k-th runnable task of worker w (if any); fails it instead if asked.
  bool run(WorkerId w, std::size_t k, bool fail = false) {
    std::vector<TaskId>& queue = workers[w].queue;
    std::vector<std::size_t> ready;
    for (std::size_t i = 0; i < queue.size(); ++i)
      if (runnable(queue[i])) ready.push_back(i);
    if (ready.empty()) return false;
    std::size_t pos = ready[k % ready.size()];
    TaskId id = queue[pos];
    queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(pos));
    Task& t = tasks[static_cast<std::size_t>(logical_of[id])];
    for (int i : t.inputs) CHECK(tasks[static_cast<std::size_t>(i)].done);
    ++t.runs;
    t.done = true;
    t.ran_on = w;
    if (fail) {
      t.failed = true;
      s.task_erred(id, w);
      // The worker drops, without a word, what waited here for the result.
      std::erase_if(queue, [this](TaskId q) { return doomed(logical_of[q]); });
    } else {
      s.task_finished(id, w, 8 + id % 5);
    }
    pump();
    return true;
  }

  bool busy() const {
    return std::any_of(workers.begin(), workers.end(),
                       [](const Worker& w) { return !w.inbox.empty() || !w.queue.empty(); });
  }
  // The scheduler's count of unanswered tasks is what the workers hold.
  void check_processing() {
    for (WorkerId w = 0; w < workers.size(); ++w) {
      std::size_t owed = workers[w].queue.size();
      for (const auto& [i, l] : workers[w].inbox) owed += i.kind == Kind::assign && !doomed(l);
      CHECK(s.processing_on(w) == owed);
    }
  }

  struct Worker {
    std::deque<std::pair<Instruction, int>> inbox;  // with the logical task
    std::vector<TaskId> queue;  // accepted, not run
  };
  SchedulerState s;
  std::vector<Worker> workers;
  std::vector<Task> tasks;
  std::vector<int> logical_of;  // task id -> logical task, -1 when forgotten
  int cross_inputs = 0;  // inputs in memory on another worker when their user was assigned
  int coassigned = 0;    // tasks assigned before their inputs finished
};

// A binary reduction over `leaves` roots, numbered in plan order (post-order,
// as ExecPlan numbers tasks). Returns the root's logical id.
int add_tree(Cluster& c, int leaves) {
  std::vector<int> level;
  std::vector<std::pair<int, int>> stack;  // (logical task, height)
  for (int i = 0; i < leaves; ++i) {
    stack.emplace_back(c.add({}, false), 0);
    while (stack.size() >= 2 && stack[stack.size() - 1].second == stack[stack.size() - 2].second) {
      auto [right, h] = stack.back();
      stack.pop_back();
      int left = stack.back().first;
      stack.pop_back();
      stack.emplace_back(c.add({left, right}, false), h + 1);
    }
  }
  REQUIRE(stack.size() == 1);
  return stack[0].first;
}

// Runs the cluster until nothing is left: each worker in turn takes its
// messages, then runs its first runnable task.
void run_round_robin(Cluster& c) {
  for (int guard = 0; c.busy(); ++guard) {
    REQUIRE(guard < 1000000);
    bool progress = false;
    for (WorkerId w = 0; w < c.workers.size(); ++w) {
      while (!c.workers[w].inbox.empty()) {
        c.deliver(w);
        progress = true;
      }
      progress |= c.run(w, 0);
    }
    REQUIRE(progress);
  }
}

}  // namespace

TEST_CASE("a tree on 3 workers keeps subtrees on one worker", "[scheduler-state]") {
  for (bool co_assign : {true, false}) {
    INFO((co_assign ? "with" : "without") << " co-assignment");
    SchedulerOptions o = saturation(32);
    o.co_assign = co_assign;
    Cluster c(o, {1, 1, 1});
    int root = add_tree(c, 256);
    c.tasks[static_cast<std::size_t>(root)].wanted = true;
    c.s.want(c.tasks[static_cast<std::size_t>(root)].id);
    c.pump();
    run_round_robin(c);
    CHECK(c.tasks[static_cast<std::size_t>(root)].reported);
    std::vector<int> per_worker(3, 0);
    for (const Cluster::Task& t : c.tasks) {
      CHECK(t.runs == 1);
      ++per_worker[t.ran_on];
    }
    // Every worker took a fair share.
    for (int n : per_worker) CHECK(n > 511 / 6);
    if (co_assign) {
      // A task whose two inputs ran on one worker ran there too.
      for (const Cluster::Task& t : c.tasks) {
        if (t.inputs.size() != 2) continue;
        WorkerId l = c.tasks[static_cast<std::size_t>(t.inputs[0])].ran_on;
        if (l == c.tasks[static_cast<std::size_t>(t.inputs[1])].ran_on) CHECK(t.ran_on == l);
      }
    }
    c.s.release(c.tasks[static_cast<std::size_t>(root)].id);
    c.pump();
    CHECK(c.s.live_tasks() == 0);
    // Roots go out in runs, so subtrees meet on another worker only near
    // the top: few of the 510 inputs move.
    CHECK(c.cross_inputs < 510 / 20);
    // With co-assignment, most of the 255 sums are sent before their inputs
    // are done, with no round trip through the scheduler.
    if (co_assign) CHECK(c.coassigned > 255 * 9 / 10);
    else CHECK(c.coassigned == 0);
  }
}

TEST_CASE("roots are handed out by priority, up to the saturation", "[scheduler-state]") {
  Scheduler c(saturation(4));
  std::vector<TaskId> low, high;
  for (int i = 0; i < 6; ++i) low.push_back(c.add({}, true, 0));
  for (int i = 0; i < 6; ++i) high.push_back(c.add({}, true, 1));
  for (TaskId t : low) CHECK(c.s.state(t) == TaskState::queued);
  c.s.add_worker(1);
  c.s.add_worker(1);
  // Higher priority first, then graph order; each worker gets a run of four.
  CHECK(c.take() == Instructions{assign(high[0], 0), assign(high[1], 0), assign(high[2], 0), assign(high[3], 0),
                                 assign(high[4], 1), assign(high[5], 1), assign(low[0], 1), assign(low[1], 1)});
  CHECK(c.s.processing_on(0) == 4);
  CHECK(c.s.state(low[2]) == TaskState::queued);
  // A worker is topped up when it is down to half its saturation, with a
  // run of consecutive roots.
  c.s.task_finished(high[0], 0, 1);
  CHECK(c.take() == Instructions{in_memory(high[0], 0)});
  c.s.task_finished(high[1], 0, 1);
  CHECK(c.take() == Instructions{in_memory(high[1], 0), assign(low[2], 0), assign(low[3], 0)});
  CHECK(c.s.processing_on(0) == 4);
  c.s.task_finished(high[4], 1, 1);
  c.s.task_finished(high[5], 1, 1);
  CHECK(c.take() == Instructions{in_memory(high[4], 1), in_memory(high[5], 1), assign(low[4], 1), assign(low[5], 1)});
}

TEST_CASE("a ready task goes where most of its input bytes are", "[scheduler-state]") {
  Scheduler c({}, {1, 1, 1});
  TaskId small = c.s.add_data(0, 10);
  TaskId big = c.s.add_data(1, 1000);
  TaskId other = c.s.add_data(2, 600);
  TaskId f = c.add({small, big, other, small});
  CHECK(c.s.worker_of(f) == 1);
  // Equal bytes: the less busy worker.
  TaskId x = c.s.add_data(1, 50);
  TaskId y = c.s.add_data(2, 50);
  TaskId g = c.add({x, y});
  CHECK(c.s.worker_of(g) == 2);
  CHECK(c.take() == Instructions{in_memory(small, 0), in_memory(big, 1), in_memory(other, 2), assign(f, 1),
                                 in_memory(x, 1), in_memory(y, 2), assign(g, 2)});
}

TEST_CASE("a restricted task runs only on its worker", "[scheduler-state]") {
  Scheduler c(saturation(1), {1, 1});
  TaskId a = c.add({});
  TaskId b = c.add({a}, false, 0, 1);  // its input runs on w0: no co-assignment
  TaskId r = c.add({}, false, 0, 1);   // a restricted root skips the queue
  TaskId q = c.add({}, false, 0, 1);
  CHECK(c.take() == Instructions{assign(a, 0), assign(r, 1), assign(q, 1)});
  CHECK(c.s.state(b) == TaskState::waiting);
  c.s.task_finished(a, 0, 1000);
  CHECK(c.take() == Instructions{assign(b, 1)});
  try {
    c.add({}, false, 0, 2);
    FAIL("no error");
  } catch (const TransitionError& e) {
    CHECK(e.id() == "scheduler.unknown-worker");
  }
}

TEST_CASE("an idle worker steals from an overloaded one", "[scheduler-state]") {
  Scheduler c(saturation(1), {1});
  TaskId x = c.s.add_data(0, 1000);
  std::vector<TaskId> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(c.add({x}, true));
  Instructions got = c.take();
  REQUIRE(got.size() == 7);
  for (std::size_t i = 0; i < 6; ++i) CHECK(got[i + 1] == assign(fs[i], 0));
  // w1 joins with nothing to do, w0 has more than twice its saturation: the
  // scheduler asks w0 for its lowest-priority task.
  c.s.add_worker(1);
  CHECK(c.take() == Instructions{steal(fs[5], 0)});
  CHECK(c.s.processing_on(0) == 6);

  SECTION("given up: the task moves to the thief") {
    c.s.steal_response(fs[5], 0, true);
    CHECK(c.take() == Instructions{assign(fs[5], 1)});
    CHECK(c.s.worker_of(fs[5]) == 1);
    CHECK(c.s.processing_on(0) == 5);
    CHECK(c.s.processing_on(1) == 1);
    // The thief is done: it asks again, for the next one.
    c.s.task_finished(fs[5], 1, 4);
    CHECK(c.take() == Instructions{in_memory(fs[5], 1), steal(fs[4], 0)});
    c.s.steal_response(fs[4], 0, true);
    CHECK(c.take() == Instructions{assign(fs[4], 1)});
  }
  SECTION("refused: the task stays") {
    c.s.steal_response(fs[5], 0, false);
    CHECK(c.take().empty());
    CHECK(c.s.worker_of(fs[5]) == 0);
    CHECK(c.s.processing_on(0) == 6);
    c.s.task_finished(fs[5], 0, 4);
    CHECK(c.take() == Instructions{in_memory(fs[5], 0)});
    // An answer nobody asked for.
    try {
      c.s.steal_response(fs[5], 0, false);
      FAIL("no error");
    } catch (const TransitionError& e) {
      CHECK(e.id() == "scheduler.bad-event");
    }
  }
  SECTION("finished before the answer came") {
    c.s.task_finished(fs[5], 0, 4);
    c.s.steal_response(fs[5], 0, false);
    CHECK(c.take() == Instructions{in_memory(fs[5], 0)});
    CHECK(c.s.state(fs[5]) == TaskState::memory);
  }
}

TEST_CASE("a collective task waits for an idle cluster, runs alone, then work resumes", "[scheduler-state]") {
  Scheduler c({}, {1, 1});
  TaskId x = c.s.add_data(1, 100);
  TaskId a = c.add({});
  TaskId b = c.add({x});
  c.take();
  CHECK(c.s.worker_of(a) == 0);
  CHECK(c.s.worker_of(b) == 1);
  TaskId coll = c.add({}, true, 0, kNoWorker, true);
  TaskId r = c.add({}, true);       // a root: stays queued
  TaskId d = c.add({x}, true);      // ready: held
  TaskId e = c.add({coll}, true);   // needs the collective's result
  CHECK(c.take().empty());
  CHECK(c.s.state(r) == TaskState::queued);
  CHECK(c.s.state(d) == TaskState::waiting);
  c.s.task_finished(a, 0, 1);
  CHECK(c.take() == Instructions{free_(a, 0), forget(a)});
  c.s.task_finished(b, 1, 1);
  CHECK(c.take() == Instructions{free_(b, 1), forget(b), assign(coll, kAllWorkers)});
  CHECK(c.s.worker_of(coll) == kAllWorkers);
  c.s.task_finished(coll, 1, 8);
  CHECK(c.take() == Instructions{in_memory(coll, 1), assign(e, 1), assign(d, 1), assign(r, 0)});
  CHECK(c.s.worker_of(coll) == 1);
}

TEST_CASE("an error errs everything that depends on it, naming the cause", "[scheduler-state]") {
  Scheduler c({}, {1, 1});
  TaskId a = c.add({});
  TaskId b = c.add({a});
  TaskId d = c.add({b}, true);
  TaskId e = c.add({a}, true);
  TaskId ok = c.add({}, true);
  c.take();
  CHECK(c.s.worker_of(d) == 0);  // co-assigned with a
  c.s.task_erred(a, 0);
  CHECK(c.take() == Instructions{erred(e, a), erred(d, a)});
  CHECK(c.s.state(b) == TaskState::released);  // d's recipe
  for (TaskId t : {a, d, e}) CHECK(c.s.state(t) == TaskState::erred);
  // The worker dropped the co-assigned tasks itself; only `ok` is left there.
  CHECK(c.s.processing_on(0) == 1);
  // A new task on an erred input errs at once; another reference hears of it.
  TaskId f = c.add({d}, true);
  CHECK(c.take() == Instructions{erred(f, a)});
  c.s.want(d);
  CHECK(c.take() == Instructions{erred(d, a)});
  // The rest of the cluster carries on.
  c.s.task_finished(ok, 0, 1);
  CHECK(c.take() == Instructions{in_memory(ok, 0)});
  // The cause lives as long as a task blames it.
  for (TaskId t : {d, e, f}) c.s.release(t);
  CHECK(c.take() == Instructions{forget(e), forget(f)});
  CHECK(c.s.state(a) == TaskState::erred);
  c.s.release(d);
  CHECK(c.take() == Instructions{forget(d), forget(b), forget(a)});
  CHECK(c.s.live_tasks() == 1);
}

TEST_CASE("released results are freed and their ids reused", "[scheduler-state]") {
  Scheduler c({}, {1});
  TaskId a = c.add({});
  TaskId b = c.add({a}, true);
  c.s.task_finished(a, 0, 1);
  c.s.task_finished(b, 0, 1);
  c.take();
  CHECK(c.s.state(a) == TaskState::released);  // b's recipe
  TaskId x = c.add({});
  c.s.task_finished(x, 0, 1);  // nobody wants it
  CHECK(c.take() == Instructions{assign(x, 0), free_(x, 0), forget(x)});
  TaskId n = c.add({b});
  CHECK(n == x);  // the smallest free id
  CHECK(c.s.inputs_of(n).size() == 1);
  c.s.release(b);  // n still needs it
  CHECK(c.take() == Instructions{assign(n, 0)});
  c.s.task_finished(n, 0, 1);
  CHECK(c.take() == Instructions{free_(n, 0), forget(n), free_(b, 0), forget(b), forget(a)});
  CHECK(c.s.live_tasks() == 0);
  CHECK(c.add({}) == 0);
}

TEST_CASE("a task released while it runs keeps its id until its worker answers", "[scheduler-state]") {
  SchedulerOptions o;
  o.co_assign = false;
  Scheduler c(o, {1});
  TaskId a = c.add({}, true);
  TaskId b = c.add({}, true);
  c.take();
  c.s.release(a);
  c.s.release(b);
  CHECK(c.take() == Instructions{free_(a, 0), free_(b, 0)});
  CHECK(c.s.state(a) == TaskState::released);
  CHECK(c.s.live_tasks() == 2);
  TaskId n = c.add({});  // gets a fresh id, not a's
  CHECK(n == 2);
  c.take();
  // a had started: its result comes, and is freed; b had not.
  c.s.task_finished(a, 0, 1);
  CHECK(c.take() == Instructions{free_(a, 0), forget(a)});
  c.s.worker_released(b, 0);
  CHECK(c.take() == Instructions{forget(b)});
  CHECK(c.s.processing_on(0) == 1);
  try {
    c.s.task_finished(a, 0, 1);
    FAIL("no error");
  } catch (const TransitionError& e) {
    CHECK(e.id() == "scheduler.unknown-task");
  }
}

TEST_CASE("cancel drops a task and its dependents", "[scheduler-state]") {
  Scheduler c({}, {1});
  TaskId a = c.add({});
  TaskId b = c.add({a});
  TaskId d = c.add({b}, true);
  TaskId keep = c.add({a}, true);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0), assign(d, 0), assign(keep, 0)});
  c.s.cancel(b);
  CHECK(c.take() == Instructions{cancelled(d), free_(d, 0), free_(b, 0)});
  CHECK(c.s.state(b) == TaskState::released);
  c.s.release(d);  // a stale release of a cancelled task
  c.s.worker_released(d, 0);
  c.s.worker_released(b, 0);
  CHECK(c.take() == Instructions{forget(d), forget(b)});
  // a is still needed by keep.
  c.s.task_finished(a, 0, 1);
  c.s.task_finished(keep, 0, 1);
  CHECK(c.take() == Instructions{in_memory(keep, 0), free_(a, 0)});
  c.s.cancel(keep);
  CHECK(c.take() == Instructions{cancelled(keep), free_(keep, 0), forget(keep), forget(a)});
  CHECK(c.s.live_tasks() == 0);
}

TEST_CASE("events that cannot happen throw with the task's story", "[scheduler-state]") {
  Scheduler c(saturation(1), {1, 1});
  TaskId a = c.add({}, true);  // on w0
  TaskId q = c.add({});        // on w1
  TaskId r = c.add({});        // queued
  TaskId b = c.add({r});       // waiting
  CHECK(c.s.state(b) == TaskState::waiting);
  auto error = [](auto&& f) -> TransitionError {
    try {
      f();
    } catch (const TransitionError& e) {
      return e;
    }
    FAIL("no TransitionError");
    throw;
  };
  TransitionError e = error([&] { c.s.task_finished(b, 0, 1); });
  CHECK(e.id() == "scheduler.bad-transition");
  CHECK(std::string(e.what()) ==
        "[weft.scheduler.bad-transition] task 3: waiting -> memory is not allowed (task_finished w0); "
        "story: id 3: released -> waiting (add_task)");
  e = error([&] { c.s.task_finished(a, 1, 1); });
  CHECK(e.id() == "scheduler.bad-event");
  CHECK(std::string(e.what()) ==
        "[weft.scheduler.bad-event] task_finished from w1 for task 0, which is processing on w0; story: id 0: "
        "released -> waiting (add_task); waiting -> queued (queue); queued -> processing (queue w0)");
  c.s.task_finished(a, 0, 1);
  e = error([&] { c.s.task_finished(a, 0, 1); });
  CHECK(e.id() == "scheduler.bad-transition");
  CHECK_THAT(e.what(), Catch::Contains("task 0: memory -> memory is not allowed (task_finished w0)"));
  CHECK(error([&] { c.s.task_erred(a, 0); }).id() == "scheduler.bad-transition");
  CHECK(error([&] { c.s.task_finished(9, 0, 1); }).id() == "scheduler.unknown-task");
  CHECK(error([&] { c.s.task_finished(a, 5, 1); }).id() == "scheduler.unknown-worker");
  CHECK(error([&] { c.s.release(q); }).id() == "scheduler.bad-event");
  CHECK(error([&] { c.s.worker_released(q, 1); }).id() == "scheduler.bad-event");
  CHECK(error([&] { c.s.steal_response(q, 1, true); }).id() == "scheduler.bad-event");
  CHECK(error([&] { c.add({42}); }).id() == "scheduler.unknown-task");
  // r started on w0 once a finished there: b followed it.
  CHECK(c.s.story(b) == "id 3: released -> waiting (add_task); waiting -> processing (co-assign w0)");
  CHECK_THROWS_AS(c.s.add_worker(0), weft::ValueError);
}

TEST_CASE("random graphs on simulated workers: each task runs once, after its inputs", "[scheduler-state]") {
  auto seed = static_cast<unsigned>(GENERATE(range(1, 41)));
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  SchedulerOptions o = saturation(static_cast<std::uint32_t>(1 + pick(4)));
  o.co_assign = pick(4) != 0;
  std::vector<std::uint32_t> threads(1 + pick(4));
  for (auto& n : threads) n = static_cast<std::uint32_t>(1 + pick(3));
  Cluster c(o, threads);
  bool with_errors = seed % 4 == 0;
  INFO("seed " << seed << ", " << threads.size() << " workers, saturation " << o.worker_saturation
               << (o.co_assign ? "" : ", no co-assignment") << (with_errors ? ", with errors" : ""));

  // Three submissions; later ones also use results the client still holds.
  const int batches = 3;
  int batch = 0;
  auto submit = [&] {
    auto first = static_cast<int>(c.tasks.size());
    auto n = static_cast<int>(20 + pick(80));
    std::vector<std::vector<int>> inputs(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      std::size_t k = pick(5) == 0 ? 0 : pick(4);
      for (std::size_t j = 0; j < k && i > 0; ++j) {
        int in = first + static_cast<int>(pick(static_cast<std::size_t>(i)));
        if (pick(6) == 0) {  // an older result the client holds
          auto old = static_cast<int>(pick(c.tasks.size() + 1));
          if (old < first) {
            const Cluster::Task& t = c.tasks[static_cast<std::size_t>(old)];
            if (t.wanted && t.id != kNoTask) in = old;
          }
        }
        inputs[static_cast<std::size_t>(i)].push_back(in);
      }
    }
    // What nothing in this submission uses is wanted (the graph's outputs), and some more.
    std::vector<bool> used(static_cast<std::size_t>(n), false);
    for (const auto& ins : inputs)
      for (int in : ins)
        if (in >= first) used[static_cast<std::size_t>(in - first)] = true;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      WorkerId restriction = pick(20) == 0 ? static_cast<WorkerId>(pick(threads.size())) : kNoWorker;
      c.add(inputs[i], !used[i] || pick(5) == 0, static_cast<std::int32_t>(pick(3)) - 1, restriction);
    }
    ++batch;
  };
  submit();
  for (int guard = 0;; ++guard) {
    REQUIRE(guard < 100000);
    c.check_processing();
    std::size_t action = pick(10);
    if (batch < batches && action == 0) {
      submit();
      continue;
    }
    auto w = static_cast<WorkerId>(pick(c.workers.size()));
    if (action < 5 && !c.workers[w].inbox.empty()) {
      c.deliver(w);
    } else if (c.run(w, pick(1000), with_errors && pick(15) == 0)) {
      continue;
    } else if (!c.busy()) {
      if (batch < batches) {
        submit();
        continue;
      }
      break;
    }
  }
  // Each task ran at most once, after its inputs (checked as it ran); none
  // with a failed input ran; every task the client wanted, or that a wanted
  // task needed, ran unless an input failed.
  std::vector<bool> needed(c.tasks.size(), false);
  for (std::size_t l = c.tasks.size(); l-- > 0;) {
    const Cluster::Task& t = c.tasks[l];
    needed[l] = needed[l] || (t.wanted && !c.doomed(static_cast<int>(l)));
    if (needed[l])
      for (int i : t.inputs) needed[static_cast<std::size_t>(i)] = true;
  }
  for (std::size_t l = 0; l < c.tasks.size(); ++l) {
    const Cluster::Task& t = c.tasks[l];
    bool input_failed = std::any_of(t.inputs.begin(), t.inputs.end(), [&](int i) { return c.doomed(i); });
    CHECK(t.runs <= 1);
    if (input_failed) CHECK(t.runs == 0);
    else if (needed[l]) CHECK(t.runs == 1);
    if (!with_errors) CHECK(t.runs == 1);
    if (t.wanted) CHECK(t.reported);
  }
  // The client lets go: everything is forgotten, and every id came back.
  for (Cluster::Task& t : c.tasks) {
    if (!t.wanted) continue;
    c.s.release(t.id);
    c.pump();
  }
  CHECK(c.s.live_tasks() == 0);
  CHECK(std::all_of(c.logical_of.begin(), c.logical_of.end(), [](int l) { return l == -1; }));
  for (WorkerId w = 0; w < c.workers.size(); ++w) CHECK(c.s.processing_on(w) == 0);
}

TEST_CASE("random graphs with cancels and releases before they run", "[scheduler-state]") {
  auto seed = static_cast<unsigned>(GENERATE(range(100, 120)));
  std::mt19937 rng(seed);
  auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  Cluster c(saturation(2), {1, 2, 1});
  INFO("seed " << seed);
  for (int i = 0; i < 150; ++i) {
    std::vector<int> inputs;
    for (std::size_t k = pick(4); k > 0 && i > 0; --k) {
      auto in = static_cast<int>(pick(static_cast<std::size_t>(i)));
      if (c.tasks[static_cast<std::size_t>(in)].id == kNoTask) continue;
      if (c.s.state(c.tasks[static_cast<std::size_t>(in)].id) == TaskState::released) continue;
      inputs.push_back(in);
    }
    c.add(inputs, true);
  }
  for (int guard = 0; c.busy(); ++guard) {
    REQUIRE(guard < 100000);
    c.check_processing();
    auto w = static_cast<WorkerId>(pick(c.workers.size()));
    std::size_t action = pick(20);
    auto l = static_cast<std::size_t>(pick(c.tasks.size()));
    Cluster::Task& t = c.tasks[l];
    bool held = !t.released && t.id != kNoTask;
    if (action == 0 && held) {
      t.released = true;
      c.s.release(t.id);
      c.pump();
    } else if (action == 1 && held) {
      // Cancelling drops the client's references to the task and to what
      // depends on it through tasks the scheduler still knows.
      auto known = [&](std::size_t i) {
        TaskId id = c.tasks[i].id;
        return id != kNoTask && c.s.state(id) != TaskState::released;
      };
      std::vector<bool> gone(c.tasks.size(), false);
      gone[l] = true;
      for (std::size_t i = l + 1; i < c.tasks.size(); ++i)
        for (int in : c.tasks[i].inputs)
          gone[i] = gone[i] || (known(i) && known(static_cast<std::size_t>(in)) && gone[static_cast<std::size_t>(in)]);
      c.s.cancel(t.id);
      for (std::size_t i = 0; i < c.tasks.size(); ++i)
        if (gone[i]) c.tasks[i].released = true;
      c.pump();
    } else if (action < 10 && !c.workers[w].inbox.empty()) {
      c.deliver(w);
    } else {
      c.run(w, pick(1000));
    }
  }
  for (Cluster::Task& t : c.tasks) {
    CHECK(t.runs <= 1);
    if (!t.released) {
      CHECK(t.runs == 1);
      c.s.release(t.id);
      c.pump();
    }
  }
  CHECK(c.s.live_tasks() == 0);
  for (WorkerId w = 0; w < c.workers.size(); ++w) CHECK(c.s.processing_on(w) == 0);
}

// --- resilience: retries, removed workers, lost results -----------------------

namespace {
Instruction waiting_again(TaskId t) { return {Kind::report, TaskState::waiting, t, kNoWorker, kNoTask}; }
}  // namespace

TEST_CASE("a task with retries runs again after an error, with its co-assigned dependents", "[scheduler-state]") {
  SchedulerOptions o;
  o.stealing = false;
  Scheduler c(o, {1, 1});
  TaskSpec spec;
  spec.retries = 2;
  TaskId a = c.s.add_task(spec);
  TaskId b = c.add({a}, true);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0)});
  // First failure: w0 dropped b (it waited for a there); both are assigned again.
  c.s.task_erred(a, 0);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0)});
  CHECK(c.s.processing_on(0) == 2);
  CHECK(c.s.story(a).find("processing -> released (retry w0)") != std::string::npos);
  c.s.task_erred(a, 0);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0)});
  // The retries are spent: the third error is final.
  c.s.task_erred(a, 0);
  CHECK(c.take() == Instructions{erred(b, a)});
  CHECK(c.s.state(b) == TaskState::erred);
  CHECK(c.s.lost(b) == nullptr);  // an error of its own cause, not a lost worker
  CHECK(c.s.processing_on(0) == 0);
}

TEST_CASE("a removed worker's tasks run elsewhere and it gets nothing more", "[scheduler-state]") {
  Scheduler c({}, {1, 1});
  TaskId a = c.add({}, true);
  TaskId b = c.add({a}, true);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0)});
  c.s.remove_worker(0, "stopped heartbeating");
  CHECK(c.s.removed(0));
  CHECK(c.take() == Instructions{assign(a, 1), assign(b, 1)});
  CHECK(c.s.processing_on(0) == 0);
  CHECK(c.s.story(a).find("processing -> released (worker removed w0)") != std::string::npos);
  // New work, roots included, goes to the workers that are left.
  TaskId d = c.add({}, true);
  CHECK(c.take() == Instructions{assign(d, 1)});
  c.s.task_finished(a, 1, 8);
  c.s.task_finished(b, 1, 8);
  c.s.task_finished(d, 1, 8);
  CHECK(c.take() == Instructions{in_memory(a, 1), in_memory(b, 1), in_memory(d, 1)});
  // A task that may run only on the removed worker cannot run at all.
  TaskId r = c.add({}, true, 0, 0);
  CHECK(c.take() == Instructions{erred(r, r)});
  REQUIRE(c.s.lost(r) != nullptr);
  CHECK(c.s.lost(r)->killed);
  CHECK(c.s.lost(r)->workers == std::vector<WorkerId>{0});
  CHECK(c.s.lost(r)->reason == "stopped heartbeating");
  // Removing a worker twice changes nothing.
  c.s.remove_worker(0, "again");
  CHECK(c.take().empty());
}

TEST_CASE("a task whose workers keep being removed errs as killed past allowed-failures", "[scheduler-state]") {
  SchedulerOptions o;
  o.allowed_failures = 1;
  Scheduler c(o, {1, 1, 1});
  TaskId a = c.add({}, true);
  TaskId b = c.add({a}, true);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0)});
  c.s.remove_worker(0, "stopped heartbeating");
  Instructions again = c.take();
  REQUIRE(again.size() == 2);
  WorkerId next = again[0].worker;
  CHECK(again == Instructions{assign(a, next), assign(b, next)});
  c.s.remove_worker(next, "hung");
  // a's second removed worker: killed, and b with it (b was only once on a removed worker).
  CHECK(c.take() == Instructions{erred(a, a), erred(b, a)});
  REQUIRE(c.s.lost(a) != nullptr);
  CHECK(c.s.lost(a)->killed);
  CHECK(c.s.lost(a)->workers == std::vector<WorkerId>{0, next});
  CHECK(c.s.lost(a)->reason == "hung");
  CHECK(c.s.lost(b) == nullptr);  // erred because of a, which reports name
  for (WorkerId w = 0; w < 3; ++w) CHECK(c.s.processing_on(w) == 0);
  c.s.release(a);
  c.s.release(b);
  CHECK(c.take() == Instructions{forget(b), forget(a)});
  CHECK(c.s.live_tasks() == 0);
}

TEST_CASE("results only a removed worker held are computed again from their recipes", "[scheduler-state]") {
  SchedulerOptions o;
  o.stealing = false;
  Scheduler c(o, {1, 1});
  TaskId a = c.add({});
  TaskId b = c.add({a}, true);  // wanted: the client may gather it
  TaskId slow = c.add({}, false, 0, 1);
  TaskId d = c.add({b, slow}, true);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 0), assign(slow, 1)});
  c.s.task_finished(a, 0, 1);
  c.s.task_finished(b, 0, 1);
  // a's result is freed but its recipe kept while b lives; d follows slow to w1.
  CHECK(c.take() == Instructions{in_memory(b, 0), free_(a, 0), assign(d, 1)});
  CHECK(c.s.state(a) == TaskState::released);
  c.s.remove_worker(0, "stopped heartbeating");
  // b waits again (the client hears so), and so does a, its recipe; d, which
  // would fetch b from w0, is recalled from w1.
  CHECK(c.take() == Instructions{waiting_again(b), free_(d, 1), assign(a, 1), assign(b, 1)});
  c.s.worker_released(d, 1);
  CHECK(c.take() == Instructions{assign(d, 1)});  // co-assigned behind b and slow
  c.s.task_finished(a, 1, 1);
  c.s.task_finished(slow, 1, 1);
  c.s.task_finished(b, 1, 1);
  CHECK(c.take() == Instructions{in_memory(b, 1), free_(a, 1)});
  c.s.task_finished(d, 1, 1);
  CHECK(c.take() == Instructions{in_memory(d, 1), free_(slow, 1)});
  c.s.release(b);  // d, alive, keeps it as its recipe
  c.s.release(d);
  CHECK(c.take() == Instructions{free_(b, 1), free_(d, 1), forget(d), forget(slow), forget(b), forget(a)});
  CHECK(c.s.live_tasks() == 0);
}

TEST_CASE("a recalled task keeps its result if it ran, else errs with its lost input", "[scheduler-state]") {
  SchedulerOptions o;
  o.stealing = false;
  o.co_assign = false;
  Scheduler c(o, {1, 1});
  TaskId a = c.add({}, false, 0, 0);
  TaskId b = c.add({a}, true, 0, 1);
  c.s.task_finished(a, 0, 1);
  CHECK(c.take() == Instructions{assign(a, 0), assign(b, 1)});
  c.s.remove_worker(0, "stopped heartbeating");
  // a could run only on w0: it cannot be computed again. b, which reads it
  // from w0, is recalled.
  CHECK(c.take() == Instructions{free_(b, 1)});
  CHECK(c.s.state(a) == TaskState::erred);
  SECTION("b had run") {
    c.s.task_finished(b, 1, 1);
    CHECK(c.take() == Instructions{in_memory(b, 1)});
  }
  SECTION("b had not started") {
    c.s.worker_released(b, 1);
    CHECK(c.take() == Instructions{erred(b, a)});
    REQUIRE(c.s.lost(a) != nullptr);
    CHECK(c.s.lost(a)->killed);
  }
  c.s.release(b);
  c.take();
  CHECK(c.s.live_tasks() == 0);
}

TEST_CASE("scattered data lost with its worker errs what depends on it", "[scheduler-state]") {
  Scheduler c({}, {1, 1});
  TaskId x = c.s.add_data(0, 100, true);
  TaskId e = c.add({x}, true);
  CHECK(c.take() == Instructions{in_memory(x, 0), assign(e, 0)});
  c.s.remove_worker(0, "stopped heartbeating");
  // e was on w0 too: it waits again, then errs with its lost input.
  CHECK(c.take() == Instructions{erred(x, x), erred(e, x)});
  REQUIRE(c.s.lost(x) != nullptr);
  CHECK_FALSE(c.s.lost(x)->killed);
  CHECK(c.s.lost(x)->workers == std::vector<WorkerId>{0});
  CHECK(c.s.processing_on(0) == 0);
  try {
    c.s.add_data(0, 1, true);
    FAIL("no error");
  } catch (const TransitionError& err) {
    CHECK(err.id() == "scheduler.removed-worker");
  }
}

TEST_CASE("restart cancels every task, frees results, and the cluster takes new work", "[scheduler-state]") {
  Scheduler sch(saturation(1), {1, 1});
  TaskId data = sch.s.add_data(1, 10);
  TaskId root = sch.add({}, true);
  TaskId child = sch.add({root, data}, true);
  sch.take();
  WorkerId ran_on = sch.s.worker_of(root);
  sch.s.restart();
  Instructions out = sch.take();
  for (TaskId t : {data, root, child}) CHECK(std::count(out.begin(), out.end(), cancelled(t)) == 1);
  CHECK(std::count(out.begin(), out.end(), free_(data, 1)) == 1);
  CHECK(std::count(out.begin(), out.end(), free_(root, ran_on)) == 1);
  // The running root and the child co-assigned behind it keep their ids
  // until their worker answers the frees (in the order they were sent).
  CHECK(sch.s.state(root) == TaskState::released);
  CHECK(sch.s.state(child) == TaskState::released);
  sch.s.worker_released(child, ran_on);
  sch.s.worker_released(root, ran_on);
  for (TaskId t : {data, root, child}) CHECK(sch.s.state(t) == TaskState::forgotten);
  sch.take();
  TaskId again = sch.add({}, true);
  CHECK(sch.s.state(again) == TaskState::processing);
  sch.s.task_finished(again, sch.s.worker_of(again), 8);
  CHECK(sch.s.state(again) == TaskState::memory);
}

TEST_CASE("replicate copies a result to the emptiest workers and frees extra copies", "[scheduler-state]") {
  Scheduler sch({}, {1, 1, 1});
  TaskId big = sch.s.add_data(0, 100);
  sch.s.add_data(1, 50);
  sch.take();
  sch.s.replicate(big, 2);
  CHECK(sch.take() == Instructions{acquire(big, 2, 0)});
  CHECK(sch.s.moves_pending() == 1);
  sch.s.replicate(big, 2);  // the copy on its way counts
  CHECK(sch.take().empty());
  sch.s.task_acquired(big, 2, true);
  CHECK(sch.s.moves_pending() == 0);
  CHECK(sch.s.holders(big) == std::vector<WorkerId>{0, 2});
  CHECK(sch.s.held_by(2) == std::vector<TaskId>{big});
  sch.s.replicate(big, 3);
  CHECK(sch.take() == Instructions{acquire(big, 1, 0)});
  sch.s.task_acquired(big, 1, true);
  sch.s.replicate(big, 1);
  Instructions out = sch.take();
  CHECK(out.size() == 2);
  CHECK(sch.s.holders(big) == std::vector<WorkerId>{0});
  sch.s.replicate(big, 2);
  sch.s.task_acquired(big, sch.take().at(0).worker, true);
  sch.s.release(big);  // every holder frees it
  out = sch.take();
  CHECK(std::count_if(out.begin(), out.end(), [&](const Instruction& i) { return i.kind == Kind::free; }) == 2);
  CHECK(sch.s.state(big) == TaskState::forgotten);
  CHECK_THROWS_AS(sch.s.task_acquired(big, 1, true), TransitionError);
}

TEST_CASE("an acquire answered after its task was released frees the copy, and keeps the id until then",
          "[scheduler-state]") {
  Scheduler sch({}, {1, 1});
  TaskId t = sch.s.add_data(0, 10);
  sch.take();
  sch.s.replicate(t, 2);
  CHECK(sch.take() == Instructions{acquire(t, 1, 0)});
  sch.s.release(t);
  CHECK(sch.take() == Instructions{free_(t, 0)});
  CHECK(sch.s.state(t) == TaskState::released);
  sch.s.task_acquired(t, 1, true);
  CHECK(sch.take() == Instructions{free_(t, 1), forget(t)});
}

TEST_CASE("retire_workers moves results held only there, then the workers get no work", "[scheduler-state]") {
  Scheduler sch(saturation(1), {1, 1, 1});
  TaskId only = sch.s.add_data(0, 40);
  TaskId shared = sch.s.add_data(0, 10);
  TaskId elsewhere = sch.s.add_data(1, 30);
  sch.s.replicate(shared, 2);
  sch.s.task_acquired(shared, sch.take().back().worker, true);
  const WorkerId retire[] = {0};
  sch.s.retire_workers(retire);
  CHECK(sch.s.retiring(0));
  // Worker 2 holds 10 bytes, worker 1 holds 30: the result goes to 2.
  CHECK(sch.take() == Instructions{acquire(only, 2, 0)});
  std::vector<TaskId> roots;
  for (int i = 0; i < 4; ++i) roots.push_back(sch.add({}, true));
  sch.add({only, shared}, true);
  for (const Instruction& i : sch.take()) CHECK(i.worker != 0);
  sch.s.task_acquired(only, 2, true);
  CHECK(sch.s.moves_pending() == 0);
  sch.s.remove_worker(0, "retired");
  Instructions out = sch.take();
  CHECK(std::none_of(out.begin(), out.end(), [](const Instruction& i) { return i.kind == Kind::report; }));
  for (TaskId t : {only, shared, elsewhere}) {
    CHECK(sch.s.state(t) == TaskState::memory);
    std::vector<WorkerId> h = sch.s.holders(t);
    CHECK(std::find(h.begin(), h.end(), 0u) == h.end());
  }
  CHECK(sch.s.held_by(2) == std::vector<TaskId>{only, shared});
}

TEST_CASE("rebalance sends the largest results above the mean to the emptiest workers, then the source frees them",
          "[scheduler-state]") {
  Scheduler sch({}, {1, 1, 1});
  // Worker 0 holds 100 bytes, worker 1 20, worker 2 none: the mean is 40.
  TaskId t40 = sch.s.add_data(0, 40), t30 = sch.s.add_data(0, 30), t20 = sch.s.add_data(0, 20);
  TaskId t10 = sch.s.add_data(0, 10), other = sch.s.add_data(1, 20);
  sch.take();
  std::vector<TaskId> all{t10, t20, t30, t40, other};
  sch.s.rebalance(all);
  // The largest to the emptiest (2, now at the mean), the next to 1; then 0 is below the mean.
  CHECK(sch.take() == Instructions{acquire(t40, 2, 0), acquire(t30, 1, 0)});
  CHECK(sch.s.moves_pending() == 2);
  sch.s.rebalance(all);  // results on their way are not moved again
  CHECK(sch.take().empty());
  sch.s.task_acquired(t40, 2, true);
  CHECK(sch.take() == Instructions{free_(t40, 0)});
  sch.s.task_acquired(t30, 1, true);
  CHECK(sch.take() == Instructions{free_(t30, 0)});
  CHECK(sch.s.moves_pending() == 0);
  CHECK(sch.s.holders(t40) == std::vector<WorkerId>{2});
  CHECK(sch.s.holders(t30) == std::vector<WorkerId>{1});
  CHECK(sch.s.held_by(0) == std::vector<TaskId>{t20, t10});
  for (TaskId t : all) CHECK(sch.s.state(t) == TaskState::memory);
  // 30 / 50 / 40: no move left evens two workers out.
  sch.s.rebalance(all);
  CHECK(sch.take().empty());
}

TEST_CASE("rebalance moves only the results asked for, and none while a running task reads it", "[scheduler-state]") {
  Scheduler sch({}, {1, 1});
  TaskId read = sch.s.add_data(0, 100);
  TaskId moved = sch.s.add_data(0, 60);
  TaskId kept = sch.s.add_data(0, 50);
  TaskId reader = sch.add({read});
  CHECK(sch.s.state(reader) == TaskState::processing);
  sch.take();
  std::vector<TaskId> asked{read, moved};
  sch.s.rebalance(asked);
  CHECK(sch.take() == Instructions{acquire(moved, 1, 0)});
  // A task that starts reading the result on the source before the copy
  // arrives keeps it there: both hold it.
  TaskId late = sch.add({moved}, true);
  CHECK(sch.s.worker_of(late) == 0);
  sch.take();
  sch.s.task_acquired(moved, 1, true);
  CHECK(sch.take().empty());
  CHECK(sch.s.holders(moved) == std::vector<WorkerId>{0, 1});
  CHECK(sch.s.holders(kept) == std::vector<WorkerId>{0});
}

TEST_CASE("a copy whose target is removed goes to another worker; a rebalance move is dropped", "[scheduler-state]") {
  Scheduler sch({}, {1, 1, 1, 1});
  TaskId copied = sch.s.add_data(0, 10);
  sch.take();
  sch.s.replicate(copied, 2);
  Instructions out = sch.take();
  REQUIRE(out.size() == 1);
  WorkerId first = out[0].worker;
  sch.s.remove_worker(first, "gone");
  out = sch.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == Kind::acquire);
  CHECK(out[0].worker != first);
  CHECK(out[0].source == 0);
  CHECK(sch.s.moves_pending() == 1);
  sch.s.task_acquired(copied, out[0].worker, true);
  CHECK(sch.s.holders(copied).size() == 2);

  // Retiring worker 0: its only result goes to the emptiest, then elsewhere.
  TaskId only = sch.s.add_data(0, 30);
  sch.take();
  const WorkerId retire[] = {0};
  sch.s.retire_workers(retire);
  out = sch.take();
  REQUIRE(out.size() == 1);
  sch.s.remove_worker(out[0].worker, "gone too");
  out = sch.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0] == acquire(only, out[0].worker, 0));
  sch.s.task_acquired(only, out[0].worker, true);
  CHECK(sch.s.moves_pending() == 0);

  // A rebalance move: the source keeps the result.
  Scheduler reb({}, {1, 1, 1});
  TaskId big = reb.s.add_data(0, 60);
  std::vector<TaskId> tasks{big, reb.s.add_data(0, 40)};
  reb.take();
  reb.s.rebalance(tasks);
  out = reb.take();
  REQUIRE(out.size() == 1);
  CHECK(out[0] == acquire(big, 1, 0));
  reb.s.remove_worker(out[0].worker, "gone");
  CHECK(reb.take().empty());
  CHECK(reb.s.moves_pending() == 0);
  CHECK(reb.s.holders(big) == std::vector<WorkerId>{0});
}

TEST_CASE("a copy whose source is removed comes from another holder, or ends and the result is computed again",
          "[scheduler-state]") {
  Scheduler sch({}, {1, 1, 1});
  TaskId root = sch.add({}, true);
  WorkerId ran = sch.s.worker_of(root);
  sch.s.task_finished(root, ran, 10);
  sch.take();
  sch.s.replicate(root, 2);
  WorkerId second = sch.take().at(0).worker;
  sch.s.task_acquired(root, second, true);
  sch.s.replicate(root, 3);
  Instructions out = sch.take();
  REQUIRE(out.size() == 1);
  WorkerId third = out[0].worker;
  CHECK(out[0] == acquire(root, third, ran));
  sch.s.remove_worker(ran, "gone");
  // The target may never hear from the removed holder: it asks the other.
  CHECK(sch.take() == Instructions{acquire(root, third, second)});
  CHECK(sch.s.moves_pending() == 1);
  CHECK(sch.s.state(root) == TaskState::memory);
  sch.s.task_acquired(root, third, true);
  CHECK(sch.s.moves_pending() == 0);
  CHECK(sch.s.holders(root) == std::vector<WorkerId>{second, third});

  // With no other holder the move ends at once; the result is computed again
  // and a copy that still arrives is freed.
  Scheduler one({}, {1, 1, 1});
  TaskId lone = one.add({}, true);
  WorkerId home = one.s.worker_of(lone);
  one.s.task_finished(lone, home, 10);
  one.take();
  one.s.replicate(lone, 2);
  WorkerId target = one.take().at(0).worker;
  one.s.remove_worker(home, "gone");
  CHECK(one.s.moves_pending() == 0);
  CHECK(one.s.state(lone) == TaskState::processing);
  WorkerId rerun = one.s.worker_of(lone);
  CHECK(rerun != home);
  one.take();
  one.s.task_acquired(lone, target, true);
  out = one.take();
  CHECK(out == (rerun == target ? Instructions{} : Instructions{free_(lone, target)}));
  one.s.task_finished(lone, rerun, 10);
  CHECK(one.s.holders(lone) == std::vector<WorkerId>{rerun});
  CHECK_THROWS_AS(one.s.task_acquired(lone, target, true), TransitionError);
}
