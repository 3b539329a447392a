// The Transport (src/dist/transport.hpp) on 2 or more ranks; run by
// tests/mpi/transport.sh.
//
//   transport-test [--comm-thread] [--huge]
//
// By default MPI is initialised with MPI_THREAD_FUNNELED and the main thread
// is the comm thread (a worker's arrangement). --comm-thread initialises
// MPI_THREAD_SERIALIZED and runs every step on a second thread (rank 0's).
// --huge also sends a buffer over 1 GiB from rank 0 to rank 1 (two chunks;
// about 2 GiB of memory in all).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "../../src/dist/transport.hpp"
#include "mpi_check.hpp"

namespace {

using weft::dist::IdlePolicy;
using weft::dist::InMessage;
using weft::dist::Transport;
using weft::mpi_test::check;
using weft::mpi_test::check_throws;
using Bytes = std::vector<std::byte>;
using Clock = std::chrono::steady_clock;
using Handler = std::function<void(InMessage&)>;

constexpr std::size_t kInline = Transport::kInlineBuffer;
constexpr std::size_t kMiB = std::size_t{1} << 20;

// Byte i of the stream named `seed`: every buffer's contents can be checked
// without keeping a copy.
std::byte pattern(std::uint64_t seed, std::size_t i) {
  return static_cast<std::byte>((seed * 131 + i * 7 + (i >> 9)) & 0xff);
}

Bytes make_bytes(std::size_t size, std::uint64_t seed) {
  Bytes out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = pattern(seed, i);
  return out;
}

bool has_pattern(std::span<const std::byte> bytes, std::uint64_t seed) {
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (bytes[i] != pattern(seed, i)) return false;
  return true;
}

// Polls until `done()`, idling between rounds as the runtime's loop does. A
// message that never comes is caught by the script's timeout.
template <class Done>
void poll_until(Transport& t, const Handler& on_message, Done done) {
  while (!done()) t.idle(t.poll(on_message));
}

const Handler unexpected = [](InMessage& m) {
  weft::mpi_test::fail("unexpected message from rank " + std::to_string(m.source) + " tag " +
                       std::to_string(m.tag));
};

void check_errors(Transport& t) {
  check_throws<weft::ValueError>([&] { t.send(-1, 0, {}); }, "value.bad-destination");
  check_throws<weft::ValueError>([&] { t.send(t.size(), 0, {}); }, "value.bad-destination");
  check_throws<weft::ValueError>([&] { t.send(0, -1, {}); }, "value.bad-tag");
  check_throws<weft::ValueError>([&] { t.send(0, Transport::kMaxTag + 1, {}); }, "value.bad-tag");
  // Small buffers go inline: 2^17 views of one 16 KiB - 1 array exceed MPI's
  // int count, which send() finds before copying anything.
  const Bytes small(kInline - 1);
  const std::vector<std::span<const std::byte>> too_many(std::size_t{1} << 17, small);
  check_throws<weft::ValueError>([&] { t.send((t.rank() + 1) % t.size(), 0, {}, too_many); },
                                 "value.message-too-large");
  check(t.pending_sends() == 0, "refused sends are not pending");
  for (IdlePolicy bad : {IdlePolicy{-1e-6, 20e-6, 1e-3}, IdlePolicy{200e-6, 0, 1e-3},
                         IdlePolicy{200e-6, 1e-3, 20e-6}, IdlePolicy{200e-6, 20e-6, 1e-3, -1e-6}})
    check_throws<weft::ValueError>([&] { Transport refused(MPI_COMM_WORLD, bad); },
                                   "value.idle-policy");
}

// A message to this rank comes from the next poll, not from send() itself;
// one sent by on_message waits for the poll after.
void check_self(Transport& t) {
  const Bytes small = make_bytes(10, 1), large = make_bytes(kInline + 5, 2);
  std::vector<InMessage> got;
  const Handler keep = [&](InMessage& m) {
    if (got.empty()) t.send(t.rank(), 8, make_bytes(3, 4));
    got.push_back(std::move(m));
  };
  t.send(t.rank(), 7, make_bytes(20, 3), {small, large});
  check(t.pending_sends() == 0, "a message to self is no MPI send");
  check(t.poll(keep), "poll reports the message to self");
  check(got.size() == 1, "the first poll delivers exactly the message sent before it");
  const InMessage& m = got[0];
  check(m.source == t.rank() && m.tag == 7, "source and tag of a message to self");
  check(m.body == make_bytes(20, 3), "body of a message to self");
  check(m.buffers.size() == 2 && m.buffers[0] == small && m.buffers[1] == large,
        "buffers of a message to self");
  check(t.poll(keep) && got.size() == 2, "a message to self sent by on_message comes next poll");
  check(got[1].tag == 8 && got[1].body == make_bytes(3, 4) && got[1].buffers.empty(),
        "contents of the second message to self");
  MPI_Barrier(t.comm());  // before other ranks' messages can come
}

// Every rank sends `per_peer` messages to every other rank, interleaved and
// of varied sizes; each carries (source, sequence number) and, now and then,
// a small or a large buffer. Receivers check counts, contents and that each
// sender's messages arrive in the order sent.
void check_all_to_all(Transport& t, std::uint32_t per_peer) {
  const int n = t.size(), me = t.rank();
  auto seed = [](int source, std::uint32_t seq, std::uint32_t part) {
    return (static_cast<std::uint64_t>(source) << 40) ^ (std::uint64_t{seq} << 8) ^ part;
  };
  std::vector<std::uint32_t> next_seq(static_cast<std::size_t>(n), 0);
  std::size_t received = 0;
  const Handler on_message = [&](InMessage& m) {
    check(m.source != me && m.body.size() >= 8, "an all-to-all message from another rank");
    std::uint32_t source = 0, seq = 0;
    std::memcpy(&source, m.body.data(), 4);
    std::memcpy(&seq, m.body.data() + 4, 4);
    check(static_cast<int>(source) == m.source, "InMessage::source names the sender");
    check(seq == next_seq[source]++, "messages from rank " + std::to_string(source) +
                                         " arrive in order: got " + std::to_string(seq));
    check(m.tag == static_cast<int>(seq % (Transport::kMaxTag + 1)), "tag of message " +
                                                                         std::to_string(seq));
    check(m.body.size() == 8 + (seq * 37) % 200 &&
              has_pattern(std::span(m.body).subspan(8), seed(m.source, seq, 0)),
          "body of message " + std::to_string(seq));
    const std::size_t buffers = (seq % 10 == 0) + (seq % 50 == 0);
    check(m.buffers.size() == buffers, "buffer count of message " + std::to_string(seq));
    if (seq % 10 == 0)
      check(m.buffers[0].size() == seq % 50 && has_pattern(m.buffers[0], seed(m.source, seq, 1)),
            "small buffer of message " + std::to_string(seq));
    if (seq % 50 == 0)
      check(m.buffers[1].size() == kInline + seq &&
                has_pattern(m.buffers[1], seed(m.source, seq, 2)),
            "large buffer of message " + std::to_string(seq));
    ++received;
  };
  for (std::uint32_t seq = 0; seq < per_peer; ++seq) {
    for (int dest = 0; dest < n; ++dest) {
      if (dest == me) continue;
      Bytes body(8);
      std::memcpy(body.data(), &me, 4);
      std::memcpy(body.data() + 4, &seq, 4);
      Bytes payload = make_bytes((seq * 37) % 200, seed(me, seq, 0));
      body.insert(body.end(), payload.begin(), payload.end());
      auto owned = std::make_shared<std::vector<Bytes>>();
      if (seq % 10 == 0) owned->push_back(make_bytes(seq % 50, seed(me, seq, 1)));
      if (seq % 50 == 0) owned->push_back(make_bytes(kInline + seq, seed(me, seq, 2)));
      std::vector<std::span<const std::byte>> buffers(owned->begin(), owned->end());
      t.send(dest, static_cast<int>(seq % (Transport::kMaxTag + 1)), std::move(body),
             std::move(buffers), owned);
    }
    if (seq % 64 == 63) t.poll(on_message);
  }
  const std::size_t expected = std::size_t{per_peer} * static_cast<std::size_t>(n - 1);
  poll_until(t, on_message, [&] { return received == expected; });
  t.flush(on_message);
  check(received == expected, "no message beyond those sent");
  check(t.pending_sends() == 0, "flush completes every send");
  MPI_Barrier(t.comm());
}

// Each rank sends four messages to the next rank: large buffers around
// kInlineBuffer and of 64 MiB, and empty bodies and buffers. The message
// without buffers right after the large one must wait for it.
void check_large_and_empty(Transport& t) {
  const int next = (t.rank() + 1) % t.size(), prev = (t.rank() + t.size() - 1) % t.size();
  const std::vector<std::size_t> sizes = {kInline - 1, kInline, kInline + 1, 0, 64 * kMiB, 3, kMiB};
  auto owned = std::make_shared<std::vector<Bytes>>();
  for (std::size_t i = 0; i < sizes.size(); ++i)
    owned->push_back(make_bytes(sizes[i], static_cast<std::uint64_t>(t.rank()) * 100 + i));
  const Bytes second_large = make_bytes(20 * kMiB, static_cast<std::uint64_t>(t.rank()) * 100 + 50);
  t.send(next, 1, make_bytes(100, static_cast<std::uint64_t>(t.rank())),
         {owned->begin(), owned->end()}, owned);
  t.send(next, 2, {});
  t.send(next, 3, {}, {std::span<const std::byte>(), std::span<const std::byte>()});
  t.send(next, 4, make_bytes(5, 9), {second_large});

  std::vector<InMessage> got;
  poll_until(t, [&](InMessage& m) { got.push_back(std::move(m)); },
             [&] { return got.size() == 4; });
  for (std::size_t i = 0; i < got.size(); ++i)
    check(got[i].source == prev && got[i].tag == static_cast<int>(i) + 1,
          "message " + std::to_string(i + 1) + " from the previous rank, in order");
  const InMessage& a = got[0];
  check(a.body == make_bytes(100, static_cast<std::uint64_t>(prev)), "body beside large buffers");
  check(a.buffers.size() == sizes.size(), "buffer count of the large message");
  for (std::size_t i = 0; i < sizes.size(); ++i)
    check(a.buffers[i].size() == sizes[i] &&
              has_pattern(a.buffers[i], static_cast<std::uint64_t>(prev) * 100 + i),
          "buffer " + std::to_string(i) + " of " + std::to_string(sizes[i]) + " bytes");
  check(got[1].body.empty() && got[1].buffers.empty(), "empty body, no buffers");
  check(got[2].body.empty() && got[2].buffers.size() == 2 && got[2].buffers[0].empty() &&
            got[2].buffers[1].empty(),
        "empty body, two empty buffers");
  check(got[3].body == make_bytes(5, 9) && got[3].buffers.size() == 1 &&
            got[3].buffers[0].size() == 20 * kMiB &&
            has_pattern(got[3].buffers[0], static_cast<std::uint64_t>(prev) * 100 + 50),
        "a second large message");
  t.flush(unexpected);
  MPI_Barrier(t.comm());
}

// keep_alive: released at once when every buffer went inline, and only after
// completion when a buffer is sent from place. Rank 1 does not poll until
// rank 0 has looked, so the large send cannot have completed by then.
void check_keep_alive(Transport& t) {
  std::weak_ptr<Bytes> small_watch, large_watch;
  if (t.rank() == 0) {
    auto small = std::make_shared<Bytes>(make_bytes(100, 5));
    small_watch = small;
    t.send(1, 1, {}, {*small}, small);
    small.reset();
    check(small_watch.expired(), "keep_alive of inline buffers is released by send()");
    auto large = std::make_shared<Bytes>(make_bytes(8 * kMiB, 6));
    large_watch = large;
    t.send(1, 2, {}, {*large}, large);
    large.reset();
    check(!large_watch.expired(), "keep_alive is held while a buffer is being sent");
    check(t.pending_sends() >= 1, "the large send is pending");
  }
  MPI_Barrier(t.comm());
  if (t.rank() == 0) {
    t.flush(unexpected);
    check(large_watch.expired(), "keep_alive is released once the send completed");
    check(t.pending_sends() == 0, "nothing pending after flush");
  } else if (t.rank() == 1) {
    std::vector<InMessage> got;
    poll_until(t, [&](InMessage& m) { got.push_back(std::move(m)); },
               [&] { return got.size() == 2; });
    check(got[0].buffers.size() == 1 && got[0].buffers[0] == make_bytes(100, 5),
          "the inline buffer arrived");
    check(got[1].buffers.size() == 1 && got[1].buffers[0].size() == 8 * kMiB &&
              has_pattern(got[1].buffers[0], 6),
          "the kept-alive buffer arrived");
  }
  MPI_Barrier(t.comm());
}

// Bytes that are not a transport message, sent around the transport on its
// own communicator, are refused with runtime.bad-message.
void check_bad_messages(Transport& t) {
  const std::vector<std::pair<int, Bytes>> bad = {
      {5, Bytes(2)},                       // shorter than the trailer
      {Transport::kDataTag, Bytes(4)},     // a chunk without a body
      {6, [] {                             // names more buffers than it has room for
         Bytes b(8);
         const std::uint32_t count = 1000;
         std::memcpy(b.data() + 4, &count, 4);
         return b;
       }()},
  };
  if (t.rank() == 0) {
    for (const auto& [tag, bytes] : bad)
      MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 1, tag, t.comm());
  } else if (t.rank() == 1) {
    for (std::size_t i = 0; i < bad.size(); ++i)
      check_throws<weft::RuntimeError>([&] { poll_until(t, unexpected, [] { return false; }); },
                                       "runtime.bad-message");
  }
  MPI_Barrier(t.comm());
}

