// SchedulerState: the distributed scheduler's policy on dense task ids
// (docs/architecture.md, "Scheduler state machine").
//
// Per task, parallel arrays indexed by id (about 60 bytes a task): state,
// flags, worker, counters, priority, size, and two short lists (inputs;
// dependents as (id, generation) pairs) kept inline up to two words and in a
// pooled block beyond. A forgotten id's generation moves on, so an entry left
// in an input's dependents list by a forgotten task is recognised as stale
// and skipped, instead of being searched for and removed (which costs the
// length of the list for a widely used input).
//
// Counters per task, each input occurrence counted once:
//   missing   inputs not in memory: 0 = ready
//   unplaced  inputs neither processing nor in memory: 0 = co-assignable
//   holds     unfinished dependents that need this result, plus erred tasks
//             that blame this one for their error (so the cause's id, which
//             reports name, stays valid while they live)
//   wants     the client's references
//   users     input occurrences of tasks not forgotten: a released task with
//             users is kept, the recipe of their results if those are lost
//
// missing is kept up to date for waiting and processing tasks, unplaced for
// waiting ones; a task that waits again (remove_worker, retries) counts both
// afresh, so a result computed twice leaves finished dependents alone.
//
// Every event ends in settle(): releases, then the collective barrier, tasks
// held during it, roots for workers with room, co-assignments (a worklist, so
// a long chain never recurses), and stealing. Nothing is forgotten while a
// loop walks a list; forgetting happens only in settle's release pass.
#include "scheduler_state.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <deque>
#include <functional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace weft::dist {

TransitionError::TransitionError(std::string id, std::string message)
    : Error("scheduler", id, message) {}

const char* to_string(TaskState s) noexcept {
  switch (s) {
    case TaskState::released: return "released";
    case TaskState::waiting: return "waiting";
    case TaskState::queued: return "queued";
    case TaskState::processing: return "processing";
    case TaskState::memory: return "memory";
    case TaskState::erred: return "erred";
    case TaskState::forgotten: return "forgotten";
  }
  return "?";
}

namespace {

using S = TaskState;
constexpr std::size_t kStates = 7;
constexpr std::size_t index(S s) { return static_cast<std::size_t>(s); }

// The changes of state there are (Dask's _TRANSITIONS_TABLE, without the
// handlers: the events below do the work around each change).
constexpr std::array<std::array<bool, kStates>, kStates> kAllowed = [] {
  std::array<std::array<bool, kStates>, kStates> t{};
  auto allow = [&t](S from, S to) { t[index(from)][index(to)] = true; };
  allow(S::released, S::waiting);     // add_task
  allow(S::released, S::memory);      // add_data
  allow(S::released, S::forgotten);
  allow(S::waiting, S::queued);       // a ready root
  allow(S::waiting, S::processing);
  allow(S::waiting, S::erred);        // an input erred
  allow(S::waiting, S::released);
  allow(S::queued, S::processing);
  allow(S::queued, S::released);
  allow(S::processing, S::memory);
  allow(S::processing, S::erred);
  allow(S::processing, S::released);  // the worker still owes an answer
  allow(S::processing, S::waiting);   // given up to a steal
  allow(S::memory, S::released);
  allow(S::memory, S::erred);         // scattered data lost with its worker
  allow(S::erred, S::released);
  return t;
}();

// Why a transition happened, for story().
enum class Why : std::uint8_t {
  add_task, add_data, queue, assign, co_assign, steal, stolen, collective,
  finished, erred, input_erred, release, cancel, forget, retry, worker_removed, recompute, killed, lost,
};
constexpr const char* kWhy[] = {
    "add_task", "add_data", "queue", "assign", "co-assign", "steal", "stolen", "collective",
    "task_finished", "task_erred", "input erred", "release", "cancel", "forget", "retry", "worker removed",
    "recompute", "killed worker", "lost",
};

using Flags = std::uint16_t;
enum Flag : Flags {
  kCollective = 1,
  kRestricted = 2,
  kOwed = 4,          // assigned to worker_[t], which has not answered yet
  kStealPending = 8,  // a steal was asked of worker_[t]; its answer is due
  kHoldsInputs = 16,  // still counted in its inputs' holds
  kHeld = 32,         // ready, in held_ while a collective drains the cluster
  kMarked = 64,       // scratch mark of one walk (cancel, list compaction)
  kFromQueue = 128,   // a root handed out from the queue, counted in roots_out
  kScattered = 256,   // add_data: a result with no recipe
};

constexpr std::uint32_t kNone = UINT32_MAX;
constexpr std::uint64_t kRescanEvents = 32;
constexpr std::size_t kSlotChunk = 4096;

// Lists of 32-bit words: up to kInline words in the list itself, else in a
// block of the WordPool whose capacity follows from the size (block_words).
constexpr std::uint32_t kInline = 2;
struct WordList {
  std::uint32_t size = 0;
  std::uint32_t data[kInline] = {0, 0};  // the words, or data[0] = the block's offset
};
std::uint32_t block_words(std::uint32_t size) { return std::max<std::uint32_t>(4, std::bit_ceil(size)); }
// A block is full when its size reached its capacity: appending needs a new one.
bool list_full(std::uint32_t size) { return size == kInline || (size > kInline && std::has_single_bit(size)); }

// Blocks of 4, 8, 16 ... words in one array, recycled through a free list
// per size (a free block's first word links to the next).
class WordPool {
 public:
  WordPool() { free_.fill(kNone); }
  std::uint32_t allocate(std::uint32_t words) {
    int c = std::countr_zero(words);
    std::uint32_t off = free_[c];
    if (off != kNone) {
      free_[c] = words_[off];
      return off;
    }
    if (words_.size() + words > kNone) throw std::length_error("scheduler: task lists exceed 2^32 words");
    off = static_cast<std::uint32_t>(words_.size());
    words_.resize(words_.size() + words);
    return off;
  }
  void release(std::uint32_t off, std::uint32_t words) {
    int c = std::countr_zero(words);
    words_[off] = free_[c];
    free_[c] = off;
  }
  std::uint32_t* at(std::uint32_t off) { return words_.data() + off; }
  const std::uint32_t* at(std::uint32_t off) const { return words_.data() + off; }
  std::size_t bytes() const { return words_.capacity() * sizeof(std::uint32_t); }

 private:
  std::vector<std::uint32_t> words_;
  std::array<std::uint32_t, 33> free_;
};

// Free task ids as a bitset, so that the smallest is handed out first.
class IdAllocator {
 public:
  TaskId take() {
    for (; first_ < free_.size(); ++first_) {
      if (free_[first_] != 0) {
        int bit = std::countr_zero(free_[first_]);
        free_[first_] &= free_[first_] - 1;
        return static_cast<TaskId>(first_ * 64 + static_cast<std::size_t>(bit));
      }
    }
    if (next_ >= kAllWorkers) throw std::length_error("scheduler: out of task ids");
    return next_++;
  }
  void give_back(TaskId id) {
    std::size_t word = id / 64;
    if (free_.size() <= word) free_.resize(word + 1, 0);
    free_[word] |= std::uint64_t{1} << (id % 64);
    first_ = std::min(first_, word);
  }
  std::size_t bytes() const { return free_.capacity() * sizeof(std::uint64_t); }

 private:
  std::vector<std::uint64_t> free_;
  std::size_t first_ = 0;  // no free id in the words before this one
  TaskId next_ = 0;        // ids from here on were never handed out
};

// A set of workers with O(1) insert, erase and membership.
class WorkerSet {
 public:
  void resize(std::size_t n) { pos_.resize(n, kNone); }
  bool contains(WorkerId w) const { return pos_[w] != kNone; }
  void insert(WorkerId w) {
    pos_[w] = static_cast<std::uint32_t>(items_.size());
    items_.push_back(w);
  }
  void erase(WorkerId w) {
    WorkerId last = items_.back();
    items_[pos_[w]] = last;
    pos_[last] = pos_[w];
    items_.pop_back();
    pos_[w] = kNone;
  }
  bool empty() const { return items_.empty(); }
  const std::vector<WorkerId>& items() const { return items_; }

 private:
  std::vector<WorkerId> items_;
  std::vector<std::uint32_t> pos_;
};

struct Step {  // one transition, for story()
  TaskId task;
  WorkerId worker;
  S from, to;
  Why why;
};
constexpr std::size_t kStorySteps = 512;

std::string worker_name(WorkerId w) {
  if (w == kAllWorkers) return "all workers";
  return "w" + std::to_string(w);
}

}  // namespace

struct SchedulerState::Impl {
  explicit Impl(SchedulerOptions o) : opt(o) {}

  SchedulerOptions opt;

