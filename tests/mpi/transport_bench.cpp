// Transport figures on this machine, printed as one JSON object per line:
//
//   weft_mpirun N tests/mpi/transport-bench [--round-trips R] [--messages M]
//                                          [--busy-poll-us U]
//
// "transport-pingpong": rank 0 and rank 1 bounce a 64-byte body R times
// while the other ranks idle in their poll loops, as workers with nothing to
// do would. "transport-stream": every rank but 0 sends M messages to rank 0,
// polling every 64 sends as a comm thread would, with at most 4096
// unacknowledged (rank 0 acknowledges every 1024); once with 64-byte bodies,
// once with 3,200-byte bodies (a batch of 100 operations of 32 bytes).
// --busy-poll-us sets IdlePolicy::busy_poll_seconds (default 0).
// Correctness is checked (echoed bytes, counts); figures are not judged.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "../../src/dist/transport.hpp"
#include "mpi_check.hpp"

namespace {

using weft::dist::InMessage;
using weft::dist::Transport;
using weft::mpi_test::check;
using Bytes = std::vector<std::byte>;
using Clock = std::chrono::steady_clock;
using Handler = std::function<void(InMessage&)>;

enum Tag : int { kPing = 1, kPong, kData, kAck, kGo, kPhaseDone };
constexpr std::size_t kAckEvery = 1024;
constexpr std::size_t kWindow = 4096;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Messages in arrival order. A phase takes only its own, so one that
// arrives with the last of the previous phase waits for its turn.
class Inbox {
 public:
  explicit Inbox(Transport& t) : t_(t) {}
  bool poll() { return t_.poll(push_); }
  /// The oldest message, polling (with back-off) until there is one.
  InMessage next() {
    while (queue_.empty()) t_.idle(poll());
    InMessage m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }
  /// Takes the queued messages with this tag up to the first other one.
  std::size_t take(int tag) {
    std::size_t n = 0;
    for (; !queue_.empty() && queue_.front().tag == tag; ++n) queue_.pop_front();
    return n;
  }

 private:
  Transport& t_;
  std::deque<InMessage> queue_;
  Handler push_ = [this](InMessage& m) { queue_.push_back(std::move(m)); };
};

void expect(InMessage m, int tag) {
  check(m.tag == tag, "expected tag " + std::to_string(tag) + ", got " + std::to_string(m.tag) +
                          " from rank " + std::to_string(m.source));
}

void end_phase(Transport& t, int first) {
  for (int r = first; r < t.size(); ++r) t.send(r, kPhaseDone, {});
}

void pingpong(Transport& t, Inbox& inbox, int round_trips) {
  constexpr int kWarmUp = 100;
  Bytes body(64);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::byte>(i);
  if (t.rank() == 0) {
    std::vector<double> times;
    times.reserve(static_cast<std::size_t>(round_trips));
    for (int i = 0; i < kWarmUp + round_trips; ++i) {
      const Clock::time_point start = Clock::now();
      t.send(1, kPing, body);
      InMessage pong = inbox.next();
      if (i >= kWarmUp) times.push_back(seconds_since(start) * 1e6);
      check(pong.tag == kPong && pong.body == body, "the pong echoes the ping");
    }
    end_phase(t, 1);
    std::sort(times.begin(), times.end());
    double sum = 0;
    for (double x : times) sum += x;
    std::printf("{\"bench\": \"transport-pingpong\", \"ranks\": %d, \"round_trips\": %d, "
                "\"median_us\": %.2f, \"mean_us\": %.2f, \"p90_us\": %.2f}\n",
                t.size(), round_trips, times[times.size() / 2],
                sum / static_cast<double>(times.size()), times[times.size() * 9 / 10]);
  } else if (t.rank() == 1) {
    for (InMessage m = inbox.next(); m.tag != kPhaseDone; m = inbox.next())
      t.send(0, kPong, std::move(m.body));
  } else {
    expect(inbox.next(), kPhaseDone);
  }
}

void stream(Transport& t, Inbox& inbox, std::size_t messages, std::size_t body_bytes) {
  const std::size_t senders = static_cast<std::size_t>(t.size() - 1);
  if (t.rank() == 0) {
    std::vector<std::size_t> from(static_cast<std::size_t>(t.size()), 0);
    const Clock::time_point start = Clock::now();
    for (int r = 1; r < t.size(); ++r) t.send(r, kGo, {});
    for (std::size_t received = 0; received < messages * senders; ++received) {
      InMessage m = inbox.next();
      check(m.tag == kData && m.body.size() == body_bytes,
            "a stream message, got tag " + std::to_string(m.tag));
      if (++from[static_cast<std::size_t>(m.source)] % kAckEvery == 0) t.send(m.source, kAck, {});
    }
    const double seconds = seconds_since(start);
    end_phase(t, 1);  // after every ack, so none strays into the next phase
    const double total = static_cast<double>(messages * senders);
    std::printf("{\"bench\": \"transport-stream\", \"ranks\": %d, \"senders\": %zu, "
                "\"body_bytes\": %zu, \"messages\": %.0f, \"seconds\": %.4f, "
                "\"messages_per_s\": %.0f, \"us_per_message\": %.3f}\n",
                t.size(), senders, body_bytes, total, seconds, total / seconds,
                seconds * 1e6 / total);
  } else {
    expect(inbox.next(), kGo);
    const Bytes body(body_bytes, std::byte{7});
    std::size_t acked = 0;
    for (std::size_t sent = 0; sent < messages;) {
      acked += inbox.take(kAck) * kAckEvery;
      if (sent - acked >= kWindow) {
        t.idle(inbox.poll());
        continue;
      }
      t.send(0, kData, body);
      if (++sent % 64 == 0) inbox.poll();
    }
    InMessage m = inbox.next();
    for (; m.tag == kAck; m = inbox.next()) {}
    expect(std::move(m), kPhaseDone);
  }
}

long option(int argc, char** argv, const std::string& name, long fallback) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (argv[i] == "--" + name) return std::stol(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &weft::mpi_test::world_rank());
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if ((arg != "--round-trips" && arg != "--messages" && arg != "--busy-poll-us") ||
        i + 1 >= argc)
      weft::mpi_test::fail(
          "usage: transport-bench [--round-trips R] [--messages M] [--busy-poll-us U], got " + arg);
  }
  {
    weft::dist::IdlePolicy policy;
    policy.busy_poll_seconds =
        static_cast<double>(option(argc, argv, "busy-poll-us", 0)) * 1e-6;
    Transport t(MPI_COMM_WORLD, policy);
    check(t.size() >= 2, "run with 2 or more ranks");
    Inbox inbox(t);
    pingpong(t, inbox, static_cast<int>(option(argc, argv, "round-trips", 20000)));
    const auto messages = static_cast<std::size_t>(option(argc, argv, "messages", 200000));
    stream(t, inbox, messages, 64);
    stream(t, inbox, messages, 3200);
  }
  MPI_Finalize();
  return 0;
}
