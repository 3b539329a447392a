// Coordination primitives under contention from tasks on several workers
// (docs/architecture.md, "Coordination"): Catch2 cases run by the client
// inside weft::main. Run by tests/mpi/coordination.sh without a launcher and
// on 1 to 4 ranks; every case must hold on all of them (with one rank, tasks
// run on local threads and the state lives in-process).
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>

#include "catch_session.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

using namespace std::chrono_literals;

namespace {

using weft::mpi_test::client;
bool distributed() { return client().nworkers() > 0; }

// Task i pinned to worker rank 1 + i mod workers (anywhere without workers).
weft::SubmitOptions round_robin(long i) {
  weft::SubmitOptions o;
  o.pure = false;
  if (distributed()) o.worker = 1 + static_cast<int>(i % client().nworkers());
  return o;
}

// A read-modify-write of a shared Variable, safe only under the lock.
int add_under_lock(weft::Lock lock, long) {
  weft::Variable<long> count("count");
  if (!lock.acquire()) throw std::logic_error("acquire without a timeout returned false");
  long seen = count.get();
  std::this_thread::sleep_for(1ms);  // widen the window a lost update needs
  count.set(seen + 1);
  lock.release();
  return weft::rank();
}

// Adds `delta` to the Variable `name` under the lock "holders-lock"; returns the new value.
long add_to(const std::string& name, long delta) {
  weft::Lock lock("holders-lock");
  weft::Variable<long> v(name);
  lock.acquire();
  long now = v.get() + delta;
  v.set(now);
  if (delta > 0) {
    weft::Variable<long> most("most-holders");
    if (now > most.get()) most.set(now);
  }
  lock.release();
  return now;
}

int hold_semaphore(long) {
  weft::Semaphore sem(2, "two-at-once");
  if (!sem.acquire()) throw std::logic_error("acquire without a timeout returned false");
  add_to("holders", 1);
  std::this_thread::sleep_for(5ms);
  add_to("holders", -1);
  sem.release();
  return weft::rank();
}

long feed_queue(long i) {
  weft::Queue<long>("items").put(i * i);
  return i;
}

// Says it is here, then waits for the client's event.
bool wait_for_go(long) {
  weft::Queue<int>("arrived").put(weft::rank());
  return weft::Event("go").wait(60s);
}

// Timeouts seen from a task: the lock is held by the client.
std::vector<int> timeouts_in_task(long) {
  std::vector<int> out;
  out.push_back(weft::Lock("client-held").acquire(20ms));
  out.push_back(weft::Event("never-set").wait(20ms));
  try {
    weft::Queue<long>("always-empty").get(20ms);
    out.push_back(-1);
  } catch (const weft::TimeoutError& e) {
    out.push_back(e.id() == "timeout.queue-get" ? 2 : -2);
  }
  return out;
}

long release_unheld(long) {
  weft::Lock("nobody-holds").release();
  return 0;
}

double sum_dataset(long) {
  std::vector<double> w = weft::get_dataset<std::vector<double>>("weights");
  return std::accumulate(w.begin(), w.end(), 0.0);
}

long read_future_dataset(long) { return weft::get_dataset<long>("published-future"); }

long read_future_variable(long) { return weft::Variable<long>("variable-future").get(); }

// Waits for n items of the queue "batch-in" at once and adds them up.
long sum_batch(long n) {
  long sum = 0;
  for (long x : weft::Queue<long>("batch-in").get_batch(static_cast<std::uint32_t>(n), 60s)) sum += x;
  return sum;
}

long feed_batch(long i) {
  weft::Queue<long>("batch-out").put(i * i);
  return i;
}

long inc(long x) { return x + 1; }

// Holds its dependents back until the client sets the gate.
long gate(long x) {
  if (!weft::Event("ff-gate").wait(60s)) throw std::runtime_error("the gate stayed shut");
  return x;
}

long mark_done(long x) {
  weft::Variable<long>("fired").set(x + 1000);
  return x;
}

}  // namespace