  // --- per task -------------------------------------------------------------
  std::vector<S> state;
  std::vector<Flags> flags;
  std::vector<WorkerId> worker;  // processing on / holding the result
  std::vector<std::uint32_t> missing, unplaced, holds, wants, users;
  std::vector<std::int32_t> priority;
  std::vector<std::uint64_t> nbytes;
  std::vector<std::uint32_t> gen;  // moves on when the id is forgotten
  std::vector<WordList> inputs, dependents;
  WordPool pool;
  IdAllocator ids;
  std::size_t live = 0;
  // Rare attributes, kept aside rather than in every slot.
  std::unordered_map<TaskId, WorkerId> restriction;
  std::unordered_map<TaskId, TaskId> blame;         // erred task -> its cause, when another
  std::unordered_map<TaskId, WorkerId> steal_thief;  // pending steals -> where the task goes
  std::unordered_map<TaskId, std::uint32_t> retries_left;
  std::unordered_map<TaskId, std::vector<WorkerId>> suspicious;  // removed workers it was running on
  std::unordered_map<TaskId, LostTask> lost;
  std::unordered_map<TaskId, std::vector<WorkerId>> copies;     // holders besides worker_[t] (replicate)
  // An acquire sent and not answered (replicate, retire_workers, rebalance).
  struct Move {
    WorkerId target, source;
    bool drop_source = false;  // rebalance: the source frees its copy once the target has it
    bool ended = false;        // its source was removed with no other holder: a late answer is freed
  };
  std::unordered_map<TaskId, std::vector<Move>> acquiring;
  std::size_t moves = 0;  // those not ended

  // --- per worker -----------------------------------------------------------
  std::vector<std::uint32_t> nthreads, processing, high, low, steals_out, steals_in;
  // Roots from the queue not yet answered: what worker_saturation bounds.
  // Co-assigned tasks wait for those roots and do not count, or each worker
  // would get runs of half the roots.
  std::vector<std::uint32_t> roots_out;
  std::vector<std::uint64_t> events, rescan_at;  // load changes; when stealing may look again
  std::vector<std::vector<TaskId>> assigned;  // newest last; stale entries are skipped
  std::vector<std::uint8_t> in_line;          // in `accepting`
  std::vector<std::uint8_t> removed;          // remove_worker: no further instructions
  std::vector<std::string> removal_reason;
  std::vector<std::uint8_t> retiring;         // retire_workers: no new tasks, results moved away
  bool any_removed = false;
  std::deque<WorkerId> accepting;             // got down to `low` roots, first come first served
  WorkerSet idle, overloaded;
  std::uint64_t total_processing = 0;

  // --- queues and worklists -------------------------------------------------
  std::vector<TaskId> run;  // queued roots in key order (the common case) ...
  std::size_t run_head = 0;
  std::uint64_t run_last = 0;
  std::vector<std::uint64_t> heap;  // ... and the rest, as keys in a min-heap
  std::vector<TaskId> collectives;  // ready collective tasks, by key
  TaskId collective_running = kNoTask;
  std::vector<TaskId> held;         // ready while a collective drains the cluster
  std::vector<TaskId> coassign_work, release_work, unclaimed, rerun_work, waited, recall_work;
  bool balance_needed = false;
  std::vector<Instruction> out;

  // Scratch.
  std::vector<std::uint64_t> bytes_on;
  std::vector<WorkerId> touched;
  std::vector<std::uint32_t> words_scratch;
  std::vector<std::pair<TaskId, std::uint32_t>> walk;
  std::vector<TaskId> order;
  std::vector<std::pair<std::uint64_t, TaskId>> candidates;
  std::vector<TaskId> chosen;
  std::vector<WorkerId> thieves;

  std::array<Step, kStorySteps> story{};
  std::size_t story_count = 0;

  // --- small helpers --------------------------------------------------------
  std::size_t slots() const { return state.size(); }
  bool known(TaskId t) const { return t < slots() && state[t] != S::forgotten; }
  // Larger user priority first, then the smaller id (graph order).
  std::uint64_t key(TaskId t) const {
    return (static_cast<std::uint64_t>(std::int64_t{INT32_MAX} - priority[t]) << 32) | t;
  }
  const std::uint32_t* words(const WordList& l) const { return l.size <= kInline ? l.data : pool.at(l.data[0]); }
  std::span<const TaskId> inputs_of(TaskId t) const { return {words(inputs[t]), inputs[t].size}; }
  bool draining() const { return !collectives.empty() || collective_running != kNoTask; }
  WorkerId restricted_to(TaskId t) const {
    return (flags[t] & kRestricted) ? restriction.at(t) : kNoWorker;
  }
  TaskId cause_of(TaskId t) const {
    auto it = blame.find(t);
    return it == blame.end() ? t : it->second;
  }
  template <class F>
  void for_each_dependent(TaskId t, F&& f) {
    const WordList& l = dependents[t];
    const std::uint32_t* w = words(l);
    for (std::uint32_t i = 0; i < l.size; i += 2)
      if (gen[w[i]] == w[i + 1]) f(w[i]);
  }
  void emit(Instruction::Kind kind, TaskId t, WorkerId w, S s = S::released, TaskId cause = kNoTask) {
    out.push_back(Instruction{kind, s, t, w, cause});
  }
  void report(TaskId t) {
    if (state[t] == S::memory)
      emit(Instruction::Kind::report, t, worker[t], S::memory);
    else
      emit(Instruction::Kind::report, t, kNoWorker, S::erred, cause_of(t));
  }

  // --- story and errors -------------------------------------------------------
  std::string story_of(TaskId t) const {
    std::string s = "id " + std::to_string(t) + ":";
    bool any = false;
    std::size_t n = std::min(story_count, kStorySteps);
    for (std::size_t i = story_count - n; i < story_count; ++i) {
      const Step& st = story[i % kStorySteps];
      if (st.task != t) continue;
      s += any ? "; " : " ";
      s += std::string(to_string(st.from)) + " -> " + to_string(st.to) + " (" + kWhy[static_cast<int>(st.why)];
      if (st.worker != kNoWorker) s += " " + worker_name(st.worker);
      s += ")";
      any = true;
    }
    if (!any) s += " no recent transitions";
    return s;
  }
  [[noreturn]] void refuse(TaskId t, S to, Why why, WorkerId w) const {
    std::string what = std::string(kWhy[static_cast<int>(why)]) + (w == kNoWorker ? "" : " " + worker_name(w));
    throw TransitionError("bad-transition", "task " + std::to_string(t) + ": " + to_string(state[t]) + " -> " +
                                                to_string(to) + " is not allowed (" + what + "); story: " +
                                                story_of(t));
  }
  [[noreturn]] void bad_event(TaskId t, const std::string& what) const {
    throw TransitionError("bad-event", what + "; story: " + story_of(t));
  }
  void transition(TaskId t, S to, Why why, WorkerId w = kNoWorker) {
    if (!kAllowed[index(state[t])][index(to)]) refuse(t, to, why, w);
    story[story_count++ % kStorySteps] = Step{t, w, state[t], to, why};
    state[t] = to;
  }
  void check_known(TaskId t, const char* event) const {
    if (!known(t))
      throw TransitionError("unknown-task", std::string(event) + ": task " + std::to_string(t) +
                                                " is not known (never added, or forgotten)");
  }
  // Known and not released: something a client or a new task may still refer to.
  void check_live(TaskId t, const char* event) const {
    check_known(t, event);
    if (state[t] == S::released) bad_event(t, std::string(event) + ": task " + std::to_string(t) + " was released");
  }
  void check_worker(WorkerId w, const char* event) const {
    if (w >= nthreads.size())
      throw TransitionError("unknown-worker", std::string(event) + ": no worker " + std::to_string(w) + " (there are " +
                                                  std::to_string(nthreads.size()) + ")");
  }

