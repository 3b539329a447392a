// src/io/staging.hpp - the "nothing lost" rules every writer of src/io follows.
//
// Output is written as `<target>.weft-tmp-<token>` in the target's folder
// (core's StagedFile) and renamed into place only when every writer
// succeeded. The checks that can be made before any task runs (the folder
// exists and is writable, the target does not exist unless overwrite) are
// made when the write is built, by check_output_target.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "../core/atomic_file.hpp"
#include "weft/collective.hpp"

namespace weft::io::detail {

using weft::detail::StagedFile;

/// The absolute path of `path` once checked as an output target of `op`:
/// IoError "cannot-write" when its folder does not exist, is not a folder or
/// is not writable, or the target is a folder; IoError "target-exists" when
/// the target exists and `overwrite` is false. Messages name the path.
std::filesystem::path check_output_target(const std::string& path, bool overwrite, std::string_view op);

/// check_output_target for an output that is a folder (to_npy_stack): the
/// same checks of the folder it goes in; IoError "cannot-write" when the
/// target exists and is not a folder, "target-exists" when it is one and
/// `overwrite` is false.
std::filesystem::path check_output_folder(const std::string& path, bool overwrite, std::string_view op);

/// A folder being written as `<target>.weft-tmp-<token>` beside the target,
/// the folder form of StagedFile: writers fill temporary() (each file synced
/// as it is written), commit() renames it into place (exchanging it with an
/// existing target, which is then removed), and a StagedFolder destroyed
/// uncommitted removes the temporary folder and everything in it.
class StagedFolder {
 public:
  StagedFolder(std::filesystem::path target, std::string_view token);
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;

  const std::filesystem::path& target() const noexcept { return target_; }
  const std::filesystem::path& temporary() const noexcept { return temporary_; }

  /// Makes the temporary folder unless it exists (every writer of a shared
  /// folder calls it). IoError "cannot-write" naming `what` and the target.
  void create(std::string_view what) const;
  /// fsyncs the temporary folder, renames it over the target (an existing
  /// target is swapped out and removed) and fsyncs the parent folder.
  void commit(std::string_view what);
  /// Removes the temporary folder and its files now.
  void discard() noexcept;
  /// Leaves the temporary folder to the writer that commits or discards it.
  void release() noexcept { done_ = true; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  bool done_ = false;
};

/// A fresh token for a temporary name (32 hex digits), made where the write
/// is built so that every rank writing the file uses the same name.
std::string staging_token();

/// Whether `ok` holds on every rank of ctx (an MPI_Allreduce; `ok` itself
/// when ctx.comm is MPI_COMM_NULL). Writers call it between collective
/// library calls: when one rank failed, all leave the sequence together
/// instead of the others waiting in the next collective call.
bool all_ranks_ok(const CollectiveContext& ctx, bool ok);

/// Reserves `bytes` of data (and 1 MiB for the format's metadata: object
/// headers, chunk indexes) of disk after the end of the file being written at
/// `temporary` (rank 0 of ctx, fallocate with FALLOC_FL_KEEP_SIZE: the size
/// stays, the blocks are the file's), and the ranks agree on it. A disk that cannot hold the data
/// fails here, before any collective library call, instead of inside
/// parallel HDF5's collective close, where a rank whose flush failed leaves
/// the others waiting (measured: HDF5 1.10.8, 3 ranks, a full tmpfs). Rank 0
/// throws IoError "cannot-write" naming `target`; the others return false.
/// File systems without fallocate (NFS, some Lustre) are not checked.
bool reserve_space(const CollectiveContext& ctx, const std::filesystem::path& temporary, std::uint64_t bytes,
                   std::string_view what, const std::filesystem::path& target);

/// Every rank's `text`, in rank order (an MPI_Allgatherv; {text} alone when
/// ctx.comm is MPI_COMM_NULL).
std::vector<std::string> allgather_text(const CollectiveContext& ctx, const std::string& text);
/// Rank `root`'s `text` on every rank of ctx (an MPI_Bcast of its size, then its bytes).
std::string broadcast_text(const CollectiveContext& ctx, std::string text, int root);

/// Ends an output made of several files that different ranks of ctx write
/// (partitioned HDF5 and its stage-out): `files` are this rank's own, `last`
/// (rank 0's index file, or null) must appear only after all of them. Every
/// rank that succeeded fsyncs its files, the ranks agree, each renames its
/// files into place (or removes them when any rank failed), the ranks agree
/// again, and rank 0 renames `last` (or removes it when any rename failed:
/// the files already renamed stay, an index never names a missing file). A
/// rank rethrows its own error; ranks that succeeded return normally when
/// another failed. `what` names the output in messages.
void finish_staged_files(const CollectiveContext& ctx, const std::vector<StagedFile*>& files, StagedFile* last,
                         std::exception_ptr error, std::string_view what);

/// Ends a write of `stage`'s temporary file by every rank of `ctx` (alone
/// when ctx.comm is MPI_COMM_NULL). `error` is this rank's failure, if any.
/// Every rank that succeeded fsyncs the file; the ranks agree on success
/// (MPI_Allreduce); then rank 0 renames the file into place, or removes it
/// when any rank failed. A rank rethrows its own error; ranks that succeeded
/// return normally when another failed (the step fails with that rank's
/// error). `what` names the output in messages ("HDF5 file").
void finish_staged_write(const CollectiveContext& ctx, StagedFile& stage, std::exception_ptr error,
                         std::string_view what);
/// The same for a folder written by every rank of ctx (to_npy_stack).
void finish_staged_write(const CollectiveContext& ctx, StagedFolder& stage, std::exception_ptr error,
                         std::string_view what);
/// Runs `write` (this rank's part of the output, into stage.temporary()) and
/// finishes the staged write with its error, if it threw.
template <class Stage, class Write>
void write_staged(const CollectiveContext& ctx, Stage& stage, std::string_view what, Write&& write) {
  std::exception_ptr error;
  try {
    write();
  } catch (...) {
    error = std::current_exception();
  }
  finish_staged_write(ctx, stage, error, what);
}

// Starts the disk writing the pages of a file being written while later
// blocks are still being copied into the page cache, so the fsync at the end
// waits for the last blocks only (measured: docs/benchmarks.md, "Array I/O").
class EarlyWriteback {
 public:
  explicit EarlyWriteback(const std::filesystem::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~EarlyWriteback() {
    if (fd_ >= 0) ::close(fd_);
  }
  EarlyWriteback(const EarlyWriteback&) = delete;
  EarlyWriteback& operator=(const EarlyWriteback&) = delete;
  // Asynchronous: queues the dirty pages, waits only when the disk's queue is full.
  void start() const noexcept {
    if (fd_ >= 0) ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
  }

 private:
  int fd_;
};

}  // namespace weft::io::detail
