// Transport: see transport.hpp for the wire format and the threading rules.
#include "transport.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "weft/error.hpp"

namespace weft::dist {
namespace {

using Clock = std::chrono::steady_clock;

Clock::duration from_seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

bool is_inline(std::size_t size) { return size < Transport::kInlineBuffer; }

template <class T>
void append_raw(std::vector<std::byte>& out, T value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

template <class T>
T read_raw(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

[[noreturn]] void bad_message(int source, int tag, const std::string& what) {
  throw RuntimeError("bad-message", "a message from rank " + std::to_string(source) + " (tag " +
                                        std::to_string(tag) +
                                        ") is not a transport message: " + what);
}

// Removes the entries whose request MPI_Testsome set to MPI_REQUEST_NULL,
// keeping `owners` parallel to `requests`.
template <class Owner>
void drop_completed(std::vector<MPI_Request>& requests, std::vector<Owner>& owners) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i] == MPI_REQUEST_NULL) continue;
    if (kept != i) {
      requests[kept] = requests[i];
      owners[kept] = std::move(owners[i]);
    }
    ++kept;
  }
  requests.resize(kept);
  owners.resize(kept);
}

// Tests every request; returns the indices of those that completed (now
// MPI_REQUEST_NULL) in `done`.
void test_some(std::vector<MPI_Request>& requests, std::vector<int>& done) {
  done.resize(requests.size());
  int count = 0;
  MPI_Testsome(static_cast<int>(requests.size()), requests.data(), &count, done.data(),
               MPI_STATUSES_IGNORE);
  done.resize(count == MPI_UNDEFINED ? 0 : static_cast<std::size_t>(count));
}

}  // namespace

struct Transport::Impl {
  // A message to another rank whose MPI sends are in flight: the body's
  // bytes and whatever owns the buffers stay alive until the last part is sent.
  struct Outgoing {
    std::vector<std::byte> wire;
    std::shared_ptr<const void> keep_alive;
    int parts_left = 0;
  };
  // A received body whose large buffers are still arriving.
  struct Incoming {
    InMessage message;
    int parts_left = 0;
  };

  explicit Impl(const IdlePolicy& p)
      : spin(from_seconds(p.spin_seconds)),
        busy_poll(from_seconds(p.busy_poll_seconds)),
        first_pause(from_seconds(p.first_pause_seconds)),
        max_pause(from_seconds(p.max_pause_seconds)),
        pause(first_pause) {}

  bool receive_bodies(MPI_Comm comm, const std::function<void(InMessage&)>& on_message);
  bool complete_receives();
  void deliver_to_self(const std::function<void(InMessage&)>& on_message);
  void deliver_completed(const std::function<void(InMessage&)>& on_message);
  bool complete_sends();
  void post_buffer_receives(MPI_Comm comm, Incoming& in, const std::vector<std::size_t>& large);

  Clock::duration spin, busy_poll, first_pause, max_pause, pause;
  Clock::time_point last_traffic = Clock::now();

  std::deque<InMessage> to_self;

  std::vector<MPI_Request> send_requests;
  std::vector<std::shared_ptr<Outgoing>> send_owners;  // parallel to send_requests
  std::size_t pending_messages = 0;

  // Per source, received messages not yet delivered, oldest first: a message
  // waits for its own buffers and for the earlier ones of its sender.
  std::vector<std::deque<Incoming>> arriving;
  std::vector<MPI_Request> recv_requests;
  std::vector<Incoming*> recv_owners;  // parallel to recv_requests; deque keeps them in place
  std::vector<int> done_indices;
  // Sources whose oldest arriving message may be complete; a source leaves
  // only once delivered up to its first incomplete message, so an exception
  // from on_message leaves nothing stranded.
  std::vector<int> ready_sources;

  // idle()/wake(): `woken` is set before `sleeping` is read and `sleeping`
  // before `woken` is read (both seq_cst), so either the sleeper sees the wake
  // or the waker sees the sleeper and notifies it under the mutex.
  std::mutex mutex;
  std::condition_variable condition;
  std::atomic<bool> woken{false};
  std::atomic<bool> sleeping{false};
};