  // --- slots and lists ------------------------------------------------------
  TaskId new_slot() {
    TaskId t = ids.take();
    if (t == slots()) {
      // Slots come in chunks (one resize per array, not a push_back per
      // field and task); those not handed out yet read as forgotten.
      std::size_t n = slots() + kSlotChunk;
      state.resize(n, S::forgotten);
      flags.resize(n);
      for (auto* v : {&missing, &unplaced, &holds, &wants, &users, &gen, &worker}) v->resize(n);
      priority.resize(n);
      nbytes.resize(n);
      inputs.resize(n);
      dependents.resize(n);
    }
    state[t] = S::released;
    flags[t] = 0;
    worker[t] = kNoWorker;
    missing[t] = unplaced[t] = holds[t] = wants[t] = users[t] = 0;
    priority[t] = 0;
    nbytes[t] = 0;
    ++live;
    return t;
  }
  void set_inputs(TaskId t, std::span<const TaskId> in) {
    WordList& l = inputs[t];
    if (in.size() >= kNone) throw std::length_error("scheduler: too many inputs");
    l.size = static_cast<std::uint32_t>(in.size());
    if (l.size > kInline) l.data[0] = pool.allocate(block_words(l.size));
    std::copy(in.begin(), in.end(), l.size <= kInline ? l.data : pool.at(l.data[0]));
  }
  // Appends (t, gen) to x's dependents; a full list is rebuilt without its
  // stale entries, into a block that fits.
  void add_dependent(TaskId x, TaskId t) {
    WordList& l = dependents[x];
    if (list_full(l.size)) {
      words_scratch.clear();
      const std::uint32_t* w = words(l);
      for (std::uint32_t i = 0; i < l.size; i += 2)
        if (gen[w[i]] == w[i + 1]) words_scratch.insert(words_scratch.end(), {w[i], w[i + 1]});
      if (l.size > kInline) pool.release(l.data[0], block_words(l.size));
      words_scratch.insert(words_scratch.end(), {t, gen[t]});
      l.size = static_cast<std::uint32_t>(words_scratch.size());
      if (l.size > kInline) l.data[0] = pool.allocate(block_words(l.size));
      std::copy(words_scratch.begin(), words_scratch.end(), l.size <= kInline ? l.data : pool.at(l.data[0]));
      return;
    }
    std::uint32_t* w = l.size < kInline ? l.data : pool.at(l.data[0]);
    w[l.size] = t;
    w[l.size + 1] = gen[t];
    l.size += 2;
  }
  void free_list(WordList& l) {
    if (l.size > kInline) pool.release(l.data[0], block_words(l.size));
    l.size = 0;
  }

  // --- workers ----------------------------------------------------------------
  // After processing[w] changed: the worker's place in the queue for roots
  // and in the sets stealing looks at.
  void load_changed(WorkerId w) {
    ++events[w];
    if (removed[w] || retiring[w]) return;
    std::uint32_t p = processing[w];
    if (roots_out[w] <= low[w] && !in_line[w]) {
      accepting.push_back(w);
      in_line[w] = 1;
    }
    bool is_idle = p < nthreads[w];
    if (is_idle != idle.contains(w)) {
      if (is_idle) {
        idle.insert(w);
        balance_needed |= !overloaded.empty();
      } else {
        idle.erase(w);
      }
    }
    bool is_over = p > 2 * high[w];
    if (is_over != overloaded.contains(w)) {
      if (is_over) {
        overloaded.insert(w);
        balance_needed |= !idle.empty();
      } else {
        overloaded.erase(w);
      }
    }
  }
  // The worker owed an answer for t and gave it.
  void answered(TaskId t) {
    bool root = flags[t] & kFromQueue;
    flags[t] &= static_cast<Flags>(~(kOwed | kFromQueue));
    if (t == collective_running) collective_running = kNoTask;
    WorkerId w = worker[t];
    if (w == kAllWorkers) return;
    roots_out[w] -= root;
    --processing[w];
    --total_processing;
    load_changed(w);
  }

  // --- the decisions --------------------------------------------------------
  void assign(TaskId t, WorkerId w, Why why) {
    transition(t, S::processing, why, w);
    worker[t] = w;
    flags[t] |= kOwed;
    if (w != kAllWorkers) {
      ++processing[w];
      ++total_processing;
      std::vector<TaskId>& list = assigned[w];
      if (list.size() >= 2 * static_cast<std::size_t>(processing[w]) + 64) compact_assigned(w);
      list.push_back(t);
      load_changed(w);
    }
    emit(Instruction::Kind::assign, t, w, S::processing);
    for_each_dependent(t, [this](TaskId e) {
      if (state[e] == S::waiting && --unplaced[e] == 0 && missing[e] > 0) coassign_work.push_back(e);
    });
  }
  // Keeps the entries of tasks still processing on w, once each.
  void compact_assigned(WorkerId w) {
    std::vector<TaskId>& list = assigned[w];
    std::size_t kept = 0;
    for (TaskId t : list) {
      if (state[t] != S::processing || worker[t] != w || (flags[t] & kMarked)) continue;
      flags[t] |= kMarked;
      list[kept++] = t;
    }
    list.resize(kept);
    for (TaskId t : list) flags[t] &= static_cast<Flags>(~kMarked);
  }
  // The worker holding the most bytes of t's inputs; ties: the least busy,
  // then the lowest id.
  WorkerId decide_worker(TaskId t) {
    std::span<const TaskId> in = inputs_of(t);
    WorkerId first = worker[in[0]];
    bool one_holder = std::all_of(in.begin(), in.end(), [&](TaskId x) { return worker[x] == first; });
    if (one_holder) return first;
    for (TaskId x : in) {
      WorkerId w = worker[x];
      if (bytes_on[w] == 0 && std::find(touched.begin(), touched.end(), w) == touched.end()) touched.push_back(w);
      bytes_on[w] += nbytes[x];
    }
    WorkerId best = touched[0];
    for (WorkerId w : touched) {
      bool better = bytes_on[w] != bytes_on[best]
                        ? bytes_on[w] > bytes_on[best]
                        : (processing[w] != processing[best] ? processing[w] < processing[best] : w < best);
      if (better) best = w;
    }
    for (WorkerId w : touched) bytes_on[w] = 0;
    touched.clear();
    return best;
  }
  void queue_root(TaskId t) {
    transition(t, S::queued, Why::queue);
    std::uint64_t k = key(t);
    if (run_head == run.size() || k >= run_last) {
      run.push_back(t);
      run_last = k;
    } else {
      heap.push_back(k);
      std::push_heap(heap.begin(), heap.end(), std::greater<>());
    }
  }
  // The first queued root by key, or kNoTask; skips entries of tasks that
  // left the queue (released) meanwhile.
  TaskId pop_root() {
    for (;;) {
      bool in_run = run_head < run.size();
      if (!in_run && heap.empty()) return kNoTask;
      if (in_run && (heap.empty() || key(run[run_head]) <= heap.front())) {
        TaskId t = run[run_head++];
        if (run_head == run.size()) {
          run.clear();
          run_head = 0;
        } else if (run_head >= 4096 && 2 * run_head >= run.size()) {
          run.erase(run.begin(), run.begin() + static_cast<std::ptrdiff_t>(run_head));
          run_head = 0;
        }
        if (state[t] == S::queued) return t;
      } else {
        std::uint64_t k = heap.front();
        std::pop_heap(heap.begin(), heap.end(), std::greater<>());
        heap.pop_back();
        auto t = static_cast<TaskId>(k);
        if (state[t] == S::queued && key(t) == k) return t;
      }
    }
  }
  bool roots_queued() const { return run_head < run.size() || !heap.empty(); }

