// CoordinationState driven directly (no MPI, no threads): arrival order,
// timeouts, leases, queue bounds, events, datasets, the wire form; then the
// public primitives in-process from several threads.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../src/dist/coordination.hpp"
#include "weft/coordination.hpp"

using weft::dist::CoordCaller;
using weft::dist::CoordinationState;
using weft::dist::CoordReply;
using Op = weft::detail::CoordOp;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  CoordinationState state;
  CoordinationState::TimePoint start = weft::dist::CoordClock::now();
  CoordinationState::TimePoint now = start;
  std::uint64_t next = 0;

  // Sends a request from `rank` (its number is returned) and returns its caller.
  CoordCaller call(int rank, Op op, const std::string& name, std::uint64_t owner = 0, std::uint32_t limit = 0,
                   std::optional<double> timeout = std::nullopt, weft::Value value = {}) {
    weft::detail::CoordRequest r;
    r.op = op;
    r.name = name;
    r.owner = owner;
    r.limit = limit;
    r.timeout = timeout;
    r.value = std::move(value);
    CoordCaller caller{rank, next++};
    state.handle(caller, std::move(r), now);
    return caller;
  }
  std::vector<CoordReply> replies() {
    std::vector<CoordReply> out;
    state.take_replies(out);
    return out;
  }
  // The callers answered since the last look, in order, and their statuses.
  std::vector<std::pair<CoordCaller, CoordReply::Status>> answered() {
    std::vector<std::pair<CoordCaller, CoordReply::Status>> out;
    for (CoordReply& r : replies()) out.emplace_back(r.caller, r.status);
    return out;
  }
};

using Status = CoordReply::Status;
constexpr Status ok = Status::ok;
constexpr Status timed_out = Status::timed_out;

template <class E>
void check_error(const std::function<void()>& fn, const std::string& id, const std::string& fragment) {
  try {
    fn();
    FAIL("expected " << id);
  } catch (const E& e) {
    CHECK(e.id() == id);
    CHECK_THAT(e.text(), Catch::Matchers::Contains(fragment));
  }
}

}  // namespace

TEST_CASE("a lock is granted to its waiters in arrival order", "[coordination]") {
  Fixture f;
  CoordCaller a = f.call(1, Op::lock_acquire, "L", 7);
  CoordCaller b = f.call(2, Op::lock_acquire, "L", 7);  // same owner number, other rank: another holder
  CoordCaller c = f.call(0, Op::lock_acquire, "L", 1);
  using A = std::vector<std::pair<CoordCaller, Status>>;
  CHECK(f.answered() == A{{a, ok}});
  CHECK(f.state.waiting() == 2);
  CoordCaller locked = f.call(3, Op::lock_locked, "L");
  CHECK(f.replies().at(0).value.get<bool>());
  (void)locked;
  CoordCaller ra = f.call(1, Op::lock_release, "L", 7);
  CHECK(f.answered() == A{{ra, ok}, {b, ok}});
  CoordCaller rb = f.call(2, Op::lock_release, "L", 7);
  CHECK(f.answered() == A{{rb, ok}, {c, ok}});
  CoordCaller rc = f.call(0, Op::lock_release, "L", 1);
  CHECK(f.answered() == A{{rc, ok}});
  f.call(0, Op::lock_locked, "L");
  CHECK_FALSE(f.replies().at(0).value.get<bool>());
  CHECK(f.state.waiting() == 0);
}

TEST_CASE("releasing a lock or lease one does not hold is an error", "[coordination]") {
  Fixture f;
  f.call(1, Op::lock_acquire, "L", 5);
  f.replies();
  // Another object on the same rank, and the same object number on another rank.
  check_error<weft::RuntimeError>([&] { f.call(1, Op::lock_release, "L", 6); }, "runtime.released-too-often",
                                  "Lock 'L' was released by an object that holds no lock on it");
  check_error<weft::RuntimeError>([&] { f.call(2, Op::lock_release, "L", 5); }, "runtime.released-too-often",
                                  "released too often");
  f.call(1, Op::lock_release, "L", 5);
  check_error<weft::RuntimeError>([&] { f.call(1, Op::lock_release, "L", 5); }, "runtime.released-too-often",
                                  "Lock 'L'");
  check_error<weft::RuntimeError>([&] { f.call(1, Op::semaphore_release, "S", 5, 2); },
                                  "runtime.released-too-often", "Semaphore 'S' was released by an object that holds no lease");
}

