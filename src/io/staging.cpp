// src/io/staging.cpp - output checks, staged folders and the agreed rename (staging.hpp).
#include "staging.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

#include "../dist/runtime_signals.hpp"
#include "weft/error.hpp"
#include "weft/tokenize.hpp"

namespace weft::io::detail {

namespace fs = std::filesystem;

namespace {

// The checks of check_output_target and check_output_folder: the folder the
// target goes in, then the target itself (a file, or a folder when `folder`).
fs::path check_target(const std::string& path, bool overwrite, std::string_view op, bool folder_target) {
  const auto fail = [&](const std::string& reason) -> void {
    throw IoError("cannot-write", std::string(op) + ": cannot write '" + path + "': " + reason);
  };
  if (path.empty()) fail("the path is empty");
  // A trailing slash ("out/") names the folder itself.
  const fs::path target = fs::absolute(path).lexically_normal();
  const fs::path clean = target.has_filename() ? target : target.parent_path();
  const fs::path folder = clean.parent_path();
  std::error_code ec;
  if (!fs::exists(folder, ec)) fail("folder '" + folder.string() + "' does not exist");
  if (!fs::is_directory(folder, ec)) fail("'" + folder.string() + "' is not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0)
    fail("folder '" + folder.string() + "' is not writable (" + std::generic_category().message(errno) + ")");
  const bool exists = fs::exists(fs::symlink_status(clean, ec));
  if (exists && fs::is_directory(clean, ec) != folder_target) fail(folder_target ? "it is not a folder" : "it is a folder");
  if (exists && !overwrite)
    throw IoError("target-exists",
                  std::string(op) + ": '" + path + "' exists; pass overwrite = true to replace it");
  return clean;
}

}  // namespace

fs::path check_output_target(const std::string& path, bool overwrite, std::string_view op) {
  return check_target(path, overwrite, op, false);
}

fs::path check_output_folder(const std::string& path, bool overwrite, std::string_view op) {
  return check_target(path, overwrite, op, true);
}

StagedFolder::StagedFolder(fs::path target, std::string_view token) : target_(std::move(target)) {
  temporary_ = target_;
  temporary_ += ".weft-tmp-";
  temporary_ += std::string(token);
}

StagedFolder::~StagedFolder() {
  if (!done_) discard();
}

void StagedFolder::create(std::string_view what) const {
  if (::mkdir(temporary_.c_str(), 0777) != 0 && errno != EEXIST) weft::detail::throw_cannot_write(what, target_, errno);
}

void StagedFolder::discard() noexcept {
  done_ = true;
  std::error_code ignored;
  fs::remove_all(temporary_, ignored);
}

void StagedFolder::commit(std::string_view what) {
  int err = weft::detail::sync_path(temporary_);
  bool swapped = false;
  if (err == 0 && std::rename(temporary_.c_str(), target_.c_str()) != 0) {
    err = errno;
    if (err == ENOTEMPTY || err == EEXIST) {
      // rename() replaces only an empty folder: swap with a full one atomically.
      err = ::renameat2(AT_FDCWD, temporary_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) == 0 ? 0 : errno;
      swapped = err == 0;
    }
  }
  if (err != 0) {
    discard();
    weft::detail::throw_cannot_write(what, target_, err);
  }
  if (swapped) discard();  // the temporary name now holds the old folder
  done_ = true;
  if ((err = weft::detail::sync_path(target_.parent_path())) != 0) weft::detail::throw_cannot_write(what, target_, err);
}

std::string staging_token() { return weft::detail::fresh_token().hex(); }

bool all_ranks_ok(const CollectiveContext& ctx, bool ok) {
  int all_ok = ok ? 1 : 0;
  if (ctx.comm != MPI_COMM_NULL) MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_LAND, ctx.comm);
  return all_ok != 0;
}

bool reserve_space(const CollectiveContext& ctx, const fs::path& temporary, std::uint64_t bytes, std::string_view what,
                   const fs::path& target) {
  constexpr std::uint64_t metadata = 1 << 20;
  int err = 0;
  if (ctx.rank == 0) {
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      err = errno;
    } else {
      struct stat st {};
      if (::fstat(fd, &st) != 0 ||
          ::fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, static_cast<off_t>(bytes + metadata)) != 0)
        err = errno;
      ::close(fd);
    }
    if (err == EOPNOTSUPP || err == ENOSYS) err = 0;  // nothing to check on such a file system
  }
  if (all_ranks_ok(ctx, err == 0)) return true;
  if (err != 0) weft::detail::throw_cannot_write(what, target, err);
  return false;
}