  // t is waiting with every input in memory.
  void make_ready(TaskId t) {
    if (flags[t] & kCollective) {
      // A collective needs every worker, and a removed one never joins again.
      if (any_removed) {
        LostTask info{true, {}, {}};
        for (WorkerId w = 0; w < removed.size(); ++w)
          if (removed[w]) info.workers.push_back(w), info.reason = removal_reason[w];
        return kill(t, Why::killed, std::move(info));
      }
      auto pos = std::upper_bound(collectives.begin(), collectives.end(), t,
                                  [this](TaskId a, TaskId b) { return key(a) < key(b); });
      collectives.insert(pos, t);
      return;
    }
    bool root = inputs[t].size == 0;
    WorkerId r = restricted_to(t);
    if (r != kNoWorker && removed[r]) return kill(t, Why::killed, LostTask{true, {r}, removal_reason[r]});
    if (root && r == kNoWorker) return queue_root(t);
    if (draining()) {
      flags[t] |= kHeld;
      held.push_back(t);
      return;
    }
    assign(t, r != kNoWorker ? r : usable(decide_worker(t)), Why::assign);
  }
  bool can_take_work(WorkerId w) const { return !removed[w] && !retiring[w]; }
  // w, or the least busy worker that takes work when w is retiring.
  WorkerId usable(WorkerId w) const {
    if (can_take_work(w)) return w;
    WorkerId best = w;
    for (WorkerId v = 0; v < nthreads.size(); ++v)
      if (can_take_work(v) && (best == w || processing[v] < processing[best])) best = v;
    return best;
  }
  // t is waiting and its unfinished inputs are all processing: if they are
  // on one worker, t goes there too and runs when they are done.
  void try_coassign(TaskId t) {
    if (!opt.co_assign || draining() || (flags[t] & kCollective)) return;
    WorkerId w = kNoWorker;
    for (TaskId x : inputs_of(t)) {
      if (state[x] == S::memory) continue;
      if (state[x] != S::processing || (flags[x] & kStealPending) || worker[x] == kAllWorkers) return;
      if (w == kNoWorker) w = worker[x];
      if (worker[x] != w) return;
    }
    WorkerId r = restricted_to(t);
    if (w == kNoWorker || (r != kNoWorker && r != w) || retiring[w]) return;
    assign(t, w, Why::co_assign);
  }
  void finished(TaskId t) {
    for_each_dependent(t, [this](TaskId e) {
      if (state[e] != S::waiting && state[e] != S::processing) return;
      if (--missing[e] == 0) {
        if (state[e] == S::waiting) make_ready(e);
      } else if (missing[e] == 1 && unplaced[e] == 0 && state[e] == S::waiting) {
        // One unfinished input left: perhaps it can be followed now.
        coassign_work.push_back(e);
      }
    });
  }
  // t stops needing its inputs (it finished, was released, or its worker answered).
  void drop_inputs(TaskId t) {
    if (!(flags[t] & kHoldsInputs)) return;
    flags[t] &= static_cast<Flags>(~kHoldsInputs);
    for (TaskId x : inputs_of(t))
      if (--holds[x] == 0 && (wants[x] == 0 || state[x] == S::released)) release_work.push_back(x);
  }
  void set_blame(TaskId t, TaskId cause) {
    if (cause == t) return;
    blame[t] = cause;
    ++holds[cause];
  }
  // Everything that depends on `cause`, transitively, errs with it.
  // `dropped_on`: the worker that drops the tasks co-assigned behind `cause`
  // unasked (where it failed); a task released there is answered for now.
  void err_dependents(TaskId cause, WorkerId dropped_on) {
    order.assign(1, cause);
    while (!order.empty()) {
      TaskId x = order.back();
      order.pop_back();
      for_each_dependent(x, [&](TaskId e) {
        S s = state[e];
        if (s == S::released && (flags[e] & kOwed)) {
          // Recalled from another worker: it answers, and waits again or goes.
          if (worker[e] != dropped_on) return;
          // Released, but co-assigned: its worker drops it unasked too.
          answered(e);
          drop_inputs(e);
          release_work.push_back(e);
          order.push_back(e);
          return;
        }
        if (s != S::waiting && s != S::processing) return;
        if (s == S::waiting && (flags[e] & kCollective)) std::erase(collectives, e);
        transition(e, S::erred, Why::input_erred, s == S::processing ? worker[e] : kNoWorker);
        // A co-assigned task waited for `cause` on its worker, which dropped
        // it when `cause` failed: that is its answer.
        if (s == S::processing) answered(e);
        drop_inputs(e);
        set_blame(e, cause);
        if (wants[e] > 0) report(e);
        release_work.push_back(e);
        order.push_back(e);
      });
    }
  }
  void release_task(TaskId t, Why why) {
    S s = state[t];
    if (s == S::waiting && (flags[t] & kCollective)) std::erase(collectives, t);
    transition(t, S::released, why, (s == S::processing || s == S::memory) ? worker[t] : kNoWorker);
    if (s == S::processing || s == S::memory) emit(Instruction::Kind::free, t, worker[t]);
    if (auto c = copies.find(t); c != copies.end()) {
      for (WorkerId w : c->second) emit(Instruction::Kind::free, t, w);
      copies.erase(c);
    }
    if (s == S::waiting || s == S::queued) drop_inputs(t);
    if (s == S::erred) {
      auto it = blame.find(t);
      if (it != blame.end()) {
        if (--holds[it->second] == 0) release_work.push_back(it->second);
        blame.erase(it);
      }
    }
    release_work.push_back(t);
  }
  void forget(TaskId t) {
    transition(t, S::forgotten, Why::forget);
    emit(Instruction::Kind::forget, t, kNoWorker);
    for (TaskId x : inputs_of(t))
      if (--users[x] == 0 && state[x] == S::released) release_work.push_back(x);
    retries_left.erase(t);
    suspicious.erase(t);
    copies.erase(t);
    lost.erase(t);
    free_list(inputs[t]);
    free_list(dependents[t]);
    if (flags[t] & kRestricted) restriction.erase(t);
    flags[t] = 0;
    worker[t] = kNoWorker;
    ++gen[t];
    ids.give_back(t);
    --live;
  }
  void process_releases() {
    while (!release_work.empty()) {
      TaskId t = release_work.back();
      release_work.pop_back();
      S s = state[t];
      if (s == S::forgotten) continue;
      if (s == S::released) {
        if (!(flags[t] & (kOwed | kStealPending)) && holds[t] == 0 && users[t] == 0 && !acquiring.contains(t))
          forget(t);
      } else if (wants[t] == 0 && holds[t] == 0) {
        release_task(t, Why::release);
      }
    }
  }

  // --- resilience -------------------------------------------------------------
  // t stopped processing: waiting dependents count it as unplaced again.
  void unplace(TaskId t) {
    for_each_dependent(t, [this](TaskId e) {
      if (state[e] == S::waiting) ++unplaced[e];
    });
  }
  // `first` (released) waits again: it holds its inputs and counts them
  // afresh; released inputs, kept as its recipe, wait again too (one still
  // owed by a worker comes back through its answer). The tasks are made
  // ready by ready_waited(), once every count is right.
  void wait_again(TaskId first, Why why) {
    rerun_work.assign(1, first);
    while (!rerun_work.empty()) {
      TaskId t = rerun_work.back();
      rerun_work.pop_back();
      if (state[t] != S::released || (flags[t] & kOwed)) continue;
      transition(t, S::waiting, why);
      bool counted = flags[t] & kHoldsInputs;
      if (inputs[t].size > 0) flags[t] |= kHoldsInputs;
      missing[t] = unplaced[t] = 0;
      for (TaskId x : inputs_of(t)) {
        if (!counted) ++holds[x];
        S xs = state[x];
        if (xs != S::memory) ++missing[t];
        if (xs != S::memory && xs != S::processing) ++unplaced[t];
        if (xs == S::released) rerun_work.push_back(x);
      }
      waited.push_back(t);
    }
  }
  void ready_waited() {
    for (TaskId t : waited) {
      if (state[t] != S::waiting) continue;
      std::span<const TaskId> in = inputs_of(t);
      auto erred_input = std::find_if(in.begin(), in.end(), [this](TaskId x) { return state[x] == S::erred; });
      if (erred_input != in.end()) {
        transition(t, S::erred, Why::input_erred);
        drop_inputs(t);
        set_blame(t, cause_of(*erred_input));
        if (wants[t] > 0) report(t);
        err_dependents(t, kNoWorker);
        release_work.push_back(t);
      } else if (missing[t] == 0)
        make_ready(t);
      else if (unplaced[t] == 0)
        coassign_work.push_back(t);
    }
    waited.clear();
  }
  // A released task that is wanted or held again: a task released while
  // processing and then needed as a lost result's recipe, or recalled.
  bool needed(TaskId t) const { return holds[t] > 0 || wants[t] > 0; }
  // A task released while processing was answered without a result: it
  // waits again if needed, else it goes.
  void released_answered(TaskId t) {
    if (needed(t)) return wait_again(t, Why::recompute);
    drop_inputs(t);
    release_work.push_back(t);
  }
  // t errs without an error of its own (see LostTask).
  void kill(TaskId t, Why why, LostTask info) {
    if (state[t] == S::waiting && (flags[t] & kCollective)) std::erase(collectives, t);
    WorkerId dropped_on = state[t] == S::processing || state[t] == S::memory ? worker[t] : kNoWorker;
    transition(t, S::erred, why, dropped_on);
    lost[t] = std::move(info);
    drop_inputs(t);
    if (wants[t] > 0) report(t);
    err_dependents(t, dropped_on);
    release_work.push_back(t);
  }
  // t failed on w and will run again: w dropped the tasks co-assigned there
  // behind it (transitively) without answering for them; they wait again too.
  void retry_dropped(TaskId t, WorkerId w) {
    order.assign(1, t);
    while (!order.empty()) {
      TaskId x = order.back();
      order.pop_back();
      for_each_dependent(x, [&](TaskId e) {
        if (!(flags[e] & kOwed) || worker[e] != w) return;
        answered(e);
        if (state[e] == S::processing) {
          transition(e, S::released, Why::retry, w);
          unplace(e);
          wait_again(e, Why::retry);
        } else {
          released_answered(e);
        }
        order.push_back(e);
      });
    }
  }
  // t, processing on a worker that is left, reads a result that was lost
  // with a removed worker: its worker is told to drop it (with the tasks
  // co-assigned behind it there), and each waits again when it answers
  // (released), or keeps its result if it had already run.
  void recall(TaskId first) {
    WorkerId w = worker[first];
    recall_work.assign(1, first);
    while (!recall_work.empty()) {
      TaskId t = recall_work.back();
      recall_work.pop_back();
      if (state[t] != S::processing || worker[t] != w) continue;
      transition(t, S::released, Why::recompute, w);
      emit(Instruction::Kind::free, t, w);
      unplace(t);
      for_each_dependent(t, [&](TaskId e) { recall_work.push_back(e); });
    }
  }
  // A pending steal of t (processing on its victim) that will not be answered.
  void drop_steal(TaskId t) {
    if (!(flags[t] & kStealPending)) return;
    flags[t] &= static_cast<Flags>(~kStealPending);
    --steals_out[worker[t]];
    auto it = steal_thief.find(t);
    --steals_in[it->second];
    steal_thief.erase(it);
  }

