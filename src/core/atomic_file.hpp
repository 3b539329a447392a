// Output files that appear whole or not at all: written under a temporary
// name beside the target, flushed to disk, then renamed into place.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace weft::detail {

/// fsync of the file or folder at `path` (opened read-only, which suffices
/// on Linux): 0, or the errno of the failing open/fsync.
int sync_path(const std::filesystem::path& path) noexcept;

/// A file being written as `<target>.weft-tmp-<token>` in the target's
/// folder. The writer creates and fills temporary(); commit() makes it the
/// target; a StagedFile destroyed uncommitted removes the temporary file, so
/// an error anywhere in between leaves the target as it was and no stray file.
/// Writers on several ranks agree on the name by sharing the token.
class StagedFile {
 public:
  StagedFile(std::filesystem::path target, std::string_view token);
  ~StagedFile();
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  const std::filesystem::path& target() const noexcept { return target_; }
  const std::filesystem::path& temporary() const noexcept { return temporary_; }

  /// fsyncs the temporary file, renames it over the target and fsyncs the
  /// folder, so the new file survives a crash once this returns. IoError
  /// "cannot-write" naming `what`, the target and the system's reason; the
  /// temporary file is removed then.
  void commit(std::string_view what);
  /// Removes the temporary file now (nothing if it does not exist).
  void discard() noexcept;
  /// Leaves the temporary file to another writer, which commits or discards
  /// it (the ranks of a parallel write other than the one that renames).
  void release() noexcept { done_ = true; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temporary_;
  bool done_ = false;
};

/// IoError "cannot-write": "cannot write <what> '<path>': <reason of err>".
[[noreturn]] void throw_cannot_write(std::string_view what, const std::filesystem::path& path, int err);

/// Writes `contents` to a StagedFile and commits it, so that readers never
/// see a partial file and a failure leaves an existing file untouched.
/// IoError "cannot-write" names `what` and the path.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           const char* what);

}  // namespace weft::detail