TEST_CASE("blocked calls time out at their deadline, and not before", "[coordination]") {
  Fixture f;
  using A = std::vector<std::pair<CoordCaller, Status>>;
  CoordCaller holder = f.call(1, Op::lock_acquire, "L", 1);
  CoordCaller patient = f.call(2, Op::lock_acquire, "L", 1, 0, 2.0);
  CoordCaller hasty = f.call(3, Op::lock_acquire, "L", 1, 0, 1.0);
  CoordCaller forever = f.call(4, Op::lock_acquire, "L", 1);
  CoordCaller trying = f.call(5, Op::lock_acquire, "L", 1, 0, 0.0);  // zero: just try
  CHECK(f.answered() == A{{holder, ok}, {trying, timed_out}});
  CHECK(f.state.next_deadline() == f.start + 1s);
  f.state.expire(f.start + 999ms);
  CHECK(f.answered().empty());
  f.state.expire(f.start + 1s);
  CHECK(f.answered() == A{{hasty, timed_out}});
  CHECK(f.state.next_deadline() == f.start + 2s);
  // The first waiter still goes first; the one that waits for ever is next.
  f.now = f.start + 1500ms;
  CoordCaller release = f.call(1, Op::lock_release, "L", 1);
  CHECK(f.answered() == A{{release, ok}, {patient, ok}});
  f.state.expire(f.start + 10s);
  CHECK(f.answered().empty());
  CHECK(f.state.next_deadline() == CoordinationState::TimePoint::max());
  CHECK(f.state.waiting() == 1);
  f.call(2, Op::lock_release, "L", 1);
  CHECK(f.answered().back() == std::pair{forever, ok});
}

TEST_CASE("a semaphore has at most max_leases holders, counted per holder", "[coordination]") {
  Fixture f;
  using A = std::vector<std::pair<CoordCaller, Status>>;
  CoordCaller a1 = f.call(1, Op::semaphore_acquire, "S", 1, 2);
  CoordCaller a2 = f.call(1, Op::semaphore_acquire, "S", 1, 2);  // one object, two leases
  CoordCaller b = f.call(2, Op::semaphore_acquire, "S", 1, 2);
  CHECK(f.answered() == A{{a1, ok}, {a2, ok}});
  f.call(0, Op::semaphore_value, "S", 9, 2);
  CHECK(f.replies().at(0).value.get<std::uint64_t>() == 2);
  check_error<weft::ValueError>([&] { f.call(0, Op::semaphore_acquire, "S", 9, 3); }, "value.semaphore-max-leases",
                                "Semaphore 'S' has max_leases 2; an object with max_leases 3");
  CoordCaller r1 = f.call(1, Op::semaphore_release, "S", 1, 2);
  CHECK(f.answered() == A{{r1, ok}, {b, ok}});
  f.call(1, Op::semaphore_release, "S", 1, 2);
  f.replies();
  check_error<weft::RuntimeError>([&] { f.call(1, Op::semaphore_release, "S", 1, 2); },
                                  "runtime.released-too-often", "Semaphore 'S'");
  f.call(0, Op::semaphore_value, "S", 9, 2);
  CHECK(f.replies().at(0).value.get<std::uint64_t>() == 1);
}

TEST_CASE("a bounded queue blocks put when full and hands items over in order", "[coordination]") {
  Fixture f;
  using A = std::vector<std::pair<CoordCaller, Status>>;
  auto put = [&](int rank, long item, std::optional<double> timeout = std::nullopt) {
    return f.call(rank, Op::queue_put, "Q", 0, 2, timeout, weft::Value::of(item));
  };
  CoordCaller p1 = put(1, 10), p2 = put(2, 20);
  CoordCaller p3 = put(3, 30);  // full: waits
  CoordCaller p4 = put(4, 40, 1.0);
  CHECK(f.answered() == A{{p1, ok}, {p2, ok}});
  f.call(0, Op::queue_size, "Q", 0, 2);
  CHECK(f.replies().at(0).value.get<std::uint64_t>() == 2);
  f.state.expire(f.start + 1s);  // p4's item is dropped with it
  CHECK(f.answered() == A{{p4, timed_out}});
  CoordCaller g1 = f.call(0, Op::queue_get, "Q", 0, 2);
  std::vector<CoordReply> r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].caller == g1);
  CHECK(r[0].value.get<long>() == 10);
  CHECK(r[1].caller == p3);  // room again: the waiting put goes in
  std::vector<long> got;
  for (int i = 0; i < 2; ++i) {
    f.call(0, Op::queue_get, "Q", 0, 2);
    got.push_back(f.replies().at(0).value.get<long>());
  }
  CHECK(got == std::vector<long>{20, 30});
  // Empty: getters wait, and a put goes straight to the oldest.
  CoordCaller g2 = f.call(1, Op::queue_get, "Q", 0, 2);
  CoordCaller g3 = f.call(2, Op::queue_get, "Q", 0, 2, 0.5);
  CHECK(f.answered().empty());
  CoordCaller p5 = put(3, 50);
  r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].caller == g2);
  CHECK(r[0].value.get<long>() == 50);
  CHECK(r[1].caller == p5);
  f.state.expire(f.start + 500ms);
  CHECK(f.answered() == A{{g3, timed_out}});
  f.call(0, Op::queue_size, "Q", 0, 2);
  CHECK(f.replies().at(0).value.get<std::uint64_t>() == 0);
}