  // Cancels `task` and what depends on it: post-order over dependents, so
  // each task is released after everything that depends on it, and none is
  // left waiting for a released input.
  void cancel_tree(TaskId task) {
    order.clear();
    walk.assign(1, {task, 0});
    flags[task] |= kMarked;
    while (!walk.empty()) {
      auto& [t, next] = walk.back();
      const WordList& l = dependents[t];
      const std::uint32_t* w = words(l);
      TaskId child = kNoTask;
      while (next < l.size && child == kNoTask) {
        TaskId e = w[next];
        if (gen[e] == w[next + 1] && !(flags[e] & kMarked) && state[e] != S::released) child = e;
        next += 2;
      }
      if (child == kNoTask) {
        order.push_back(t);
        walk.pop_back();
      } else {
        flags[child] |= kMarked;
        walk.emplace_back(child, 0);
      }
    }
    for (TaskId t : order) {
      flags[t] &= static_cast<Flags>(~kMarked);
      if (wants[t] > 0) emit(Instruction::Kind::report, t, kNoWorker, S::forgotten);
      wants[t] = 0;
      release_task(t, Why::cancel);
    }
  }
  // Holders and moves (replicate, retire_workers).
  bool holds_copy(TaskId t, WorkerId w) const {
    if (worker[t] == w) return true;
    auto c = copies.find(t);
    return c != copies.end() && std::find(c->second.begin(), c->second.end(), w) != c->second.end();
  }
  bool acquiring_to(TaskId t, WorkerId w) const {
    auto a = acquiring.find(t);
    return a != acquiring.end() &&
           std::any_of(a->second.begin(), a->second.end(), [w](const Move& m) { return m.target == w; });
  }
  // Acquires of t still awaited.
  std::size_t moves_of(TaskId t) const {
    auto a = acquiring.find(t);
    return a == acquiring.end() ? 0 : static_cast<std::size_t>(std::count_if(a->second.begin(), a->second.end(),
                                                                             [](const Move& m) { return !m.ended; }));
  }
  // Managed bytes per worker, copies included, as they will be once the
  // pending moves are done.
  std::vector<std::uint64_t> bytes_held() const {
    std::vector<std::uint64_t> b(nthreads.size(), 0);
    for (TaskId t = 0; t < slots(); ++t) {
      if (state[t] != S::memory) continue;
      b[worker[t]] += nbytes[t];
      if (auto c = copies.find(t); c != copies.end())
        for (WorkerId w : c->second) b[w] += nbytes[t];
    }
    for (const auto& [t, ms] : acquiring) {
      if (state[t] != S::memory) continue;
      for (const Move& m : ms) {
        if (m.ended) continue;
        b[m.target] += nbytes[t];
        if (m.drop_source && holds_copy(t, m.source)) b[m.source] -= nbytes[t];
      }
    }
    return b;
  }
  void send_move(TaskId t, const Move& m, std::vector<std::uint64_t>& bytes) {
    bytes[m.target] += nbytes[t];
    if (m.drop_source) bytes[m.source] -= nbytes[t];
    acquiring[t].push_back(m);
    ++moves;
    out.push_back(Instruction{Instruction::Kind::acquire, S::released, t, m.target, kNoTask, m.source});
  }
  // The worker taking work with the fewest bytes that neither holds t nor is
  // getting it, other than `besides`; kNoWorker if there is none.
  WorkerId emptiest_for(TaskId t, const std::vector<std::uint64_t>& bytes, WorkerId besides = kNoWorker) const {
    WorkerId target = kNoWorker;
    for (WorkerId w = 0; w < nthreads.size(); ++w)
      if (w != besides && can_take_work(w) && !holds_copy(t, w) && !acquiring_to(t, w) &&
          (target == kNoWorker || bytes[w] < bytes[target]))
        target = w;
    return target;
  }
  // Sends a copy of t, from `source`, to the emptiest worker; false if there is none.
  bool copy_to_emptiest(TaskId t, std::vector<std::uint64_t>& bytes, WorkerId source) {
    WorkerId target = emptiest_for(t, bytes);
    if (target == kNoWorker) return false;
    send_move(t, Move{target, source}, bytes);
    return true;
  }
  // A holder of t other than `besides` (kNoWorker if none).
  WorkerId other_holder(TaskId t, WorkerId besides) const {
    if (worker[t] != besides) return worker[t];
    auto c = copies.find(t);
    if (c == copies.end()) return kNoWorker;
    for (WorkerId w : c->second)
      if (w != besides) return w;
    return kNoWorker;
  }
  bool read_by_running(TaskId t) {
    bool read = false;
    for_each_dependent(t, [&](TaskId e) { read = read || state[e] == S::processing; });
    return read;
  }
  // Client::rebalance (see scheduler_state.hpp for the policy).
  void rebalance(std::span<const TaskId> tasks) {
    std::vector<WorkerId> pool;
    for (WorkerId w = 0; w < nthreads.size(); ++w)
      if (can_take_work(w)) pool.push_back(w);
    if (pool.size() < 2) return;
    std::vector<std::uint64_t> bytes = bytes_held();
    std::uint64_t total = 0;
    for (WorkerId w : pool) total += bytes[w];
    const std::uint64_t mean = total / pool.size();
    candidates.clear();
    for (TaskId t : tasks)
      if (state[t] == S::memory && nbytes[t] > 0 && !acquiring.contains(t) && !read_by_running(t))
        candidates.emplace_back(nbytes[t], t);
    std::sort(candidates.begin(), candidates.end(), std::greater<>());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<WorkerId> senders;
    for (WorkerId w : pool)
      if (bytes[w] > mean) senders.push_back(w);
    std::sort(senders.begin(), senders.end(), [&](WorkerId a, WorkerId b) { return bytes[a] > bytes[b]; });
    for (WorkerId sender : senders) {
      for (const auto& [size, t] : candidates) {
        if (bytes[sender] <= mean) break;
        if (!holds_copy(t, sender) || acquiring.contains(t)) continue;
        WorkerId to = emptiest_for(t, bytes, sender);
        if (to == kNoWorker || bytes[to] >= mean || size >= bytes[sender] - bytes[to]) continue;
        send_move(t, Move{to, sender, true}, bytes);
      }
    }
  }
  // w no longer holds t (removed): true if another worker still does.
  bool drop_holder(TaskId t, WorkerId w) {
    auto c = copies.find(t);
    if (c == copies.end()) return false;
    std::vector<WorkerId>& ws = c->second;
    if (worker[t] == w) {
      worker[t] = ws.back();
      ws.pop_back();
    } else {
      std::erase(ws, w);
    }
    if (ws.empty()) copies.erase(c);
    return true;
  }