// wake() from another thread cuts a 30 s pause short, whether it comes
// during the sleep or just before it; none is lost in a race with going to
// sleep (a lost one would cost 30 s and fail the check).
void check_wake() {
  // On MPI_COMM_SELF, so that its destructor waits for no other rank.
  Transport sleepy(MPI_COMM_SELF, IdlePolicy{0, 30, 30, 0});
  const auto limit = std::chrono::seconds(20);

  Clock::time_point start = Clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    sleepy.wake();
  });
  sleepy.idle(false);
  waker.join();
  check(Clock::now() - start < limit, "wake() during the sleep ends it");

  start = Clock::now();
  std::thread([&] { sleepy.wake(); }).join();
  sleepy.idle(false);
  check(Clock::now() - start < limit, "wake() before idle() cuts it short");

  std::atomic<std::uint32_t> round{0};
  constexpr std::uint32_t kRounds = 300;
  start = Clock::now();
  std::thread racer([&] {
    for (std::uint32_t seen = 0; seen < kRounds; ++seen) {
      round.wait(seen);  // until the comm thread is about to idle
      sleepy.wake();
    }
  });
  for (std::uint32_t i = 1; i <= kRounds; ++i) {
    round.store(i);
    round.notify_one();
    sleepy.idle(false);
  }
  racer.join();
  check(Clock::now() - start < limit, "no wake() lost in " + std::to_string(kRounds) + " races");
}