TEST_CASE("a variable wakes its waiters when set, and delete unsets it", "[coordination]") {
  Fixture f;
  CoordCaller g1 = f.call(1, Op::variable_get, "V");
  CoordCaller g2 = f.call(2, Op::variable_get, "V", 0, 0, 3.0);
  CHECK(f.replies().empty());
  f.call(0, Op::variable_set, "V", 0, 0, std::nullopt, weft::Value::of(std::string("hello")));
  std::vector<CoordReply> r = f.replies();
  REQUIRE(r.size() == 3);
  CHECK(r[0].caller == g1);
  CHECK(r[1].caller == g2);
  CHECK(r[1].value.get<std::string>() == "hello");
  CHECK(r[2].value.has_value() == false);  // the set itself
  CHECK(f.state.next_deadline() == CoordinationState::TimePoint::max());
  f.call(3, Op::variable_get, "V");
  CHECK(f.replies().at(0).value.get<std::string>() == "hello");
  f.call(0, Op::variable_delete, "V");
  f.replies();
  CoordCaller g3 = f.call(3, Op::variable_get, "V", 0, 0, 1.0);
  CHECK(f.replies().empty());
  f.state.expire(f.start + 1s);
  CHECK(f.answered() == std::vector{std::pair{g3, timed_out}});
}

TEST_CASE("an event wakes every waiter when set", "[coordination]") {
  Fixture f;
  using A = std::vector<std::pair<CoordCaller, Status>>;
  CoordCaller w1 = f.call(1, Op::event_wait, "E"), w2 = f.call(2, Op::event_wait, "E", 0, 0, 5.0),
              w3 = f.call(3, Op::event_wait, "E");
  CHECK(f.answered().empty());
  CoordCaller set = f.call(0, Op::event_set, "E");
  CHECK(f.answered() == A{{w1, ok}, {w2, ok}, {w3, ok}, {set, ok}});
  CoordCaller now_set = f.call(1, Op::event_wait, "E");
  CHECK(f.answered() == A{{now_set, ok}});
  f.call(1, Op::event_is_set, "E");
  CHECK(f.replies().at(0).value.get<bool>());
  f.call(0, Op::event_clear, "E");
  f.replies();
  f.call(1, Op::event_is_set, "E");
  CHECK_FALSE(f.replies().at(0).value.get<bool>());
  CoordCaller w4 = f.call(1, Op::event_wait, "E", 0, 0, 0.25);
  f.state.expire(f.start + 250ms);
  CHECK(f.answered() == A{{w4, timed_out}});
}

TEST_CASE("datasets: publish twice is an error unless override; a missing one is named", "[coordination]") {
  Fixture f;
  auto publish = [&](const std::string& name, long v, bool override_existing) {
    weft::detail::CoordRequest r;
    r.op = Op::dataset_publish;
    r.name = name;
    r.override_existing = override_existing;
    r.value = weft::Value::of(v);
    f.state.handle(CoordCaller{0, f.next++}, std::move(r), f.now);
  };
  publish("x", 1, false);
  publish("a", 2, false);
  check_error<weft::ValueError>([&] { publish("x", 3, false); }, "value.dataset-exists",
                                "dataset 'x' already exists");
  publish("x", 4, true);
  f.replies();
  f.call(0, Op::dataset_get, "x");
  CHECK(f.replies().at(0).value.get<long>() == 4);
  check_error<weft::ValueError>([&] { f.call(0, Op::dataset_get, "y"); }, "value.no-dataset",
                                "dataset 'y' not found (published: 'a', 'x')");
  f.call(0, Op::dataset_list, "");
  CHECK(f.replies().at(0).value.get<std::vector<std::string>>() == std::vector<std::string>{"a", "x"});
  f.call(0, Op::dataset_unpublish, "x");
  f.call(0, Op::dataset_unpublish, "never");  // as Dask: no error
  f.replies();
  check_error<weft::ValueError>([&] { f.call(0, Op::dataset_get, "x"); }, "value.no-dataset", "published: 'a'");
}

