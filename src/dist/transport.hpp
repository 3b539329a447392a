// Transport: MPI messages between ranks for the distributed runtime
// (docs/architecture.md, "Transport").
//
// A message is a body (bytes the transport owns) plus zero or more buffers
// that stay in the sender's memory until sent (zero copy; `keep_alive` holds
// whatever owns them until every send has completed). Buffers under
// kInlineBuffer bytes are copied into the body's message instead; larger ones
// travel as separate MPI messages on an internal tag, right after the body,
// in chunks of at most 1 GiB (MPI counts are int). The receiver gets the
// body and the buffers together, in one InMessage. Messages from one sender
// are delivered in the order it sent them.
//
// Wire format of the body's MPI message (all ranks run one binary, so
// integers travel in native byte order):
//   body | bytes of each inline buffer, in order |
//   size of every buffer (uint64 each, in order) | number of buffers (uint32)
// A buffer of size >= kInlineBuffer is not in the message: it follows as
// ceil(size / kChunk) messages on kDataTag. The trailer sits at the end so
// that the received vector becomes InMessage::body by shrinking, not copying.
//
// One thread per rank, the comm thread, makes every MPI call: send(), poll(),
// idle() and flush() must only be called from it. wake() may be called from
// any thread. Nothing here busy-waits for long: Open MPI's blocking calls spin
// a core, and ranks share cores (platform.md), so the comm thread polls with
// MPI_Improbe/MPI_Mrecv and MPI_Testsome and, when a poll finds nothing,
// idle() yields the core (after busy_poll_seconds of plain polling, if set)
// until spin_seconds have passed since the last traffic, and as long as
// sends or large buffers are in flight (MPI moves them only while called);
// then it sleeps with growing pauses, cut short by wake().
//
// Thread level: MPI_THREAD_FUNNELED only allows MPI calls from the thread
// that initialised MPI. Where the comm thread is another thread (rank 0),
// initialise with MPI_THREAD_SERIALIZED; Open MPI 4.1 grants any level asked
// for and treats FUNNELED and SERIALIZED alike (only MULTIPLE adds locks), so
// SERIALIZED costs nothing. The constructor refuses a level that does not
// allow calls from the thread constructing it.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace weft::dist {

struct InMessage {
  int source = -1;
  int tag = -1;  ///< the sender's tag (0 .. Transport::kMaxTag)
  std::vector<std::byte> body;
  std::vector<std::vector<std::byte>> buffers;  ///< in the order they were sent
};

struct IdlePolicy {
  double spin_seconds = 200e-6;      ///< yield-polling after the last traffic
  double first_pause_seconds = 20e-6;
  double max_pause_seconds = 1e-3;   ///< longest sleep between polls when idle
  /// Polling without even a yield right after traffic (part of spin_seconds).
  /// 5 µs made round trips on 2 idle cores 1.2 µs instead of 3.0 (2 ranks)
  /// and 3.0 instead of 5.5 (4 ranks), but 24 instead of 14 when the two
  /// ranks share a core (another job on the other one). For ranks that own
  /// their cores; off by default, as ranks here share them.
  double busy_poll_seconds = 0;
};

class Transport {
 public:
  static constexpr int kMaxTag = 1000;  ///< callers use tags 0..kMaxTag
  static constexpr std::size_t kInlineBuffer = 16 * 1024;
  static constexpr std::size_t kChunk = std::size_t{1} << 30;  ///< largest MPI message of a buffer
  static constexpr int kDataTag = kMaxTag + 1;  ///< the MPI tag of buffer chunks

  /// Duplicates `comm`. MPI must be initialised with a thread level that lets
  /// this thread call it (RuntimeError "runtime.mpi-not-initialized",
  /// "runtime.mpi-thread-level"); a policy with a negative spin or busy poll,
  /// or a pause that is not positive, is a ValueError "value.idle-policy".
  explicit Transport(MPI_Comm comm, IdlePolicy policy = {});
  /// Collective, as MPI_Comm_free: every rank destroys its Transport. Polls
  /// (dropping whatever arrives) until every rank's sends have completed,
  /// so that no sender is left waiting for a receiver that has gone, then
  /// frees the duplicate. Does nothing with MPI once MPI_Finalize was called.
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  /// The duplicated communicator (for collective steps run on the comm thread).
  MPI_Comm comm() const noexcept { return comm_; }

  /// Starts sending (nonblocking). Comm thread only. A message to this rank
  /// itself is delivered by the next poll() (its buffers copied). A `dest`
  /// outside 0..size()-1 is a ValueError "value.bad-destination", a tag outside
  /// 0..kMaxTag "value.bad-tag", a body plus inline buffers over 2 GiB
  /// "value.message-too-large". `keep_alive` is released as soon as no
  /// buffer needs the sender's memory any more.
  void send(int dest, int tag, std::vector<std::byte> body,
            std::vector<std::span<const std::byte>> buffers = {},
            std::shared_ptr<const void> keep_alive = {});
  /// Receives every message that has arrived, calling on_message for each in
  /// arrival order, and completes finished sends. Returns true when anything
  /// was received or completed. Comm thread only; on_message may call send()
  /// but not poll() or flush().
  bool poll(const std::function<void(InMessage&)>& on_message);
  /// Messages sent to other ranks whose sends have not all completed.
  std::size_t pending_sends() const noexcept;
  /// Called by the comm thread when a round of work found nothing to do:
  /// yields or sleeps per the policy; returns early on wake(). `busy` = the
  /// round did something (resets the back-off).
  void idle(bool busy);
  /// Cuts the comm thread's current or next idle() short. Any thread.
  void wake() noexcept;
  /// Completes every outstanding send (polling, with back-off; messages that
  /// arrive meanwhile go to on_message). Comm thread only. Waits as long as
  /// it takes: a receiver that never polls blocks it.
  void flush(const std::function<void(InMessage&)>& on_message);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace weft::dist