Transport::Transport(MPI_Comm comm, IdlePolicy policy) {
  if (!(policy.spin_seconds >= 0) || !(policy.busy_poll_seconds >= 0) ||
      !(policy.first_pause_seconds > 0) ||
      !(policy.max_pause_seconds >= policy.first_pause_seconds))
    throw ValueError("idle-policy",
                     "IdlePolicy needs spin_seconds >= 0, busy_poll_seconds >= 0 and "
                     "0 < first_pause_seconds <= max_pause_seconds, got " +
                         std::to_string(policy.spin_seconds) + ", " +
                         std::to_string(policy.busy_poll_seconds) + ", " +
                         std::to_string(policy.first_pause_seconds) + ", " +
                         std::to_string(policy.max_pause_seconds));
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized)
    throw RuntimeError("mpi-not-initialized",
                       finalized ? "the transport was created after MPI_Finalize"
                                 : "the transport was created before MPI_Init_thread");
  int level = MPI_THREAD_SINGLE, is_main = 0;
  MPI_Query_thread(&level);
  MPI_Is_thread_main(&is_main);
  if (level < MPI_THREAD_FUNNELED || (level == MPI_THREAD_FUNNELED && !is_main))
    throw RuntimeError("mpi-thread-level",
                       level < MPI_THREAD_FUNNELED
                           ? "MPI was initialised with MPI_THREAD_SINGLE; the transport needs "
                             "MPI_THREAD_FUNNELED or higher"
                           : "MPI was initialised with MPI_THREAD_FUNNELED on another thread; a "
                             "comm thread that did not call MPI_Init_thread needs "
                             "MPI_THREAD_SERIALIZED");
  impl_ = std::make_unique<Impl>(policy);
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  impl_->arriving.resize(static_cast<std::size_t>(size_));
}

Transport::~Transport() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  // A send of a large buffer completes only once its receiver has taken the
  // body and posted receives for the chunks, so each rank polls (dropping
  // what comes) until every rank's sends are complete: its own, then the
  // others' through a nonblocking barrier. Only then can no sender be left
  // waiting on this rank.
  const auto drop = [](InMessage&) {};
  while (impl_->pending_messages > 0) idle(poll(drop));
  MPI_Request barrier;
  MPI_Ibarrier(comm_, &barrier);
  for (int all_sent = 0; !all_sent;) {
    const bool busy = poll(drop);
    MPI_Test(&barrier, &all_sent, MPI_STATUS_IGNORE);
    if (!all_sent) idle(busy);
  }
  while (!impl_->recv_requests.empty()) idle(poll(drop));
  MPI_Comm_free(&comm_);
}

void Transport::send(int dest, int tag, std::vector<std::byte> body,
                     std::vector<std::span<const std::byte>> buffers,
                     std::shared_ptr<const void> keep_alive) {
  if (dest < 0 || dest >= size_)
    throw ValueError("bad-destination", "cannot send to rank " + std::to_string(dest) + " of " +
                                            std::to_string(size_) + " ranks");
  if (tag < 0 || tag > kMaxTag)
    throw ValueError("bad-tag", "tag " + std::to_string(tag) + " is outside 0.." +
                                    std::to_string(kMaxTag));
  Impl& s = *impl_;
  if (dest == rank_) {
    InMessage& m = s.to_self.emplace_back();
    m.source = rank_;
    m.tag = tag;
    m.body = std::move(body);
    for (std::span<const std::byte> b : buffers) m.buffers.emplace_back(b.begin(), b.end());
    return;
  }

  std::size_t inline_bytes = 0, large_count = 0;
  for (std::span<const std::byte> b : buffers) {
    if (is_inline(b.size()))
      inline_bytes += b.size();
    else
      ++large_count;
  }
  const std::size_t wire_size =
      body.size() + inline_bytes + buffers.size() * sizeof(std::uint64_t) + sizeof(std::uint32_t);
  if (wire_size > static_cast<std::size_t>(INT_MAX))
    throw ValueError("message-too-large",
                     "a message body plus its small buffers is " + std::to_string(wire_size) +
                         " bytes; MPI sends at most " + std::to_string(INT_MAX) +
                         " (pass large data as buffers)");
  body.reserve(wire_size);
  for (std::span<const std::byte> b : buffers)
    if (is_inline(b.size())) body.insert(body.end(), b.begin(), b.end());
  for (std::span<const std::byte> b : buffers)
    append_raw(body, static_cast<std::uint64_t>(b.size()));
  append_raw(body, static_cast<std::uint32_t>(buffers.size()));

  auto out = std::make_shared<Impl::Outgoing>();
  out->wire = std::move(body);
  // Inline buffers were copied: only buffers sent from place need their owner.
  if (large_count > 0) out->keep_alive = std::move(keep_alive);
  auto start = [&](const std::byte* data, std::size_t size, int mpi_tag) {
    MPI_Request request;
    MPI_Isend(data, static_cast<int>(size), MPI_BYTE, dest, mpi_tag, comm_, &request);
    s.send_requests.push_back(request);
    s.send_owners.push_back(out);
    ++out->parts_left;
  };
  start(out->wire.data(), out->wire.size(), tag);
  for (std::span<const std::byte> b : buffers) {
    if (is_inline(b.size())) continue;
    for (std::size_t offset = 0; offset < b.size(); offset += kChunk)
      start(b.data() + offset, std::min(kChunk, b.size() - offset), kDataTag);
  }
  ++s.pending_messages;
}