TEST_CASE("coordination requests and replies survive the wire", "[coordination]") {
  weft::dist::BatchWriter w;
  weft::detail::CoordRequest r;
  r.op = Op::queue_put;
  r.name = "jobs";
  r.owner = 42;
  r.limit = 3;
  r.timeout = 0.5;
  r.value = weft::Value::of(std::vector<double>(5000, 1.5));  // a large buffer
  weft::dist::write_coord_request(w, 77, std::move(r));
  CoordReply failed{CoordCaller{2, 78}, Status::failed, {}, "value.no-dataset", "dataset 'y' not found", false, {}};
  weft::dist::write_coord_reply(w, std::move(failed));
  weft::dist::write_coord_reply(w, CoordReply{CoordCaller{2, 79}, Status::ok, weft::Value::of(true), {}, {}, false, {}});
  weft::dist::BatchWriter::Parts parts = w.take();
  std::vector<std::vector<std::byte>> buffers;
  for (auto b : parts.buffers) buffers.emplace_back(b.begin(), b.end());
  weft::dist::BatchReader in(parts.body, buffers, 2);

  REQUIRE(in.op() == weft::dist::Op::coord);
  std::uint64_t id = 0;
  weft::detail::CoordRequest back = weft::dist::read_coord_request(in, id);
  CHECK(id == 77);
  CHECK(back.op == Op::queue_put);
  CHECK(back.name == "jobs");
  CHECK(back.owner == 42);
  CHECK(back.limit == 3);
  CHECK(back.timeout == 0.5);
  CHECK(back.value.get<std::vector<double>>() == std::vector<double>(5000, 1.5));

  REQUIRE(in.op() == weft::dist::Op::coord_reply);
  CoordReply reply = weft::dist::read_coord_reply(in);
  CHECK(reply.caller.request == 78);
  check_error<weft::ValueError>([&] { weft::dist::open_coord_reply(std::move(reply)); }, "value.no-dataset",
                                "dataset 'y' not found");
  REQUIRE(in.op() == weft::dist::Op::coord_reply);
  CHECK(weft::dist::open_coord_reply(weft::dist::read_coord_reply(in))->get<bool>());
  CHECK(in.at_end());
}

TEST_CASE("the primitives work between threads of one process", "[coordination]") {
  // Threads increment a shared variable under a lock: no update is lost.
  weft::Variable<long> count("threads-count");
  count.set(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      weft::Lock lock("threads-lock");
      weft::Variable<long> count("threads-count");
      for (int i = 0; i < 50; ++i) {
        REQUIRE(lock.acquire());
        count.set(count.get() + 1);
        lock.release();
      }
    });
  for (auto& t : threads) t.join();
  threads.clear();
  CHECK(count.get() == 200);

  // A lock held elsewhere: a timed acquire gives up, and release by a non-holder fails.
  weft::Lock held("threads-held");
  REQUIRE(held.acquire());
  weft::Lock other("threads-held");
  CHECK_FALSE(other.acquire(10ms));
  CHECK_FALSE(other.acquire(0s));
  CHECK(other.locked());
  check_error<weft::RuntimeError>([&] { other.release(); }, "runtime.released-too-often", "Lock 'threads-held'");
  weft::Lock copy = held;  // copies are the same holder
  copy.release();
  CHECK_FALSE(held.locked());
  check_error<weft::ValueError>([&] { held.acquire(-1s); }, "value.bad-timeout", "must not be negative");

  // Waiters on an event wake when another thread sets it.
  weft::Event go("threads-go");
  std::atomic<int> woken{0};
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      if (weft::Event("threads-go").wait()) ++woken;
    });
  CHECK_FALSE(go.wait(5ms));
  go.set();
  for (auto& t : threads) t.join();
  threads.clear();
  CHECK(woken == 3);
  CHECK(go.is_set());

  // A queue between threads; get and put time out with TimeoutError.
  weft::Queue<std::string> q("threads-queue", 1);
  threads.emplace_back([] {
    weft::Queue<std::string> q("threads-queue", 1);
    for (int i = 0; i < 5; ++i) q.put("item " + std::to_string(i));
  });
  for (int i = 0; i < 5; ++i) CHECK(q.get() == "item " + std::to_string(i));
  threads.back().join();
  threads.clear();
  check_error<weft::TimeoutError>([&] { q.get(5ms); }, "timeout.queue-get", "Queue 'threads-queue' stayed empty");
  q.put("one");
  CHECK(q.qsize() == 1);
  check_error<weft::TimeoutError>([&] { q.put("two", 5ms); }, "timeout.queue-put", "stayed full");
  CHECK(q.get() == "one");

  weft::Semaphore sem(2, "threads-sem");
  CHECK(sem.acquire());
  CHECK(sem.acquire());
  CHECK_FALSE(sem.acquire(1ms));
  CHECK(sem.get_value() == 2);
  sem.release();
  sem.release();
  check_error<weft::ValueError>([] { weft::Semaphore(3, "threads-sem").get_value(); }, "value.semaphore-max-leases",
                                "inconsistent max leases");
  check_error<weft::TimeoutError>([] { weft::Variable<int>("threads-unset").get(1ms); }, "timeout.variable-get",
                                  "Variable 'threads-unset' was not set");

  weft::publish_dataset("threads-data", std::vector<int>{1, 2, 3});
  CHECK(weft::get_dataset<std::vector<int>>("threads-data") == std::vector<int>{1, 2, 3});
  CHECK(weft::list_datasets() == std::vector<std::string>{"threads-data"});
  check_error<weft::ValueError>([] { weft::publish_dataset("threads-data", 1); }, "value.dataset-exists",
                                "threads-data");
  weft::unpublish_dataset("threads-data");
  CHECK(weft::list_datasets().empty());
}