TEST_CASE("tasks on several workers increment a variable under a lock without losing updates", "[coordination]") {
  weft::Variable<long> count("count");
  count.set(0);
  weft::Lock lock("count-lock");
  // The lock travels to the tasks as an argument; each is a holder of its own
  // there. The tasks take turns over the workers, so they contend across ranks.
  std::vector<weft::Future<int>> tasks;
  for (long i = 0; i < 40; ++i) tasks.push_back(client().submit(round_robin(i), add_under_lock, lock, i));
  std::vector<int> ranks = client().gather(tasks);
  CHECK(count.get() == 40);
  CHECK_FALSE(lock.locked());
  CHECK(std::set<int>(ranks.begin(), ranks.end()).size() == static_cast<std::size_t>(std::max(1, client().nworkers())));
}

TEST_CASE("a semaphore of two never has more than two holders", "[coordination]") {
  weft::Variable<long>("holders").set(0);
  weft::Variable<long>("most-holders").set(0);
  std::vector<weft::Future<int>> tasks;
  for (long i = 0; i < 24; ++i) tasks.push_back(client().submit(round_robin(i), hold_semaphore, i));
  client().gather(tasks);
  long most = weft::Variable<long>("most-holders").get();
  CHECK(most >= 1);
  CHECK(most <= 2);
  CHECK(weft::Variable<long>("holders").get() == 0);
  CHECK(weft::Semaphore(2, "two-at-once").get_value() == 0);
}

TEST_CASE("a queue fed by tasks gives the client every item once", "[coordination]") {
  std::vector<long> items(60);
  std::iota(items.begin(), items.end(), 0L);
  weft::SubmitOptions impure;
  impure.pure = false;
  auto futures = client().map(feed_queue, items, impure);
  weft::Queue<long> q("items");
  std::vector<long> got;
  for (std::size_t i = 0; i < items.size(); ++i) got.push_back(q.get(60s));
  std::sort(got.begin(), got.end());
  std::vector<long> want;
  for (long i : items) want.push_back(i * i);
  CHECK(got == want);
  client().gather(futures);
  CHECK(q.qsize() == 0);
  CHECK_THROWS_AS(q.get(10ms), weft::TimeoutError);
}

TEST_CASE("an event set by the client wakes tasks waiting on every worker", "[coordination]") {
  // One waiting task per worker (pinned), so they wait at the same time.
  std::vector<weft::Future<bool>> waiting;
  const int nworkers = std::max(1, client().nworkers());
  for (int w = 0; w < nworkers; ++w) {
    weft::SubmitOptions o;
    o.pure = false;
    if (distributed()) o.worker = w + 1;
    waiting.push_back(client().submit(o, wait_for_go, static_cast<long>(w)));
  }
  weft::Queue<int> arrived("arrived");
  std::set<int> ranks;
  for (int w = 0; w < nworkers; ++w) ranks.insert(arrived.get(60s));
  CHECK(static_cast<int>(ranks.size()) == (distributed() ? nworkers : 1));
  for (const auto& f : waiting) CHECK_FALSE(f.done());
  weft::Event("go").set();
  for (bool woken : client().gather(waiting)) CHECK(woken);
}

TEST_CASE("timeouts in tasks return false or throw TimeoutError; errors reach the client", "[coordination]") {
  weft::Lock held("client-held");
  REQUIRE(held.acquire());
  weft::SubmitOptions impure;
  impure.pure = false;
  CHECK(client().submit(impure, timeouts_in_task, 0L).result() == std::vector<int>{0, 0, 2});
  held.release();
  try {
    client().submit(impure, release_unheld, 0L).result();
    FAIL("release of a lock nobody holds should fail the task");
  } catch (const weft::TaskError& e) {
    CHECK_THAT(e.original_message(), Catch::Matchers::Contains("Lock 'nobody-holds' was released by an object"));
    CHECK_THAT(e.what(), Catch::Matchers::Contains("released-too-often"));
  }
}

