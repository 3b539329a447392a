// src/io/hdf5_read.hpp - what from_netcdf borrows from from_hdf5's reader
// (hdf5_read.cpp; NetCDF-4 files are HDF5 files): memory for the blocks read,
// and the direct read of a block whose bytes lie in the file as they are.
#pragma once

#include <hdf5.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "weft/array/dtype.hpp"
#include "weft/array/ndarray.hpp"

namespace weft::io::detail {

/// Descriptors of a file opened for reading beside HDF5's handle: read tasks
/// copy a block's bytes with them outside hdf5_mutex, so the threads of a
/// rank read at once. `direct` is the file opened with O_DIRECT (-1 where the
/// file system refuses it): uncached reads bypass the page cache, which cost
/// most of a buffered read's CPU (docs/benchmarks.md, "Array I/O").
class ReadDescriptors {
 public:
  ReadDescriptors(int buffered, int direct) noexcept : buffered_(buffered), direct_(direct) {}
  ~ReadDescriptors();
  ReadDescriptors(const ReadDescriptors&) = delete;
  ReadDescriptors& operator=(const ReadDescriptors&) = delete;
  int buffered() const noexcept { return buffered_; }
  /// The O_DIRECT descriptor; -1 when there is none, or once a direct read
  /// was refused (an alignment the file system does not take).
  int direct() const noexcept { return direct_works_.load(std::memory_order_relaxed) ? direct_ : -1; }
  void direct_refused() const noexcept { direct_works_.store(false, std::memory_order_relaxed); }

 private:
  int buffered_;
  int direct_;
  mutable std::atomic<bool> direct_works_{true};
};

/// A piece of a dataset's storage that lies in the file byte for byte: one
/// chunk, or the whole of a contiguous dataset. Edge chunks are stored whole.
struct StoredPiece {
  array::Shape origin;  // its first element in the dataset
  array::Shape shape;
  haddr_t address = HADDR_UNDEF;  // of its first byte in the file
};

/// A block that can be copied out of its file as stored, and the file.
struct DirectRead {
  std::shared_ptr<const ReadDescriptors> file;
  std::vector<StoredPiece> pieces;
  /// Copies the block [start, start + extent) into `out` (C order, `itemsize`
  /// bytes an element); needs no lock. IoError "cannot-read" "<context>: why".
  void read(const array::Shape& start, const array::Shape& extent, std::size_t itemsize, char* out,
            const std::string& context) const;
};

/// The direct read of the block [start, start + extent) of the first of
/// `datasets` that the HDF5 file `path` has, when that dataset has `shape`,
/// the file type of `dtype`, no filter and every chunk the block touches
/// written; nullopt otherwise, and when HDF5 cannot open the file (the
/// caller's own library then reads it and reports what is wrong). hdf5_mutex held.
std::optional<DirectRead> find_direct_read(const std::string& path, const std::vector<std::string>& datasets,
                                           array::DType dtype, const array::Shape& shape, const array::Shape& start,
                                           const array::Shape& extent);

}  // namespace weft::io::detail