TEST_CASE("a removed rank's leases go to the next waiters and its waiting calls are dropped", "[coordination]") {
  Fixture f;
  using A = std::vector<std::pair<CoordCaller, Status>>;
  CoordCaller l1 = f.call(1, Op::lock_acquire, "L", 7);
  CoordCaller s1 = f.call(1, Op::semaphore_acquire, "S", 9, 2);
  CoordCaller s2 = f.call(1, Op::semaphore_acquire, "S", 9, 2);  // one holder, two leases
  CoordCaller l2 = f.call(2, Op::lock_acquire, "L", 8);
  CoordCaller s3 = f.call(3, Op::semaphore_acquire, "S", 10, 2);
  f.call(1, Op::semaphore_acquire, "S", 11, 2, 5.0);  // rank 1 waits too
  f.call(1, Op::queue_get, "Q", 0, 0, 5.0);
  f.call(1, Op::event_wait, "E");
  CHECK(f.answered() == A{{l1, ok}, {s1, ok}, {s2, ok}});
  CHECK(f.state.waiting() == 5);
  f.state.remove_rank(1);
  // Its leases are released to the others in arrival order; it is not answered.
  CHECK(f.answered() == A{{l2, ok}, {s3, ok}});
  CHECK(f.state.waiting() == 0);
  CHECK(f.state.next_deadline() == CoordinationState::TimePoint::max());
  // Its queue get is gone: an item put now stays for the next getter.
  f.call(0, Op::queue_put, "Q", 0, 0, std::nullopt, weft::Value::of(5L));
  f.call(0, Op::queue_size, "Q");
  CHECK(f.replies().back().value.get<std::uint64_t>() == 1);
  f.call(0, Op::semaphore_value, "S", 0, 2);
  CHECK(f.replies().at(0).value.get<std::uint64_t>() == 1);
  f.call(0, Op::lock_locked, "L");
  CHECK(f.replies().at(0).value.get<bool>());
  // The survivors' leases are theirs to release.
  f.call(2, Op::lock_release, "L", 8);
  CHECK(f.answered().size() == 1);
  check_error<weft::RuntimeError>([&] { f.call(1, Op::lock_release, "L", 7); }, "runtime.released-too-often",
                                  "Lock 'L'");
}

namespace {
// A Queue::get_batch request of `count` items (0: all there are) from `rank`.
CoordCaller get_batch(Fixture& f, int rank, std::uint32_t count, std::optional<double> timeout = std::nullopt,
                      const std::string& name = "B", std::uint32_t maxsize = 0) {
  weft::detail::CoordRequest r;
  r.op = Op::queue_get_batch;
  r.name = name;
  r.count = count;
  r.limit = maxsize;
  r.timeout = timeout;
  CoordCaller caller{rank, f.next++};
  f.state.handle(caller, std::move(r), f.now);
  return caller;
}
std::vector<long> items_of(const CoordReply& r) {
  REQUIRE(r.batch);
  std::vector<long> out;
  for (const weft::Value& v : r.items) out.push_back(v.get<long>());
  return out;
}
}  // namespace