// An idle rank uses little CPU: poll and idle for a second with nothing in
// flight and compare the process's CPU time with the wall time.
void check_idle_cpu(Transport& t) {
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  };
  MPI_Barrier(t.comm());
  const double cpu_start = cpu_seconds();
  const Clock::time_point start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(1)) t.idle(t.poll(unexpected));
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  const double share = (cpu_seconds() - cpu_start) / wall;
  std::printf("rank %d: idle for %.2f s used %.1f%% of a core\n", t.rank(), wall, share * 100);
  check(share < 0.2,
        "an idle rank uses under 20% of a core, used " + std::to_string(share * 100) + "%");
  MPI_Barrier(t.comm());
}

// The destructor waits until every rank's sends have completed, so a ring of
// transports destroyed right after sending large buffers finishes (a rank
// that left early would strand its sender: the script's timeout fails it).
void check_destructor_completes(const Bytes& large) {
  Transport t(MPI_COMM_WORLD);
  t.send((t.rank() + 1) % t.size(), 0, make_bytes(10, 1), {large});
}

// Over 1 GiB in one buffer: two chunks on the wire, one buffer on arrival.
void check_huge(Transport& t) {
  const std::size_t size = Transport::kChunk + 3;
  if (t.rank() == 0) {
    auto big = std::make_shared<Bytes>(make_bytes(size, 77));
    t.send(1, 9, {}, {*big}, big);
    t.flush(unexpected);
  } else if (t.rank() == 1) {
    std::vector<InMessage> got;
    poll_until(t, [&](InMessage& m) { got.push_back(std::move(m)); }, [&] { return !got.empty(); });
    check(got[0].buffers.size() == 1 && got[0].buffers[0].size() == size &&
              has_pattern(got[0].buffers[0], 77),
          "a buffer of kChunk + 3 bytes arrives whole");
  }
  MPI_Barrier(t.comm());
}