  // --- settle: what every event ends with -------------------------------------
  void fill_workers() {
    // The first in line takes roots until it is full, even when they come
    // one add_task at a time: a run of consecutive roots.
    while (roots_queued() && !accepting.empty()) {
      WorkerId w = accepting.front();
      if (removed[w] || retiring[w]) {
        accepting.pop_front();
        in_line[w] = 0;
        continue;
      }
      while (roots_out[w] < high[w]) {
        TaskId t = pop_root();
        if (t == kNoTask) return;  // the queue ran dry: w stays first in line
        flags[t] |= kFromQueue;
        ++roots_out[w];
        assign(t, w, Why::queue);
      }
      accepting.pop_front();
      in_line[w] = 0;
    }
  }
  void release_held() {
    std::vector<TaskId> tasks;
    tasks.swap(held);
    for (TaskId t : tasks) {
      if (!(flags[t] & kHeld)) continue;
      flags[t] &= static_cast<Flags>(~kHeld);
      if (state[t] == S::waiting && missing[t] == 0) make_ready(t);
    }
  }
  // Thieves are workers with less than a thread's worth of work, victims
  // those with more than twice their saturation. A thief asks for up to its
  // room; a victim gives its lowest-priority tasks among the latest assigned
  // that could run anywhere now (inputs in memory, no co-assigned dependent
  // waiting for them there).
  void balance() {
    balance_needed = false;
    if (!opt.stealing || draining()) return;
    // A task whose steal is pending may have finished meanwhile: signed.
    auto spare = [this](WorkerId v) { return std::int64_t{processing[v]} - steals_out[v]; };
    thieves = idle.items();
    for (WorkerId thief : thieves) {
      std::int64_t room = std::int64_t{high[thief]} - processing[thief] - steals_in[thief];
      if (room <= 0) continue;
      // The busiest victim worth a look: one that had nothing to give is
      // looked at again only after kRescanEvents more assigns and answers,
      // or idle workers would rescan it at every turn.
      WorkerId victim = kNoWorker;
      for (WorkerId v : overloaded.items())
        if (events[v] >= rescan_at[v] && (victim == kNoWorker || spare(v) > spare(victim))) victim = v;
      if (victim == kNoWorker) return;
      std::int64_t excess = spare(victim) - high[victim];
      if (excess <= 0) continue;
      auto want = static_cast<std::size_t>(std::min(room, std::max<std::int64_t>(1, excess / 2)));
      steal_candidates(victim, want);
      if (chosen.empty()) rescan_at[victim] = events[victim] + kRescanEvents;
      for (TaskId t : chosen) {
        flags[t] |= kStealPending;
        ++steals_out[victim];
        ++steals_in[thief];
        steal_thief[t] = thief;
        emit(Instruction::Kind::steal, t, victim);
      }
    }
  }
  // Fills `chosen`.
  void steal_candidates(WorkerId v, std::size_t want) {
    const std::vector<TaskId>& list = assigned[v];
    std::size_t scan = std::min(list.size(), 4 * want + 32);
    candidates.clear();
    for (std::size_t i = list.size() - scan; i < list.size(); ++i) {
      TaskId t = list[i];
      if (state[t] != S::processing || worker[t] != v || missing[t] != 0) continue;
      if (flags[t] & (kStealPending | kRestricted | kCollective)) continue;
      bool needed_there = false;
      for_each_dependent(t, [&](TaskId e) { needed_there |= state[e] == S::processing && worker[e] == v; });
      if (!needed_there) candidates.emplace_back(key(t), t);
    }
    std::sort(candidates.begin(), candidates.end(), std::greater<>());  // lowest priority first
    chosen.clear();
    for (std::size_t i = 0; i < candidates.size() && chosen.size() < want; ++i) {
      TaskId t = candidates[i].second;
      if (chosen.empty() || chosen.back() != t) chosen.push_back(t);  // listed twice: a reused id
    }
  }
  void settle() {
    process_releases();
    if (collective_running == kNoTask && total_processing == 0 && !collectives.empty()) {
      TaskId c = collectives.front();
      collectives.erase(collectives.begin());
      assign(c, kAllWorkers, Why::collective);
      collective_running = c;
    }
    if (!draining()) {
      if (!held.empty()) release_held();
      fill_workers();
    }
    while (!coassign_work.empty()) {
      TaskId e = coassign_work.back();
      coassign_work.pop_back();
      if (state[e] == S::waiting && unplaced[e] == 0 && missing[e] > 0) try_coassign(e);
    }
    if (balance_needed) balance();
  }
  // Every event but add_task / add_data: a submission is complete.
  void begin_event() {
    release_work.insert(release_work.end(), unclaimed.begin(), unclaimed.end());
    unclaimed.clear();
  }
};

SchedulerState::SchedulerState(SchedulerOptions options) : impl_(new Impl(options)) {}
SchedulerState::~SchedulerState() { delete impl_; }

WorkerId SchedulerState::add_worker(std::uint32_t nthreads) {
  Impl& s = *impl_;
  if (nthreads == 0) throw ValueError("bad-nthreads", "add_worker: a worker needs at least one thread");
  s.begin_event();
  auto w = static_cast<WorkerId>(s.nthreads.size());
  if (w >= kAllWorkers) throw std::length_error("scheduler: out of worker ids");
  std::uint32_t high = std::max<std::uint32_t>(1, s.opt.worker_saturation * nthreads);
  s.nthreads.push_back(nthreads);
  s.processing.push_back(0);
  s.roots_out.push_back(0);
  s.events.push_back(0);
  s.rescan_at.push_back(0);
  s.high.push_back(high);
  s.low.push_back(high / 2);
  s.steals_out.push_back(0);
  s.steals_in.push_back(0);
  s.assigned.emplace_back();
  s.in_line.push_back(0);
  s.removed.push_back(0);
  s.removal_reason.emplace_back();
  s.retiring.push_back(0);
  s.bytes_on.push_back(0);
  s.idle.resize(w + 1);
  s.overloaded.resize(w + 1);
  s.load_changed(w);
  s.settle();
  return w;
}

TaskId SchedulerState::add_task(const TaskSpec& spec) {
  Impl& s = *impl_;
  for (TaskId x : spec.inputs) s.check_live(x, "add_task");
  if (spec.restriction != kNoWorker) s.check_worker(spec.restriction, "add_task");
  TaskId t = s.new_slot();
  s.set_inputs(t, spec.inputs);
  s.priority[t] = spec.user_priority;
  s.wants[t] = spec.wanted ? 1 : 0;
  if (spec.collective) s.flags[t] |= kCollective;
  if (spec.restriction != kNoWorker) {
    s.flags[t] |= kRestricted;
    s.restriction[t] = spec.restriction;
  }
  if (!spec.inputs.empty()) s.flags[t] |= kHoldsInputs;
  if (spec.retries > 0) s.retries_left[t] = spec.retries;
  TaskId erred_input = kNoTask;
  for (TaskId x : spec.inputs) {
    s.add_dependent(x, t);
    ++s.holds[x];
    ++s.users[x];
    S xs = s.state[x];
    if (xs != S::memory) ++s.missing[t];
    if (xs != S::memory && xs != S::processing) ++s.unplaced[t];
    if (xs == S::erred && erred_input == kNoTask) erred_input = x;
  }
  s.transition(t, S::waiting, Why::add_task);
  if (erred_input != kNoTask) {
    s.transition(t, S::erred, Why::input_erred);
    s.drop_inputs(t);
    s.set_blame(t, s.cause_of(erred_input));
    if (s.wants[t] > 0) s.report(t);
    // Inputs it let go of may get other users later in this submission.
    s.unclaimed.insert(s.unclaimed.end(), s.release_work.begin(), s.release_work.end());
    s.release_work.clear();
    s.unclaimed.push_back(t);
  } else if (s.missing[t] == 0) {
    s.make_ready(t);
  } else if (s.unplaced[t] == 0) {
    s.coassign_work.push_back(t);
  }
  s.settle();
  return t;
}

TaskId SchedulerState::add_data(WorkerId worker, std::uint64_t nbytes, bool wanted) {
  Impl& s = *impl_;
  s.check_worker(worker, "add_data");
  if (s.removed[worker])
    throw TransitionError("removed-worker", "add_data: " + worker_name(worker) + " was removed (" +
                                                s.removal_reason[worker] + ")");
  TaskId t = s.new_slot();
  s.flags[t] |= kScattered;
  s.transition(t, S::memory, Why::add_data, worker);
  s.worker[t] = worker;
  s.nbytes[t] = nbytes;
  s.wants[t] = wanted ? 1 : 0;
  if (wanted)
    s.report(t);
  else
    s.unclaimed.push_back(t);
  s.settle();
  return t;
}

void SchedulerState::task_finished(TaskId task, WorkerId worker, std::uint64_t nbytes) {
  Impl& s = *impl_;
  s.check_known(task, "task_finished");
  s.check_worker(worker, "task_finished");
  s.begin_event();
  S st = s.state[task];
  bool from_holder = s.worker[task] == worker || s.worker[task] == kAllWorkers;
  // Released while the worker ran it, and needed again since (a lost
  // result's recipe, or recalled): the result is kept.
  const bool needed_again = st == S::released && (s.flags[task] & kOwed) && from_holder && s.needed(task);
  if (st == S::processing || needed_again) {
    if (!from_holder)
      s.bad_event(task, "task_finished from " + worker_name(worker) + " for task " + std::to_string(task) +
                            ", which is processing on " + worker_name(s.worker[task]));
    s.answered(task);
    s.worker[task] = worker;
    s.nbytes[task] = nbytes;
    s.transition(task, S::memory, Why::finished, worker);
    s.drop_inputs(task);
    if (s.wants[task] > 0) s.report(task);
    s.finished(task);
    s.release_work.push_back(task);
  } else if (st == S::released && (s.flags[task] & kOwed) && from_holder) {
    // Released while the worker ran it: the result is not wanted any more.
    s.answered(task);
    s.emit(Instruction::Kind::free, task, worker);
    s.drop_inputs(task);
    s.release_work.push_back(task);
  } else {
    s.refuse(task, S::memory, Why::finished, worker);
  }
  s.settle();
}