TEST_CASE("a batch get takes every item there, or waits for n in arrival order with single gets", "[coordination]") {
  Fixture f;
  auto put = [&](long item) { return f.call(0, Op::queue_put, "B", 0, 0, std::nullopt, weft::Value::of(item)); };
  for (long i = 1; i <= 3; ++i) put(i);
  f.replies();
  get_batch(f, 1, 0);
  CHECK(items_of(f.replies().at(0)) == std::vector<long>{1, 2, 3});
  get_batch(f, 1, 0);  // an empty queue: an empty batch, at once
  CHECK(items_of(f.replies().at(0)).empty());

  CoordCaller two = get_batch(f, 1, 2, 1.0);
  CoordCaller one = f.call(2, Op::queue_get, "B");  // waits behind the batch
  CoordCaller p10 = put(10);
  CHECK(f.answered() == std::vector{std::pair{p10, ok}});
  put(20);
  std::vector<CoordReply> r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].caller == two);
  CHECK(items_of(r[0]) == std::vector<long>{10, 20});
  put(30);
  r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].caller == one);
  CHECK(r[0].value.get<long>() == 30);

  // A batch that times out takes nothing, and the getter behind it is served.
  CoordCaller three = get_batch(f, 1, 3, 1.0);
  CoordCaller next = f.call(2, Op::queue_get, "B");
  put(5);
  f.replies();
  f.state.expire(f.start + 1s);
  r = f.replies();
  REQUIRE(r.size() == 2);
  CHECK(r[0].caller == three);
  CHECK(r[0].status == timed_out);
  CHECK(r[1].caller == next);
  CHECK(r[1].value.get<long>() == 5);

  // A bounded queue never holds more than maxsize: a larger batch is refused.
  check_error<weft::ValueError>([&] { get_batch(f, 1, 3, std::nullopt, "small", 2); }, "value.queue-batch",
                                "Queue 'small' holds at most 2 items");
  // A batch answer survives the wire and opens as the items.
  weft::dist::BatchWriter w;
  CoordReply batch{CoordCaller{1, 5}, Status::ok, {}, {}, {}, true, {}};
  batch.items.push_back(weft::Value::of(7L));
  batch.items.push_back(weft::Value::of(8L));
  weft::dist::write_coord_reply(w, std::move(batch));
  weft::dist::BatchWriter::Parts parts = w.take();
  std::vector<std::vector<std::byte>> buffers;
  for (auto b : parts.buffers) buffers.emplace_back(b.begin(), b.end());
  weft::dist::BatchReader in(parts.body, buffers, 1);
  REQUIRE(in.op() == weft::dist::Op::coord_reply);
  CoordReply back = weft::dist::read_coord_reply(in);
  CHECK(items_of(back) == std::vector<long>{7, 8});
  weft::Value opened = *weft::dist::open_coord_reply(std::move(back));
  CHECK(opened.get<weft::detail::CoordItems>().items.size() == 2);
}

TEST_CASE("Queue::get_batch and a Variable holding values between threads of one process", "[coordination]") {
  weft::Queue<int> q("threads-batch");
  for (int i = 0; i < 4; ++i) q.put(i);
  CHECK(q.get_batch(3) == std::vector<int>{0, 1, 2});
  CHECK(q.get_batch() == std::vector<int>{3});
  CHECK(q.get_batch().empty());
  std::thread feeder([] {
    weft::Queue<int> q("threads-batch");
    for (int i = 10; i < 15; ++i) q.put(i);
  });
  CHECK(q.get_batch(5) == std::vector<int>{10, 11, 12, 13, 14});
  feeder.join();
  check_error<weft::TimeoutError>([&] { q.get_batch(2, 5ms); }, "timeout.queue-get", "did not have 2 items");
  q.put(99);
  check_error<weft::TimeoutError>([&] { q.get_batch(2, 0s); }, "timeout.queue-get", "did not have 2 items");
  CHECK(q.qsize() == 1);  // a batch that timed out took nothing
  check_error<weft::ValueError>([] { weft::Queue<int>("threads-small", 2).get_batch(3); }, "value.queue-batch",
                                "Queue 'threads-small' holds at most 2 items");
}
