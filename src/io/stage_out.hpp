// src/io/stage_out.hpp - `weft stage-out` (src/cli/weft.cpp): stage_out
// (weft/io/hdf5.hpp) run by every rank of a launched job, without weft's
// runtime, so that one task per node copies the parts that node holds.
#pragma once

#include <string>

namespace weft::io::detail {

/// Runs stage_out on every rank of MPI_COMM_WORLD (initialising and
/// finalising MPI when a launcher started the process; alone otherwise).
/// Rank 0 reads the virtual file and tells the others what to copy. A rank
/// whose part failed prints "weft: <message>" on stderr (rank 0 for errors
/// every rank shares); every rank returns 2 when any failed, else 0.
int stage_out_command(const std::string& virtual_file, const std::string& destination, bool overwrite);

}  // namespace weft::io::detail