void SchedulerState::task_erred(TaskId task, WorkerId worker) {
  Impl& s = *impl_;
  s.check_known(task, "task_erred");
  s.check_worker(worker, "task_erred");
  s.begin_event();
  S st = s.state[task];
  bool from_holder = s.worker[task] == worker || s.worker[task] == kAllWorkers;
  if (st == S::processing) {
    if (!from_holder)
      s.bad_event(task, "task_erred from " + worker_name(worker) + " for task " + std::to_string(task) +
                            ", which is processing on " + worker_name(s.worker[task]));
    s.answered(task);
    auto retry = s.retries_left.find(task);
    if (retry != s.retries_left.end() && retry->second > 0 && !(s.flags[task] & kCollective)) {
      --retry->second;
      s.transition(task, S::released, Why::retry, worker);
      s.unplace(task);
      s.retry_dropped(task, worker);
      s.wait_again(task, Why::retry);
      s.ready_waited();
    } else {
      s.transition(task, S::erred, Why::erred, worker);
      s.drop_inputs(task);
      if (s.wants[task] > 0) s.report(task);
      s.err_dependents(task, worker);
      s.release_work.push_back(task);
    }
  } else if (st == S::released && (s.flags[task] & kOwed) && from_holder) {
    s.answered(task);
    s.released_answered(task);
    s.ready_waited();
  } else {
    s.refuse(task, S::erred, Why::erred, worker);
  }
  s.settle();
}

void SchedulerState::want(TaskId task) {
  Impl& s = *impl_;
  s.check_live(task, "want");
  s.begin_event();
  ++s.wants[task];
  if (s.state[task] == S::memory || s.state[task] == S::erred) s.report(task);
  s.settle();
}

void SchedulerState::release(TaskId task) {
  Impl& s = *impl_;
  s.check_known(task, "release");
  if (s.state[task] == S::released) {  // cancelled meanwhile, or recalled (remove_worker)
    if (s.wants[task] > 0) --s.wants[task];
    return;
  }
  if (s.wants[task] == 0)
    s.bad_event(task, "release: the client holds no reference to task " + std::to_string(task));
  s.begin_event();
  if (--s.wants[task] == 0) s.release_work.push_back(task);
  s.settle();
}

void SchedulerState::cancel(TaskId task) {
  Impl& s = *impl_;
  s.check_live(task, "cancel");
  s.begin_event();
  s.cancel_tree(task);
  s.settle();
}

void SchedulerState::restart() {
  Impl& s = *impl_;
  s.begin_event();
  for (TaskId t = 0; t < s.slots(); ++t)
    if (s.known(t) && s.state[t] != S::released) s.cancel_tree(t);
  s.settle();
}

void SchedulerState::steal_response(TaskId task, WorkerId victim, bool given_up) {
  Impl& s = *impl_;
  s.check_known(task, "steal_response");
  s.check_worker(victim, "steal_response");
  if (!(s.flags[task] & kStealPending) || s.worker[task] != victim)
    s.bad_event(task, "steal_response from " + worker_name(victim) + " for task " + std::to_string(task) +
                          ", which was not asked of it");
  if (given_up && !(s.flags[task] & kOwed))
    s.bad_event(task, "steal_response: " + worker_name(victim) + " gave up task " + std::to_string(task) +
                          ", which it had already answered for");
  s.begin_event();
  s.flags[task] &= static_cast<Flags>(~kStealPending);
  --s.steals_out[victim];
  auto it = s.steal_thief.find(task);
  WorkerId thief = it->second;
  s.steal_thief.erase(it);
  --s.steals_in[thief];
  S st = s.state[task];
  if (given_up) {
    s.answered(task);
    if (st == S::processing) {
      s.transition(task, S::waiting, Why::stolen, victim);
      s.unplace(task);
      if (s.draining()) {
        s.flags[task] |= kHeld;
        s.held.push_back(task);
      } else if (s.removed[thief]) {
        s.make_ready(task);
      } else {
        s.assign(task, thief, Why::steal);
      }
    } else {  // released while the steal was on its way
      s.released_answered(task);
      s.ready_waited();
    }
  } else if (st == S::processing) {
    // It stays: dependents that skipped it while the steal was pending may follow it now.
    s.for_each_dependent(task, [&s](TaskId e) {
      if (s.state[e] == S::waiting && s.unplaced[e] == 0) s.coassign_work.push_back(e);
    });
  } else if (st == S::released) {
    s.release_work.push_back(task);
  }
  s.settle();
}

void SchedulerState::worker_released(TaskId task, WorkerId worker) {
  Impl& s = *impl_;
  s.check_known(task, "worker_released");
  s.check_worker(worker, "worker_released");
  if (s.state[task] != S::released || !(s.flags[task] & kOwed) || s.worker[task] != worker)
    s.bad_event(task, "worker_released from " + worker_name(worker) + " for task " + std::to_string(task) +
                          ", which was not freed while assigned to it");
  s.begin_event();
  s.answered(task);
  s.released_answered(task);
  s.ready_waited();
  s.settle();
}

void SchedulerState::remove_worker(WorkerId worker, std::string reason) {
  Impl& s = *impl_;
  s.check_worker(worker, "remove_worker");
  if (s.removed[worker]) return;
  s.begin_event();
  s.removed[worker] = 1;
  s.any_removed = true;
  s.removal_reason[worker] = std::move(reason);
  if (s.idle.contains(worker)) s.idle.erase(worker);
  if (s.overloaded.contains(worker)) s.overloaded.erase(worker);
  // Copies it held, or was getting, are gone; results it held that others
  // hold too stay in memory there.
  for (auto it = s.copies.begin(); it != s.copies.end();) {
    std::erase(it->second, worker);
    it = it->second.empty() ? s.copies.erase(it) : std::next(it);
  }
  // Moves it was in: a copy it was to get goes to another worker (a
  // rebalance move is dropped: its source keeps the result); one it was the
  // source of is fetched from another holder (its target may never hear
  // from this one), or ends when none is left.
  std::vector<std::pair<TaskId, WorkerId>> copy_again;  // task, source
  for (auto& [t, ms] : s.acquiring) {
    for (auto m = ms.begin(); m != ms.end();) {
      if (m->target == worker) {
        if (!m->ended) {
          --s.moves;
          if (!m->drop_source) copy_again.emplace_back(t, m->source);
        }
        m = ms.erase(m);
        continue;
      }
      if (m->source == worker && !m->ended) {
        WorkerId other = m->drop_source ? kNoWorker : s.other_holder(t, worker);
        if (other != kNoWorker && other != m->target) {
          m->source = other;
          s.out.push_back(Instruction{Instruction::Kind::acquire, S::released, t, m->target, kNoTask, other});
        } else {
          m->ended = true;
          --s.moves;
        }
      }
      ++m;
    }
    if (ms.empty()) s.release_work.push_back(t);
  }
  std::erase_if(s.acquiring, [](const auto& a) { return a.second.empty(); });
  if (!copy_again.empty()) {
    std::vector<std::uint64_t> bytes = s.bytes_held();
    for (auto [t, source] : copy_again)
      if (s.state[t] == S::memory && s.holds_copy(t, source)) s.copy_to_emptiest(t, bytes, source);
  }
  std::vector<TaskId> owed, held_there;
  for (TaskId t = 0; t < s.slots(); ++t) {
    if (s.worker[t] != worker || s.state[t] == S::forgotten) continue;
    if (s.flags[t] & kOwed)
      owed.push_back(t);
    else if (s.state[t] == S::memory)
      held_there.push_back(t);
  }
  // Its tasks first: each waits again, or errs as killed with what depends on it.
  for (TaskId t : owed) {
    if (!(s.flags[t] & kOwed) || s.worker[t] != worker) continue;  // erred with an input meanwhile
    s.drop_steal(t);
    s.answered(t);
    if (s.state[t] == S::released) {
      s.released_answered(t);
      continue;
    }
    std::vector<WorkerId>& on = s.suspicious[t];
    if (!s.retiring[worker]) on.push_back(worker);  // a retirement is no failure of the task
    if (on.size() > s.opt.allowed_failures || s.restricted_to(t) == worker) {
      s.kill(t, Why::killed, LostTask{true, on, s.removal_reason[worker]});
    } else {
      s.transition(t, S::released, Why::worker_removed, worker);
      s.unplace(t);
      s.wait_again(t, Why::recompute);
    }
  }
  // Then its results: computed again where still needed; scattered data is lost.
  for (TaskId t : held_there) {
    if (s.state[t] != S::memory || s.drop_holder(t, worker)) continue;
    if (s.flags[t] & kScattered) {
      s.for_each_dependent(t, [&s](TaskId e) {
        if (s.state[e] == S::processing) s.recall(e);
      });
      s.kill(t, Why::lost, LostTask{false, {worker}, s.removal_reason[worker]});
      continue;
    }
    s.transition(t, S::released, Why::worker_removed, worker);
    if (!s.needed(t)) {  // its last users just erred
      s.release_work.push_back(t);
      continue;
    }
    if (s.wants[t] > 0) s.emit(Instruction::Kind::report, t, kNoWorker, S::waiting);
    s.for_each_dependent(t, [&s](TaskId e) {
      if (s.state[e] == S::processing) {
        s.recall(e);
      } else if (s.state[e] == S::waiting) {
        ++s.missing[e];
        ++s.unplaced[e];
      }
    });
    s.wait_again(t, Why::recompute);
  }
  if (s.collective_running != kNoTask) {  // it waits for the removed worker forever
    TaskId c = s.collective_running;
    s.answered(c);
    s.kill(c, Why::killed, LostTask{true, {worker}, s.removal_reason[worker]});
  }
  s.ready_waited();
  s.settle();
}