bool Transport::poll(const std::function<void(InMessage&)>& on_message) {
  Impl& s = *impl_;
  bool progress = !s.to_self.empty();
  s.deliver_to_self(on_message);
  progress |= s.receive_bodies(comm_, on_message);
  progress |= s.complete_receives();
  s.deliver_completed(on_message);
  progress |= s.complete_sends();
  return progress;
}

void Transport::Impl::deliver_to_self(const std::function<void(InMessage&)>& on_message) {
  // Messages that on_message sends to this rank wait for the next poll.
  for (std::size_t n = to_self.size(); n > 0; --n) {
    InMessage message = std::move(to_self.front());
    to_self.pop_front();
    on_message(message);
  }
}

bool Transport::Impl::receive_bodies(MPI_Comm comm,
                                     const std::function<void(InMessage&)>& on_message) {
  bool received = false;
  std::vector<std::size_t> large;
  for (;;) {
    int flag = 0;
    MPI_Message handle;
    MPI_Status status;
    MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &handle, &status);
    if (!flag) return received;
    received = true;
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    std::vector<std::byte> wire(static_cast<std::size_t>(count));
    MPI_Mrecv(wire.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE);
    const int source = status.MPI_SOURCE, tag = status.MPI_TAG;
    // Chunks are received by the requests posted for their body, which
    // precedes them from the same sender: a probe never sees one.
    if (tag == kDataTag) bad_message(source, tag, "a buffer chunk without its body");

    // Parse the trailer from the end: count, sizes, inline bytes, body.
    std::size_t rest = wire.size();
    if (rest < sizeof(std::uint32_t)) bad_message(source, tag, std::to_string(rest) + " bytes");
    rest -= sizeof(std::uint32_t);
    const std::size_t n = read_raw<std::uint32_t>(wire.data() + rest);
    if (n > rest / sizeof(std::uint64_t))
      bad_message(source, tag, "trailer names " + std::to_string(n) + " buffers");
    rest -= n * sizeof(std::uint64_t);
    const std::byte* sizes = wire.data() + rest;
    std::size_t inline_bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t size = read_raw<std::uint64_t>(sizes + i * sizeof(std::uint64_t));
      if (is_inline(size)) inline_bytes += size;
    }
    if (inline_bytes > rest)
      bad_message(source, tag, "small buffers of " + std::to_string(inline_bytes) + " bytes");
    const std::size_t body_size = rest - inline_bytes;

    Incoming in;
    in.message.source = source;
    in.message.tag = tag;
    in.message.buffers.resize(n);
    large.clear();
    const std::byte* next_inline = wire.data() + body_size;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t size = read_raw<std::uint64_t>(sizes + i * sizeof(std::uint64_t));
      std::vector<std::byte>& buffer = in.message.buffers[i];
      if (is_inline(size)) {
        buffer.assign(next_inline, next_inline + size);
        next_inline += size;
      } else {
        buffer.resize(size);
        large.push_back(i);
      }
    }
    wire.resize(body_size);
    in.message.body = std::move(wire);

    std::deque<Incoming>& queue = arriving[static_cast<std::size_t>(source)];
    if (large.empty() && queue.empty()) {
      on_message(in.message);
      continue;
    }
    Incoming& queued = queue.emplace_back(std::move(in));
    post_buffer_receives(comm, queued, large);
  }
}