TEST_CASE("datasets published by the client are read by later computations", "[coordination]") {
  client().publish_dataset("weights", std::vector<double>{0.5, 1.5, 2.0});
  CHECK(client().submit(sum_dataset, 1L).result() == 4.0);
  try {
    client().publish_dataset("weights", std::vector<double>{});
    FAIL("publishing a name twice should throw");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.dataset-exists");
  }
  client().publish_dataset("weights", std::vector<double>{1.0}, true);
  CHECK(client().submit(sum_dataset, 2L).result() == 1.0);

  // A published future keeps its result on the cluster after the client drops it.
  std::string key;
  {
    weft::Future<long> f = client().submit(inc, 41L);
    key = f.key().str();
    client().publish_dataset("published-future", f);
  }
  auto f = client().get_dataset<weft::Future<long>>("published-future");
  CHECK(f.key().str() == key);
  CHECK(client().submit(inc, f).result() == 43);
  CHECK(client().get_dataset<long>("published-future") == 42);
  if (distributed()) {
    // A future cannot travel to a task as a value: it is refused with a reason.
    try {
      client().submit(read_future_dataset, 0L).result();
      FAIL("reading a future dataset in a task should fail");
    } catch (const weft::TaskError& e) {
      CHECK_THAT(e.original_message(), Catch::Matchers::Contains("cannot be sent to worker rank"));
    }
  }
  CHECK(client().list_datasets() == std::vector<std::string>{"published-future", "weights"});
  client().unpublish_dataset("weights");
  try {
    client().get_dataset<std::vector<double>>("weights");
    FAIL("an unpublished dataset should be gone");
  } catch (const weft::ValueError& e) {
    CHECK(e.id() == "value.no-dataset");
    CHECK_THAT(e.text(), Catch::Matchers::Contains("dataset 'weights' not found (published: 'published-future')"));
  }
  client().unpublish_dataset("published-future");
}

TEST_CASE("Queue::get_batch takes n items, or every item there, in tasks and on the client", "[coordination]") {
  weft::SubmitOptions impure;
  impure.pure = false;
  weft::Queue<long> in("batch-in");
  auto sum = client().submit(impure, sum_batch, 5L);  // waits for all five
  for (long i = 1; i <= 5; ++i) in.put(i);
  CHECK(sum.result() == 15);
  CHECK(in.qsize() == 0);

  std::vector<long> items(20);
  std::iota(items.begin(), items.end(), 0L);
  auto fed = client().map(feed_batch, items, impure);
  weft::Queue<long> out("batch-out");
  std::vector<long> got = out.get_batch(20, 60s);
  std::sort(got.begin(), got.end());
  std::vector<long> want;
  for (long i : items) want.push_back(i * i);
  CHECK(got == want);
  client().gather(fed);
  CHECK(out.get_batch().empty());
  out.put(3);
  out.put(4);
  CHECK(out.get_batch() == std::vector<long>{3, 4});
  CHECK_THROWS_AS(out.get_batch(1, 10ms), weft::TimeoutError);
}

TEST_CASE("a Variable holding a future keeps its result on the cluster", "[coordination]") {
  weft::Variable<long> v("variable-future");
  std::string key;
  {
    weft::Future<long> f = client().submit(inc, 99L);
    key = f.key().str();
    v.set(f);
  }
  // The client dropped its future: the variable's keeps the result.
  CHECK(v.get() == 100);
  auto f = weft::Variable<weft::Future<long>>("variable-future").get();
  CHECK(f.key().str() == key);
  CHECK(client().submit(inc, f).result() == 101);
  if (distributed()) {
    try {
      client().submit(read_future_variable, 0L).result();
      FAIL("reading a variable holding a future in a task should fail");
    } catch (const weft::TaskError& e) {
      CHECK_THAT(e.original_message(), Catch::Matchers::Contains("cannot be sent to worker rank"));
    }
  }
  v.set(7);
  CHECK(v.get() == 7);
  v.remove();
  CHECK_THROWS_AS(v.get(10ms), weft::TimeoutError);
}

TEST_CASE("fire_and_forget runs a task the client no longer refers to", "[coordination]") {
  weft::SubmitOptions impure;
  impure.pure = false;
  {
    // The task waits behind the gate while the client drops its future.
    weft::Future<long> input = client().submit(impure, gate, 7L);
    weft::Future<long> effect = client().submit(impure, mark_done, input);
    weft::fire_and_forget(effect);
  }
  weft::Event("ff-gate").set();
  CHECK(weft::Variable<long>("fired").get(60s) == 1007);
}

int main(int argc, char** argv) { return weft::mpi_test::run_catch_session(argc, argv, "coordination-test"); }