void SchedulerState::replicate(TaskId task, std::uint32_t n) {
  Impl& s = *impl_;
  s.check_known(task, "replicate");
  if (s.state[task] != S::memory)
    s.bad_event(task, "replicate: task " + std::to_string(task) + " is " + to_string(s.state[task]) + ", not in memory");
  s.begin_event();
  n = std::max<std::uint32_t>(n, 1);
  auto c = s.copies.find(task);
  std::size_t have = 1 + (c == s.copies.end() ? 0 : c->second.size());
  std::size_t coming = s.moves_of(task);
  if (have + coming < n) {
    std::vector<std::uint64_t> bytes = s.bytes_held();
    for (std::size_t k = have + coming; k < n; ++k)
      if (!s.copy_to_emptiest(task, bytes, s.worker[task])) break;  // fewer workers than copies asked for
  }
  // Extra copies go (copies still coming are counted as kept).
  while (c != s.copies.end() && have > n && !c->second.empty()) {
    s.emit(Instruction::Kind::free, task, c->second.back());
    c->second.pop_back();
    --have;
  }
  if (c != s.copies.end() && c->second.empty()) s.copies.erase(c);
  s.settle();
}

void SchedulerState::retire_workers(std::span<const WorkerId> workers) {
  Impl& s = *impl_;
  for (WorkerId w : workers) s.check_worker(w, "retire_workers");
  s.begin_event();
  for (WorkerId w : workers) {
    if (s.removed[w]) continue;
    s.retiring[w] = 1;
    if (s.idle.contains(w)) s.idle.erase(w);
    if (s.overloaded.contains(w)) s.overloaded.erase(w);
  }
  std::vector<std::uint64_t> bytes = s.bytes_held();
  for (TaskId t = 0; t < s.slots(); ++t) {
    if (s.state[t] != S::memory || s.can_take_work(s.worker[t])) continue;
    auto c = s.copies.find(t);
    bool kept = c != s.copies.end() &&
                std::any_of(c->second.begin(), c->second.end(), [&s](WorkerId w) { return s.can_take_work(w); });
    if (!kept && s.moves_of(t) == 0) s.copy_to_emptiest(t, bytes, s.worker[t]);
  }
  s.settle();
}

void SchedulerState::rebalance(std::span<const TaskId> tasks) {
  Impl& s = *impl_;
  for (TaskId t : tasks) s.check_known(t, "rebalance");
  s.begin_event();
  s.rebalance(tasks);
  s.settle();
}

void SchedulerState::task_acquired(TaskId task, WorkerId worker, bool ok) {
  Impl& s = *impl_;
  s.check_worker(worker, "task_acquired");
  auto a = s.acquiring.find(task);
  auto m = a == s.acquiring.end() ? std::vector<Impl::Move>::iterator{}
                                  : std::find_if(a->second.begin(), a->second.end(),
                                                 [worker](const Impl::Move& x) { return x.target == worker; });
  if (a == s.acquiring.end() || m == a->second.end())
    s.bad_event(task, "task_acquired from " + worker_name(worker) + " for task " + std::to_string(task) +
                          ", which it was not asked to acquire");
  s.begin_event();
  const Impl::Move move = *m;
  a->second.erase(m);
  if (a->second.empty()) s.acquiring.erase(a);
  if (!move.ended) --s.moves;
  if (ok && !move.ended && s.state[task] == S::memory && !s.holds_copy(task, worker)) {
    s.copies[task].push_back(worker);
    // A rebalance move: the source lets go, unless a task started reading it there.
    if (move.drop_source && s.holds_copy(task, move.source) && !s.read_by_running(task)) {
      s.emit(Instruction::Kind::free, task, move.source);
      s.drop_holder(task, move.source);
    }
  } else if (ok && !s.holds_copy(task, worker)) {
    s.emit(Instruction::Kind::free, task, worker);  // released, or lost and computed again, meanwhile
  }
  if (s.state[task] == S::released) s.release_work.push_back(task);
  s.settle();
}

void SchedulerState::take_instructions(std::vector<Instruction>& out) {
  if (out.empty()) {
    out.swap(impl_->out);  // no copy; the caller's buffer becomes the next queue
  } else {
    out.insert(out.end(), impl_->out.begin(), impl_->out.end());
    impl_->out.clear();
  }
}

TaskState SchedulerState::state(TaskId task) const {
  return task < impl_->slots() ? impl_->state[task] : TaskState::forgotten;
}

WorkerId SchedulerState::worker_of(TaskId task) const {
  const Impl& s = *impl_;
  if (!s.known(task)) return kNoWorker;
  S st = s.state[task];
  return st == S::processing || st == S::memory ? s.worker[task] : kNoWorker;
}

std::span<const TaskId> SchedulerState::inputs_of(TaskId task) const {
  if (!impl_->known(task)) return {};
  return impl_->inputs_of(task);
}

std::uint64_t SchedulerState::nbytes(TaskId task) const {
  return impl_->known(task) && impl_->state[task] == S::memory ? impl_->nbytes[task] : 0;
}

std::size_t SchedulerState::num_workers() const noexcept { return impl_->nthreads.size(); }

bool SchedulerState::removed(WorkerId worker) const {
  impl_->check_worker(worker, "removed");
  return impl_->removed[worker] != 0;
}

const LostTask* SchedulerState::lost(TaskId task) const {
  if (!impl_->known(task) || impl_->state[task] != S::erred) return nullptr;
  auto it = impl_->lost.find(task);
  return it == impl_->lost.end() ? nullptr : &it->second;
}

std::uint32_t SchedulerState::processing_on(WorkerId worker) const {
  impl_->check_worker(worker, "processing_on");
  return impl_->processing[worker];
}

std::vector<TaskId> SchedulerState::held_by(WorkerId worker) const {
  const Impl& s = *impl_;
  s.check_worker(worker, "held_by");
  std::vector<TaskId> tasks;
  for (TaskId t = 0; t < s.slots(); ++t)
    if (s.state[t] == S::memory && s.holds_copy(t, worker)) tasks.push_back(t);
  return tasks;
}

std::vector<WorkerId> SchedulerState::holders(TaskId task) const {
  const Impl& s = *impl_;
  std::vector<WorkerId> out;
  if (!s.known(task) || s.state[task] != S::memory) return out;
  out.push_back(s.worker[task]);
  if (auto c = s.copies.find(task); c != s.copies.end()) out.insert(out.end(), c->second.begin(), c->second.end());
  return out;
}

std::size_t SchedulerState::moves_pending() const noexcept { return impl_->moves; }

bool SchedulerState::retiring(WorkerId worker) const {
  impl_->check_worker(worker, "retiring");
  return impl_->retiring[worker] != 0;
}

std::size_t SchedulerState::memory_bytes() const noexcept {
  const Impl& s = *impl_;
  auto bytes = [](const auto& v) { return v.capacity() * sizeof(v[0]); };
  std::size_t n = bytes(s.state) + bytes(s.flags) + bytes(s.worker) + bytes(s.missing) + bytes(s.unplaced) +
                  bytes(s.holds) + bytes(s.wants) + bytes(s.users) + bytes(s.priority) + bytes(s.nbytes) + bytes(s.gen) +
                  bytes(s.inputs) + bytes(s.dependents) + s.pool.bytes() + s.ids.bytes() + bytes(s.run) +
                  bytes(s.heap) + bytes(s.held) + bytes(s.collectives) + bytes(s.out) + bytes(s.release_work) +
                  bytes(s.coassign_work) + bytes(s.unclaimed);
  for (const auto& list : s.assigned) n += bytes(list);
  // Hash maps: a node (key, value, next pointer) per entry plus the buckets.
  auto map_bytes = [](const auto& m) { return m.size() * 24 + m.bucket_count() * sizeof(void*); };
  return n + map_bytes(s.restriction) + map_bytes(s.blame) + map_bytes(s.steal_thief) + map_bytes(s.retries_left) +
         map_bytes(s.suspicious) + map_bytes(s.lost) + map_bytes(s.copies) + map_bytes(s.acquiring);
}

std::size_t SchedulerState::live_tasks() const noexcept { return impl_->live; }

std::string SchedulerState::story(TaskId task) const { return impl_->story_of(task); }

}  // namespace weft::dist