void Transport::Impl::post_buffer_receives(MPI_Comm comm, Incoming& in,
                                           const std::vector<std::size_t>& large) {
  for (std::size_t i : large) {
    std::vector<std::byte>& buffer = in.message.buffers[i];
    for (std::size_t offset = 0; offset < buffer.size(); offset += kChunk) {
      MPI_Request request;
      MPI_Irecv(buffer.data() + offset, static_cast<int>(std::min(kChunk, buffer.size() - offset)),
                MPI_BYTE, in.message.source, kDataTag, comm, &request);
      recv_requests.push_back(request);
      recv_owners.push_back(&in);
      ++in.parts_left;
    }
  }
}

bool Transport::Impl::complete_receives() {
  if (recv_requests.empty()) return false;
  test_some(recv_requests, done_indices);
  if (done_indices.empty()) return false;
  for (int i : done_indices) {
    Incoming& in = *recv_owners[static_cast<std::size_t>(i)];
    if (--in.parts_left == 0) ready_sources.push_back(in.message.source);
  }
  drop_completed(recv_requests, recv_owners);
  return true;
}

void Transport::Impl::deliver_completed(const std::function<void(InMessage&)>& on_message) {
  // Each sender's complete messages, up to its first incomplete one.
  while (!ready_sources.empty()) {
    std::deque<Incoming>& queue = arriving[static_cast<std::size_t>(ready_sources.back())];
    while (!queue.empty() && queue.front().parts_left == 0) {
      InMessage message = std::move(queue.front().message);
      queue.pop_front();
      on_message(message);
    }
    ready_sources.pop_back();
  }
}

bool Transport::Impl::complete_sends() {
  if (send_requests.empty()) return false;
  test_some(send_requests, done_indices);
  if (done_indices.empty()) return false;
  for (int i : done_indices)
    if (--send_owners[static_cast<std::size_t>(i)]->parts_left == 0) --pending_messages;
  drop_completed(send_requests, send_owners);  // the last owner releases body and keep_alive
  return true;
}

std::size_t Transport::pending_sends() const noexcept { return impl_->pending_messages; }

void Transport::idle(bool busy) {
  Impl& s = *impl_;
  const Clock::time_point now = Clock::now();
  if (busy || s.woken.exchange(false) || !s.to_self.empty()) {
    s.last_traffic = now;
    s.pause = s.first_pause;
    return;
  }
  // Right after traffic the peer is likely to answer within microseconds;
  // sleeping now would add a wake-up to every round trip. Yield to whatever
  // shares the core, except during the busy-poll window (figures at
  // IdlePolicy::busy_poll_seconds).
  // Sends and buffers in flight keep it there: MPI moves large messages
  // only while this rank calls into it (pipelined rendezvous over a network).
  const Clock::duration quiet = now - s.last_traffic;
  if (quiet < s.spin || s.pending_messages > 0 || !s.recv_requests.empty()) {
    if (quiet >= s.busy_poll) sched_yield();
    return;
  }
  {
    std::unique_lock lock(s.mutex);
    s.sleeping.store(true);
    s.condition.wait_for(lock, s.pause, [&] { return s.woken.load(); });
    s.sleeping.store(false);
  }
  // One wake() cuts one idle() short; work is coming, so back off from scratch.
  if (s.woken.exchange(false)) {
    s.last_traffic = Clock::now();
    s.pause = s.first_pause;
  } else {
    s.pause = std::min(s.pause * 2, s.max_pause);
  }
}

void Transport::wake() noexcept {
  Impl& s = *impl_;
  if (s.woken.exchange(true)) return;  // the first waker notifies
  if (s.sleeping.load()) {
    std::lock_guard lock(s.mutex);
    s.condition.notify_one();
  }
}

void Transport::flush(const std::function<void(InMessage&)>& on_message) {
  while (impl_->pending_messages > 0) idle(poll(on_message));
}

}  // namespace weft::dist