std::vector<std::string> allgather_text(const CollectiveContext& ctx, const std::string& text) {
  if (ctx.comm == MPI_COMM_NULL) return {text};
  const int size = static_cast<int>(text.size());
  std::vector<int> sizes(static_cast<std::size_t>(ctx.size)), offsets(sizes.size());
  MPI_Allgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, ctx.comm);
  int total = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    offsets[r] = total;
    total += sizes[r];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Allgatherv(text.data(), size, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, ctx.comm);
  std::vector<std::string> out;
  for (std::size_t r = 0; r < sizes.size(); ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(sizes[r])));
  return out;
}

std::string broadcast_text(const CollectiveContext& ctx, std::string text, int root) {
  if (ctx.comm == MPI_COMM_NULL) return text;
  unsigned long long size = text.size();
  MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, root, ctx.comm);
  text.resize(size);
  MPI_Bcast(text.data(), static_cast<int>(size), MPI_CHAR, root, ctx.comm);
  return text;
}

namespace {

// Runs `step` unless `error` is set already; its failure becomes `error`.
template <class Step>
void unless_failed(std::exception_ptr& error, Step&& step) {
  if (error) return;
  try {
    step();
  } catch (...) {
    error = std::current_exception();
  }
}

// IoError "cannot-write" for `stage` when `err` is an errno.
void check_synced(const StagedFile& stage, int err, std::string_view what) {
  if (err != 0) weft::detail::throw_cannot_write(what, stage.target(), err);
}

// RuntimeError "terminated" once this process, or rank 0 (which tells the
// workers at once), got a stop signal: a write the job is draining during
// must not replace its target (the ranks agree on it before the rename, so
// one signalled rank discards the output of all).
void check_not_stopped(const fs::path& target, std::string_view what) {
  const int sig = dist::stop_signal();
  if (sig == 0 && !dist::rank0_stopped()) return;
  throw RuntimeError("terminated", std::string(what) + " '" + target.string() + "': " +
                                       (sig != 0 ? dist::signal_name(sig) : "a stop signal to rank 0") +
                                       " arrived during the write; the output is discarded");
}

}  // namespace

void finish_staged_files(const CollectiveContext& ctx, const std::vector<StagedFile*>& files, StagedFile* last,
                         std::exception_ptr error, std::string_view what) {
  unless_failed(error, [&] {
    for (StagedFile* file : files) check_synced(*file, weft::detail::sync_path(file->temporary()), what);
    if (last) check_synced(*last, weft::detail::sync_path(last->temporary()), what);
    check_not_stopped(last ? last->target() : files.empty() ? fs::path() : files.front()->target(), what);
  });
  // Files left uncommitted are removed by their StagedFile.
  if (all_ranks_ok(ctx, !error)) {
    unless_failed(error, [&] {
      for (StagedFile* file : files) file->commit(what);
    });
  }
  if (all_ranks_ok(ctx, !error) && last) unless_failed(error, [&] { last->commit(what); });
  if (error) std::rethrow_exception(error);
}

namespace {

// fsyncs this rank's output unless it failed (a failure becomes `error`),
// then the ranks agree on success; rank 0 commits or discards, the others
// leave the output to it. Rethrows this rank's error.
template <class Stage>
void finish(const CollectiveContext& ctx, Stage& stage, std::exception_ptr error, std::string_view what) {
  unless_failed(error, [&] {
    if (const int err = weft::detail::sync_path(stage.temporary()); err != 0)
      weft::detail::throw_cannot_write(what, stage.target(), err);
    check_not_stopped(stage.target(), what);
  });
  const bool all_ok = all_ranks_ok(ctx, !error);
  if (ctx.rank != 0)
    stage.release();
  else if (all_ok)
    stage.commit(what);
  else
    stage.discard();
  if (error) std::rethrow_exception(error);
}

}  // namespace

void finish_staged_write(const CollectiveContext& ctx, StagedFile& stage, std::exception_ptr error,
                         std::string_view what) {
  finish(ctx, stage, error, what);
}

void finish_staged_write(const CollectiveContext& ctx, StagedFolder& stage, std::exception_ptr error,
                         std::string_view what) {
  finish(ctx, stage, error, what);
}

}  // namespace weft::io::detail
