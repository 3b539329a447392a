// The messages between ranks (docs/architecture.md, "Protocol").
//
// A message is a batch of operations, each a one-byte Op followed by its
// fields. BatchWriter appends operations to a body plus a list of buffers
// (the large parts of encoded values, sent zero-copy by the Transport);
// BatchReader walks them back, checking every read against the bytes there,
// so a malformed message is a RuntimeError "bad-message", never a read out of
// bounds.
//
// Operations and their fields (u32 unless said):
//   scheduler -> worker
//     compute   task, priority(i32), ninputs, {input, holder}*, nsteps, steps,
//               nattached, value*
//               (a unit: nsteps tasks in wire form; each step's arguments
//               as {index, local(u8)} pairs: see UnitProgram; the values its
//               constant tasks name, zero-copy: task_wire's attachments)
//     collective  as compute: every worker gets it, and runs it together
//               once all have their inputs (weft/collective.hpp); of a
//               partitioned step's parts, each worker reads only those whose
//               holder is itself (the holder is the part's owner)
//     free      task
//     steal     task
//     gather    task          (send the value to rank 0)
//     store     task, value   (keep it as this worker's result: Client::scatter)
//     run       request, unit (run once on this worker now: Client::run)
//     plugin    request, name(str), unit  (the unit makes a WorkerPlugin: set it
//               up and keep it as `name`; an empty unit removes the plugin
//               `name`. Answered by ran: true / whether it had one, or the
//               setup's error as id and text: worker_plugins.hpp)
//     stop      status(i32)
//     acquire   task, holder  (fetch its value from worker `holder` and keep it:
//               Client::replicate, retire_workers; answered by acquired)
//     drain     grace(f64)    (start no new task; answer drained once the
//               running ones ended, or after grace seconds: the walltime drain)
//   worker -> scheduler
//     hello     nthreads      (once, at start-up)
//     done      task, nbytes(u64)
//     erred     task, key(str), type(str), message(str)
//     released  task          (dropped before it ran: answer to free)
//     acquired  task, ok(u8)  (answer to acquire; 0: the holder did not have it)
//     drain     status(i32), reason(str)  (its --lifetime passed or it got a
//               stop signal: rank 0 drains the job, which exits with status)
//     drained   abandoned     (answer to drain: tasks still running after the grace)
//     stolen    task, given_up(u8)
//     ran       request, ok(u8), value | type(str), message(str)
//     heartbeat memory, peak_memory, memory_limit, managed_bytes,
//               spilled_bytes, spilled_bytes_total (u64 each), spilled_count,
//               executing, ready, in_flight, paused(u8)  (WorkerMetrics,
//               every distributed.worker.heartbeat-interval while the worker
//               makes progress; nanny.hpp)
//     terminating  rss(u64), limit(u64), host(str), n, {task, nbytes(u64)}*
//               (RSS passed the terminate threshold; the n largest results held)
//     coord     request(u64), op(u8), name(str), owner(u64), limit,
//               override(u8), timeout(f64, < 0: none), has_value(u8), [value]
//               (a task's Lock/Queue/... call: coordination.hpp)
//   scheduler -> worker
//     coord_reply  request(u64), status(u8: ok, timed out, failed),
//               ok: has_value(u8), [value]; failed: error id(str), text(str)
//   worker <-> worker, and worker -> rank 0
//     fetch     task          (send me its value)
//     data      task, value   (value: header bytes, nbuffers, buffers)
//     missing   task          (the asked worker does not have it)
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "weft/error.hpp"
#include "weft/serialize.hpp"
#include "weft/value.hpp"

namespace weft::dist {

enum class Op : std::uint8_t {
  compute = 1, collective, free, steal, gather, store, run, stop,
  hello, done, erred, released, stolen, ran,
  fetch, data, missing,
  heartbeat, terminating,
  coord, coord_reply,
  acquire, acquired,
  drain, drained,
  plugin,
  end_,  ///< not an operation: one past the last (new ones go above)
};

/// MPI tags: every batch travels on one tag.
inline constexpr int kBatchTag = 1;
/// Rank 0's notice to every worker that it got a stop signal (an empty
/// message, sent once, before the drain): a tag of its own so that a worker
/// whose comm thread is inside a collective step, and reads no batch,
/// probes for it before the step's write is renamed into place
/// (rank0_stopped, runtime_signals.hpp).
inline constexpr int kStopSignalTag = 2;

class BatchWriter {
 public:
  bool empty() const noexcept { return body_.empty(); }
  std::size_t size() const noexcept { return body_.size(); }

  void op(Op o) { put(static_cast<std::uint8_t>(o)); }
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void put(const T& v) {
    std::size_t at = body_.size();
    body_.resize(at + sizeof(T));
    std::memcpy(body_.data() + at, &v, sizeof(T));
  }
  void bytes(std::span<const std::byte> b) {
    put(static_cast<std::uint32_t>(b.size()));
    body_.insert(body_.end(), b.begin(), b.end());
  }
  void string(std::string_view s) { bytes(std::as_bytes(std::span(s.data(), s.size()))); }
  /// An encoded value: its header inline, its buffers zero-copy. `owner`
  /// keeps the value (and so the buffers) alive until the send completes.
  void value(const Value& v, std::shared_ptr<const void> owner);

  /// Moves the batch out (for Transport::send) and leaves the writer empty.
  struct Parts {
    std::vector<std::byte> body;
    std::vector<std::span<const std::byte>> buffers;
    std::shared_ptr<const void> keep_alive;
  };
  Parts take();

 private:
  std::vector<std::byte> body_;
  std::vector<std::span<const std::byte>> buffers_;
  std::vector<std::shared_ptr<const void>> owners_;
};

class BatchReader {
 public:
  BatchReader(std::span<const std::byte> body, std::span<const std::vector<std::byte>> buffers, int source)
      : body_(body), buffers_(buffers), source_(source) {}

  bool at_end() const noexcept { return body_.empty(); }
  int source() const noexcept { return source_; }
  Op op();
  template <class T>
    requires std::is_trivially_copyable_v<T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)).data(), sizeof(T));
    return v;
  }
  std::span<const std::byte> bytes() { return take(get<std::uint32_t>()); }
  std::string string() {
    std::span<const std::byte> b = bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  Value value();
  [[noreturn]] void fail(const std::string& problem) const;

 private:
  std::span<const std::byte> take(std::size_t n) {
    if (n > body_.size()) fail("it ends " + std::to_string(n - body_.size()) + " bytes early");
    std::span<const std::byte> out = body_.first(n);
    body_ = body_.subspan(n);
    return out;
  }

  std::span<const std::byte> body_;
  std::span<const std::vector<std::byte>> buffers_;
  std::size_t next_buffer_ = 0;
  int source_;
};

}  // namespace weft::dist
