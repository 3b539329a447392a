// src/io/read_ahead.hpp - reads run on a process-wide I/O thread, so that a
// read task can have its next span of a file in flight while it copies out
// the one it has (hdf5_read.cpp's direct reads).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <future>

namespace weft::io::detail {

/// What one pread returned: its count, and errno when that is negative.
struct ReadResult {
  ssize_t bytes = 0;
  int error = 0;
};

/// pread(fd, into, bytes, offset) on an I/O thread. The caller keeps `into`
/// and `fd` valid until it has the result (the future's destructor does
/// not wait).
std::future<ReadResult> read_ahead(int fd, void* into, std::size_t bytes, off_t offset);

}  // namespace weft::io::detail
