// weft-bench scheduler-sim: SchedulerState alone, at scale, with simulated
// workers (docs/architecture.md, "Scheduler state machine").
//
//   weft-bench scheduler-sim [--workers N] [--tasks M] [--shape tree|map|random]
//                            [--threads T] [--batch B] [--saturation S]
//
// The graph is added in one submission, in plan order (ids follow it), with
// its outputs wanted. Each worker runs what it was assigned in order and
// answers in messages of up to B done's, as a worker's comm thread batches
// them; the scheduler's instructions are taken after each message. Steals
// are answered at the next message (given up if not started). The client
// releases each output when it is reported. "correct": every task ran once,
// after its inputs, and all ids were forgotten at the end.
//
// The time covers adding the graph, every event and the simulated workers'
// own bookkeeping (a few array accesses per task). bytes_per_task is the
// scheduler's own tables (memory_bytes(), at its largest) per task;
// rss_bytes_per_task is the growth of peak RSS per task, the simulation's
// graph and queues included.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../src/dist/scheduler_state.hpp"
#include "options.hpp"

namespace weft_bench {

namespace {

using weft::dist::Instruction;
using weft::dist::TaskId;
using weft::dist::TaskState;
using weft::dist::WorkerId;

// The graph, as CSR inputs, in plan order.
struct Graph {
  std::vector<std::uint32_t> offsets{0};
  std::vector<TaskId> inputs;
  std::vector<std::uint8_t> wanted;
  std::size_t size() const { return wanted.size(); }
  void add(std::initializer_list<TaskId> in) {
    inputs.insert(inputs.end(), in);
    offsets.push_back(static_cast<std::uint32_t>(inputs.size()));
    wanted.push_back(0);
  }
  std::span<const TaskId> inputs_of(std::size_t t) const {
    return {inputs.data() + offsets[t], inputs.data() + offsets[t + 1]};
  }
};

// A binary reduction numbered as ExecPlan numbers it (post-order).
Graph tree(std::size_t ntasks) {
  Graph g;
  std::vector<std::pair<TaskId, int>> stack;  // (task, height)
  for (std::size_t leaves = (ntasks + 1) / 2; leaves > 0; --leaves) {
    stack.emplace_back(static_cast<TaskId>(g.size()), 0);
    g.add({});
    while (stack.size() >= 2 && stack[stack.size() - 1].second == stack[stack.size() - 2].second) {
      auto [right, h] = stack.back();
      stack.pop_back();
      TaskId left = stack.back().first;
      stack.back() = {static_cast<TaskId>(g.size()), h + 1};
      g.add({left, right});
    }
  }
  // Leaves that are not a power of two leave several subtrees: sum them up.
  while (stack.size() >= 2) {
    TaskId right = stack.back().first;
    stack.pop_back();
    TaskId left = stack.back().first;
    stack.back().first = static_cast<TaskId>(g.size());
    g.add({left, right});
  }
  g.wanted[stack[0].first] = 1;
  return g;
}

// N independent tasks gathered by one (Dask's client.map + gather).
Graph map(std::size_t ntasks) {
  Graph g;
  for (std::size_t i = 0; i + 1 < ntasks; ++i) g.add({});
  g.offsets.push_back(g.offsets.back() + static_cast<std::uint32_t>(ntasks - 1));
  for (std::size_t i = 0; i + 1 < ntasks; ++i) g.inputs.push_back(static_cast<TaskId>(i));
  g.wanted.push_back(1);
  return g;
}

// Each task reads 0 to 3 of the 1,000 tasks before it (a quarter are roots);
// the tasks nothing reads are the outputs.
Graph random_graph(std::size_t ntasks) {
  Graph g;
  std::mt19937 rng(42);
  std::vector<std::uint8_t> used(ntasks, 0);
  for (std::size_t t = 0; t < ntasks; ++t) {
    std::size_t k = t == 0 || rng() % 4 == 0 ? 0 : 1 + rng() % 3;
    std::size_t window = std::min<std::size_t>(t, 1000);
    for (std::size_t j = 0; j < k; ++j) {
      TaskId in = static_cast<TaskId>(t - 1 - rng() % window);
      g.inputs.push_back(in);
      used[in] = 1;
    }
    g.offsets.push_back(static_cast<std::uint32_t>(g.inputs.size()));
    g.wanted.push_back(0);
  }
  for (std::size_t t = 0; t < ntasks; ++t) g.wanted[t] = !used[t];
  return g;
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

struct SimWorker {
  std::vector<TaskId> queue;  // assigned, in order; queue[head..] not yet run
  std::size_t head = 0;
  std::vector<TaskId> steals;  // asked, to answer with the next message
};

}  // namespace

void scheduler_sim(Options& opts) {
  auto nworkers = static_cast<std::size_t>(opts.get_int("workers", 100));
  auto ntasks = static_cast<std::size_t>(opts.get_int("tasks", 1000000));
  std::string shape = opts.get("shape", "tree");
  auto nthreads = static_cast<std::uint32_t>(opts.get_int("threads", 1));
  auto batch = static_cast<std::size_t>(opts.get_int("batch", 64));
  weft::dist::SchedulerOptions so;
  so.worker_saturation = static_cast<std::uint32_t>(opts.get_int("saturation", so.worker_saturation));
  opts.check_all_used();
  if (nworkers == 0 || ntasks < 2 || batch == 0)
    throw weft::ValueError("bad-option", "scheduler-sim needs --workers >= 1, --tasks >= 2, --batch >= 1");

  Graph g = shape == "tree" ? tree(ntasks)
            : shape == "map" ? map(ntasks)
            : shape == "random"
                ? random_graph(ntasks)
                : throw weft::ValueError("bad-option", "--shape " + shape + ": choose tree, map or random");
  ntasks = g.size();
  long rss_before = peak_rss_kib();

  auto t0 = std::chrono::steady_clock::now();
  weft::dist::SchedulerState s(so);
  std::vector<SimWorker> workers(nworkers);
  for (std::size_t w = 0; w < nworkers; ++w) s.add_worker(nthreads);

  // Per task: 0 not assigned, 1 assigned, 2 done; runs counts executions.
  std::vector<std::uint8_t> phase(ntasks, 0);
  std::vector<std::uint8_t> runs(ntasks, 0);
  std::vector<WorkerId> active;  // workers with queued tasks or steals to answer
  std::vector<std::uint8_t> is_active(nworkers, 0);
  std::vector<Instruction> instructions;
  std::vector<TaskId> reported;
  std::size_t steals = 0, outputs = 0, outputs_reported = 0;
  bool correct = true;
  std::size_t peak_bytes = 0;

  auto activate = [&](WorkerId w) {
    if (!is_active[w]) {
      is_active[w] = 1;
      active.push_back(w);
    }
  };
  auto apply = [&] {
    instructions.clear();
    s.take_instructions(instructions);
    for (const Instruction& i : instructions) {
      switch (i.kind) {
        case Instruction::Kind::assign:
          correct &= phase[i.task] == 0;
          phase[i.task] = 1;
          workers[i.worker].queue.push_back(i.task);
          activate(i.worker);
          break;
        case Instruction::Kind::steal:
          ++steals;
          workers[i.worker].steals.push_back(i.task);
          activate(i.worker);
          break;
        case Instruction::Kind::report:
          correct &= i.state == TaskState::memory;
          reported.push_back(i.task);
          break;
        case Instruction::Kind::free:
        case Instruction::Kind::forget:
        case Instruction::Kind::acquire: break;  // the simulation never copies results
      }
    }
    // The client gathers each output and lets it go.
    for (TaskId t : reported) {
      ++outputs_reported;
      s.release(t);
    }
    reported.clear();
  };

  weft::dist::TaskSpec spec;
  for (std::size_t t = 0; t < ntasks; ++t) {
    spec.inputs = g.inputs_of(t);
    spec.wanted = g.wanted[t] != 0;
    outputs += g.wanted[t];
    correct &= s.add_task(spec) == t;
  }
  peak_bytes = s.memory_bytes();
  double add_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  apply();

  std::vector<WorkerId> round;
  while (!active.empty()) {
    round.swap(active);
    active.clear();
    for (WorkerId w : round) is_active[w] = 0;
    for (WorkerId w : round) {
      SimWorker& sw = workers[w];
      // One message: the steals asked since the last one, then up to `batch` done's.
      for (TaskId t : sw.steals) {
        auto it = std::find(sw.queue.begin() + static_cast<std::ptrdiff_t>(sw.head), sw.queue.end(), t);
        bool given_up = it != sw.queue.end();
        if (given_up) {
          sw.queue.erase(it);
          phase[t] = 0;  // assigned again, elsewhere
        }
        s.steal_response(t, w, given_up);
      }
      sw.steals.clear();
      for (std::size_t n = 0; n < batch && sw.head < sw.queue.size(); ++n) {
        TaskId t = sw.queue[sw.head++];
        for (TaskId in : g.inputs_of(t)) correct &= phase[in] == 2;
        phase[t] = 2;
        ++runs[t];
        s.task_finished(t, w, 8);
      }
      if (sw.head == sw.queue.size()) {
        sw.queue.clear();
        sw.head = 0;
      } else {
        activate(w);
      }
      apply();
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  peak_bytes = std::max(peak_bytes, s.memory_bytes());
  long rss_growth = peak_rss_kib() - rss_before;

  correct &= outputs_reported == outputs && s.live_tasks() == 0;
  correct &= std::all_of(runs.begin(), runs.end(), [](std::uint8_t r) { return r == 1; });
  auto per_task = [ntasks](double x) { return x / static_cast<double>(ntasks); };
  nlohmann::json j = {{"bench", "scheduler-sim"},
                      {"shape", shape},
                      {"workers", nworkers},
                      {"threads", nthreads},
                      {"batch", batch},
                      {"tasks", ntasks},
                      {"seconds", seconds},
                      {"add_seconds", add_seconds},
                      {"tasks_per_second", static_cast<double>(ntasks) / seconds},
                      {"us_per_task", per_task(seconds) * 1e6},
                      {"bytes_per_task", per_task(static_cast<double>(peak_bytes))},
                      {"rss_bytes_per_task", per_task(static_cast<double>(rss_growth) * 1024.0)},
                      {"steals", steals},
                      {"correct", correct}};
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace weft_bench
