// src/io/staging.cpp - output checks, staged folders and the agreed rename (staging.hpp).
#include "staging.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

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

namespace {

// fsyncs this rank's output unless it failed (a failure becomes `error`),
// then the ranks agree on success; rank 0 commits or discards, the others
// leave the output to it. Rethrows this rank's error.
template <class Stage>
void finish(const CollectiveContext& ctx, Stage& stage, std::exception_ptr error, std::string_view what) {
  if (!error) {
    if (const int err = weft::detail::sync_path(stage.temporary()); err != 0) {
      try {
        weft::detail::throw_cannot_write(what, stage.target(), err);
      } catch (...) {
        error = std::current_exception();
      }
    }
  }
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