void run_steps(bool huge) {
  Transport t(MPI_COMM_WORLD);
  check(t.size() >= 2, "run with 2 or more ranks");
  check_errors(t);
  check_self(t);
  check_all_to_all(t, 500);
  check_large_and_empty(t);
  check_keep_alive(t);
  check_bad_messages(t);
  check_wake();
  check_idle_cpu(t);
  check_destructor_completes(make_bytes(4 * kMiB, 3));
  if (huge) check_huge(t);
}

}  // namespace

int main(int argc, char** argv) {
  bool comm_thread = false, huge = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--comm-thread")
      comm_thread = true;
    else if (arg == "--huge")
      huge = true;
    else
      weft::mpi_test::fail("unknown argument " + arg + " (use --comm-thread, --huge)");
  }
  check_throws<weft::RuntimeError>([] { Transport early(MPI_COMM_WORLD); },
                                   "runtime.mpi-not-initialized");

  const int level = comm_thread ? MPI_THREAD_SERIALIZED : MPI_THREAD_FUNNELED;
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, level, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &weft::mpi_test::world_rank());
  check(provided >= level, "MPI provides thread level " + std::to_string(level));

  if (comm_thread) {
    std::thread(run_steps, huge).join();
  } else {
    std::thread([] {
      check_throws<weft::RuntimeError>([] { Transport off_main(MPI_COMM_WORLD); },
                                       "runtime.mpi-thread-level");
    }).join();
    run_steps(huge);
  }
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Finalize();
  if (weft::mpi_test::world_rank() == 0)
    std::printf("transport-test: all checks passed on %d ranks (%s)\n", size,
                comm_thread ? "MPI_THREAD_SERIALIZED, second thread"
                            : "MPI_THREAD_FUNNELED, main thread");
  return 0;
}
