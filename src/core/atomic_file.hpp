// write_file_atomically: output files appear whole or not at all.
#pragma once

#include <filesystem>
#include <string>

namespace weft::detail {

/// Writes `contents` to a new file beside `path`, then renames it over
/// `path`, so that readers never see a partial file and a failure leaves an
/// existing file untouched. IoError "cannot-write" names `what` and the path.
void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           const char* what);

}  // namespace weft::detail
