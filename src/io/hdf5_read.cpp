// src/io/hdf5_read.cpp - from_hdf5 (weft/io/hdf5.hpp): metadata when the
// graph is built, one read task per block, files kept open per process.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "../array/large_memory.hpp"
#include "hdf5_library.hpp"
#include "hdf5_read.hpp"
#include "open_files.hpp"
#include "read_ahead.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::Chunks;
using array::DType;
using array::NDArray;
using array::Shape;

ReadDescriptors::~ReadDescriptors() {
  ::close(buffered_);
  if (direct_ >= 0) ::close(direct_);
}

// A file open for reading: HDF5's handle and the descriptors for direct reads.
struct OpenFile {
  hid_t file = H5I_INVALID_HID;
  std::shared_ptr<const ReadDescriptors> posix;
};

// Files the read tasks of this process keep open (OpenFileCache: a file
// replaced by to_hdf5 or by another program is never read through a stale
// handle).
class OpenFiles {
 public:
  // Never destroyed: HDF5 closes what is still open when it shuts down (at
  // MPI_Finalize or exit), after which closing the handles again would fail.
  static OpenFiles& instance() {
    static OpenFiles* files = new OpenFiles;
    return *files;
  }
  // The open file at `path` (hdf5_mutex held). IoError "cannot-open" naming
  // the path for a missing, unreadable or non-HDF5 file.
  OpenFile open(const std::string& path, std::string_view op) {
    const auto cannot_open = [&](const std::string& why) {
      return IoError("cannot-open", std::string(op) + ": cannot open '" + path + "': " + why);
    };
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw cannot_open(std::generic_category().message(errno));
    const Cache::Stamp stamp = Cache::stamp_of(st);
    if (const Handles* open = cache_.find(path, stamp)) return {open->file.get(), open->posix};
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw cannot_open("not an HDF5 file");
    }
    Handle file(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "cannot-open",
                      std::string(op) + ": cannot open '" + path + "'"),
                H5Fclose);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw cannot_open(std::generic_category().message(errno));
    // Some file systems refuse O_DIRECT (EINVAL): buffered reads only, then.
    auto posix = std::make_shared<const ReadDescriptors>(fd, ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT));
    // Every handle must see the file that was stamped (a rename can replace it).
    const auto same_file = [&](int descriptor) {
      return descriptor < 0 || (::fstat(descriptor, &st) == 0 && Cache::stamp_of(st) == stamp);
    };
    if (!same_file(fd) || !same_file(posix->direct())) throw cannot_open("it was replaced while being opened");
    const Handles& added = cache_.add(path, stamp, Handles{std::move(file), std::move(posix)});
    return {added.file.get(), added.posix};
  }
  void close_all() { cache_.clear(); }

 private:
  struct Handles {
    Handle file;
    std::shared_ptr<const ReadDescriptors> posix;
  };
  using Cache = OpenFileCache<Handles>;
  Cache cache_;
};

// What a dataset is, as from_hdf5 and the read tasks see it.
struct DatasetInfo {
  Shape shape;
  DType dtype = DType::float64;
  std::optional<Shape> chunk;  // the dataset's chunk shape, when chunked
};

DatasetInfo inspect(hid_t dataset, const std::string& path, const std::string& name, std::string_view op) {
  DatasetInfo info;
  Handle type(H5Dget_type(dataset), H5Tclose);
  const std::optional<DType> dtype = dtype_of_file_type(type.get());
  if (!dtype)
    throw TypeError("unsupported-dtype", std::string(op) + ": dataset '" + name + "' of '" + path + "' holds " +
                                             type_class_name(type.get()) + " elements of " +
                                             std::to_string(H5Tget_size(type.get())) +
                                             " bytes, which no weft dtype holds");
  info.dtype = *dtype;
  Handle space(H5Dget_space(dataset), H5Sclose);
  const int ndim = H5Sget_simple_extent_ndims(space.get());
  if (ndim < 0) throw IoError("cannot-read", std::string(op) + ": dataset '" + name + "' of '" + path +
                                                 "' has no simple dataspace");
  std::vector<hsize_t> dims(static_cast<std::size_t>(ndim));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  info.shape.assign(dims.begin(), dims.end());
  Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (ndim > 0 && H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    std::vector<hsize_t> chunk(static_cast<std::size_t>(ndim));
    H5Pget_chunk(dcpl.get(), ndim, chunk.data());
    info.chunk = Shape(chunk.begin(), chunk.end());
  }
  return info;
}

// The dataset `name` of the open file (IoError "no-such-dataset" naming both).
// `chunk_bytes` sizes its chunk cache: a block that holds several chunks then
// reads each chunk whole, once; with HDF5's default 1 MiB cache a larger
// chunk is read row by row (one pread per row: 100x slower, measured).
Handle open_dataset(hid_t file, const std::string& path, const std::string& name, std::string_view op,
                    std::size_t chunk_bytes = 0) {
  const auto missing = [&] {
    H5Eclear2(H5E_DEFAULT);
    return IoError("no-such-dataset", std::string(op) + ": '" + path + "' has no dataset '" + name + "'");
  };
  // H5Lexists needs every group on the way to exist: check them one by one.
  for (std::size_t slash = name.find('/', 1); slash != std::string::npos; slash = name.find('/', slash + 1))
    if (H5Lexists(file, name.substr(0, slash).c_str(), H5P_DEFAULT) <= 0) throw missing();
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) throw missing();
  H5O_info_t object{};
  if (H5Oget_info_by_name(file, name.c_str(), &object, H5P_DEFAULT) < 0 || object.type != H5O_TYPE_DATASET) {
    H5Eclear2(H5E_DEFAULT);
    throw IoError("no-such-dataset", std::string(op) + ": '" + name + "' in '" + path + "' is not a dataset");
  }
  Handle dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
  constexpr std::size_t kDefaultCacheBytes = std::size_t{1} << 20;
  if (chunk_bytes > kDefaultCacheBytes) H5Pset_chunk_cache(dapl.get(), 521, chunk_bytes, 1.0);
  return Handle(check(H5Dopen2(file, name.c_str(), dapl.get()), "cannot-read",
                      std::string(op) + ": cannot open dataset '" + name + "' of '" + path + "'"),
                H5Dclose);
}


/// What a read task needs: the file, the dataset and what from_hdf5 saw.
struct Hdf5ReadSpec {
  std::string path;
  std::string dataset;
  array::Shape shape;
  array::DType dtype = array::DType::float64;
  std::uint64_t chunk_bytes = 0;  // of the dataset's chunks; 0 when contiguous
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path, dataset, shape, dtype, chunk_bytes);
  }
};

// The pieces of storage that the block [start, start + extent) of `dataset`
// lies in, when each can be copied from the file as it is (no filter, the
// file's type is the memory type, every chunk written, no user block before
// HDF5's addresses); nullopt when HDF5 has to read the block. hdf5_mutex held.
std::optional<std::vector<StoredPiece>> stored_pieces(hid_t file, hid_t dataset, DType dtype, const Shape& shape,
                                                      const Shape& start, const Shape& extent) {
  if (extent.empty()) return std::nullopt;
  Handle file_type(H5Dget_type(dataset), H5Tclose);
  if (H5Tequal(file_type.get(), native_type(dtype).get()) <= 0) return std::nullopt;
  Handle fcpl(H5Fget_create_plist(file), H5Pclose);
  hsize_t userblock = 0;
  if (H5Pget_userblock(fcpl.get(), &userblock) < 0 || userblock != 0) return std::nullopt;
  Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (H5Pget_nfilters(dcpl.get()) != 0 || H5Pget_external_count(dcpl.get()) != 0) return std::nullopt;
  std::vector<StoredPiece> pieces;
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_CONTIGUOUS: {
      const haddr_t address = H5Dget_offset(dataset);  // undefined until written
      if (address == HADDR_UNDEF) break;
      pieces.push_back({Shape(shape.size(), 0), shape, address});
      return pieces;
    }
    case H5D_CHUNKED: {
      const std::size_t ndim = shape.size();
      std::vector<hsize_t> chunk(ndim);
      H5Pget_chunk(dcpl.get(), static_cast<int>(ndim), chunk.data());
      const hsize_t chunk_bytes = static_cast<hsize_t>(array::shape_size(Shape(chunk.begin(), chunk.end()))) *
                                  array::itemsize(dtype);
      // Every chunk the block touches, in row-major order (an odometer).
      Shape first(ndim), last(ndim);
      for (std::size_t a = 0; a < ndim; ++a) {
        first[a] = start[a] / static_cast<std::int64_t>(chunk[a]);
        last[a] = (start[a] + extent[a] - 1) / static_cast<std::int64_t>(chunk[a]);
      }
      for (Shape at = first;;) {
        std::vector<hsize_t> origin(ndim);
        for (std::size_t a = 0; a < ndim; ++a) origin[a] = static_cast<hsize_t>(at[a]) * chunk[a];
        unsigned filters = 0;
        haddr_t address = HADDR_UNDEF;
        hsize_t bytes = 0;
        if (H5Dget_chunk_info_by_coord(dataset, origin.data(), &filters, &address, &bytes) < 0 ||
            address == HADDR_UNDEF || bytes != chunk_bytes) {
          H5Eclear2(H5E_DEFAULT);
          return std::nullopt;  // a chunk never written reads as the fill value: HDF5 knows it
        }
        pieces.push_back({Shape(origin.begin(), origin.end()), Shape(chunk.begin(), chunk.end()), address});
        std::size_t a = ndim;
        while (a-- > 0 && ++at[a] > last[a]) at[a] = first[a];
        if (a == static_cast<std::size_t>(-1)) return pieces;
      }
    }
    default: break;  // compact or virtual
  }
  return std::nullopt;
}

constexpr std::size_t kMaxBuffers = IOV_MAX;  // of one preadv

// Advances the buffers `iov` from `first` on past `bytes` filled bytes.
void advance(std::vector<iovec>& iov, std::size_t& first, std::size_t bytes) {
  while (bytes > 0) {
    iovec& v = iov[first];
    const std::size_t step = std::min(bytes, v.iov_len);
    v.iov_base = static_cast<char*>(v.iov_base) + step;
    v.iov_len -= step;
    bytes -= step;
    if (v.iov_len == 0) ++first;
  }
}

// Reads bytes from `offset` on into the buffers `iov` from `first` on
// (consumed), all of them (pread may return fewer).
void preadv_fully(int fd, std::vector<iovec>& iov, std::size_t first, off_t offset, const std::string& context) {
  while (first < iov.size()) {
    const ssize_t got = ::preadv(fd, iov.data() + first, static_cast<int>(std::min(iov.size() - first, kMaxBuffers)), offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw IoError("cannot-read", context + ": " + std::generic_category().message(errno));
    if (got == 0) throw IoError("cannot-read", context + ": the file ends before the data (truncated?)");
    offset += got;
    advance(iov, first, static_cast<std::size_t>(got));
  }
}

// One preadv: file bytes from `offset` on into `buffers`, in order.
struct ReadBatch {
  off_t offset = 0;
  std::size_t bytes = 0;
  std::vector<iovec> buffers;
};

// The reads that copy the block [start, start + extent) out of `pieces` of the
// file into `out` (C order): each run of the block's last axis inside a piece
// is one destination, and runs that follow each other in the file are one
// preadv (a 1000 x 1000 chunk of a wider block: 1000 destinations, one call).
std::vector<ReadBatch> plan_reads(const std::vector<StoredPiece>& pieces, const Shape& start, const Shape& extent,
                                  std::size_t itemsize, char* out) {
  const std::size_t ndim = extent.size();
  const array::Strides block_strides = array::c_strides(extent);
  std::vector<ReadBatch> batches;
  for (const StoredPiece& piece : pieces) {
    const array::Strides piece_strides = array::c_strides(piece.shape);
    Shape lo(ndim), hi(ndim);
    for (std::size_t a = 0; a < ndim; ++a) {
      lo[a] = std::max(start[a], piece.origin[a]);
      hi[a] = std::min(start[a] + extent[a], piece.origin[a] + piece.shape[a]);
    }
    bool overlaps = true;
    for (std::size_t a = 0; a < ndim; ++a) overlaps = overlaps && lo[a] < hi[a];
    if (!overlaps) continue;
    const std::size_t run = static_cast<std::size_t>(hi[ndim - 1] - lo[ndim - 1]) * itemsize;
    for (Shape at = lo;;) {
      std::int64_t in_piece = 0, in_block = 0;
      for (std::size_t a = 0; a < ndim; ++a) {
        in_piece += (at[a] - piece.origin[a]) * piece_strides[a];
        in_block += (at[a] - start[a]) * block_strides[a];
      }
      const off_t offset = static_cast<off_t>(piece.address) + static_cast<off_t>(in_piece) * static_cast<off_t>(itemsize);
      char* to = out + static_cast<std::size_t>(in_block) * itemsize;
      if (batches.empty() || offset != batches.back().offset + static_cast<off_t>(batches.back().bytes) ||
          batches.back().buffers.size() == kMaxBuffers)
        batches.push_back({offset, 0, {}});
      std::vector<iovec>& buffers = batches.back().buffers;
      if (!buffers.empty() && static_cast<char*>(buffers.back().iov_base) + buffers.back().iov_len == to)
        buffers.back().iov_len += run;  // contiguous in the block too
      else
        buffers.push_back({to, run});
      batches.back().bytes += run;
      std::size_t a = ndim - 1;  // the last axis is the run
      while (a-- > 0 && ++at[a] >= hi[a]) at[a] = lo[a];
      if (a == static_cast<std::size_t>(-1)) break;
    }
  }
  return batches;
}

// Direct (O_DIRECT) reads: the device copies straight into aligned memory,
// with no page cache between. After a drop from the page cache, buffered
// reads of an 800 MB file on 2 threads ran at 0.3-0.6 of dd, O_DIRECT reads
// of 8-128 MB at 0.8-1.0 (docs/benchmarks.md, "Array I/O"): allocating,
// filling and copying out of page-cache pages was most of the CPU time, and
// read-ahead could not keep two streams busy. Offsets, lengths and memory
// are aligned to 4096 bytes (the sector size of any disk; smaller ones
// divide it); a file system that wants more refuses with EINVAL, and reads
// go buffered from then on.
constexpr std::size_t kDirectAlignment = 4096;
// Batches smaller than this read buffered: without read-ahead, many small
// direct reads would each wait for the device.
constexpr std::size_t kMinDirectBytes = std::size_t{1} << 20;
// A direct read's span, and how many of a task's spans are in flight at
// once (its staging memory holds that many): each span large enough that
// its request keeps the device busy (the kernel splits it in max_sectors_kb
// pieces, all in flight at once), the whole small enough to stay cheap per
// task (32 MiB).
constexpr std::size_t kSpanBytes = std::size_t{8} << 20;
constexpr std::size_t kSpansInFlight = 4;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// io.direct-reads: which reads use O_DIRECT.
enum class DirectReads { automatic, always, never };
DirectReads direct_reads() {
  const std::string choice = config::get<std::string>("io.direct-reads");
  if (choice == "auto") return DirectReads::automatic;
  if (choice == "always") return DirectReads::always;
  if (choice == "never") return DirectReads::never;
  throw ConfigError("bad-value", "bad value for 'io.direct-reads': '" + choice + "' (use auto, always or never)");
}

// Whether every page of the file's bytes [offset, offset + bytes) is in the
// page cache (then a buffered read is a copy, faster than the device): the
// range is mapped but never touched, so mincore reads nothing. false when
// the file cannot be mapped.
bool in_page_cache(int fd, off_t offset, std::size_t bytes) {
  static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const off_t first = offset / static_cast<off_t>(page) * static_cast<off_t>(page);
  const std::size_t length = static_cast<std::size_t>(offset - first) + bytes;
  void* mapped = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, first);
  if (mapped == MAP_FAILED) return false;
  std::vector<unsigned char> resident(round_up(length, page) / page);
  const bool known = ::mincore(mapped, length, resident.data()) == 0;
  ::munmap(mapped, length);
  return known && std::all_of(resident.begin(), resident.end(), [](unsigned char r) { return (r & 1) != 0; });
}

// Reads the batch with the O_DIRECT descriptor `fd`: aligned spans of the
// file, each into its slot of `staging` and copied out into the batch's
// buffers (from `first` on), consuming the batch. kSpansInFlight spans are
// read at once (on I/O threads, read_ahead.hpp) and each copied out as it
// comes, so the device always has this task's next requests: with one
// read in flight per task, the device sat idle while a task copied (on 3
// ranks of 2 cores a worker runs one task at a time), and a single direct
// request at a time reads at a third of the buffered rate here. false when
// the file system refused a read (EINVAL) or returned a short one before
// the end: what is left of the batch then reads buffered. No read is in
// flight when it returns or throws.
bool read_batch_directly(int fd, ReadBatch& batch, std::size_t& first, char* staging, std::size_t staging_bytes,
                         const std::string& context) {
  const off_t end = batch.offset + static_cast<off_t>(batch.bytes);
  const std::size_t span = staging_bytes / kSpansInFlight / kDirectAlignment * kDirectAlignment;
  struct Span {
    off_t at;
    std::size_t bytes;
    char* into;
    std::future<ReadResult> result;
  };
  struct InFlight : std::deque<Span> {
    ~InFlight() {
      for (Span& s : *this) s.result.wait();  // none may outlive `staging`
    }
  } flight;
  off_t next = batch.offset / static_cast<off_t>(kDirectAlignment) * static_cast<off_t>(kDirectAlignment);
  std::size_t issued = 0;
  const auto issue = [&] {
    for (; flight.size() < kSpansInFlight && next < end; ++issued) {
      const std::size_t want = std::min(span, round_up(static_cast<std::size_t>(end - next), kDirectAlignment));
      char* into = staging + issued % kSpansInFlight * span;
      flight.push_back({next, want, into, read_ahead(fd, into, want, next)});
      next += static_cast<off_t>(want);
    }
  };
  issue();
  while (batch.offset < end) {
    Span done = std::move(flight.front());
    flight.pop_front();
    const ReadResult got = done.result.get();
    if (got.bytes < 0 && got.error == EINVAL) return false;
    if (got.bytes < 0) throw IoError("cannot-read", context + ": " + std::generic_category().message(got.error));
    if (got.bytes == 0) throw IoError("cannot-read", context + ": the file ends before the data (truncated?)");
    const off_t filled = std::min(done.at + static_cast<off_t>(got.bytes), end);
    if (filled > batch.offset) {
      const char* from = done.into + (batch.offset - done.at);
      for (auto left = static_cast<std::size_t>(filled - batch.offset); left > 0;) {
        iovec& to = batch.buffers[first];
        const std::size_t step = std::min(left, to.iov_len);
        std::memcpy(to.iov_base, from, step);
        from += step;
        left -= step;
        advance(batch.buffers, first, step);
      }
      batch.bytes -= static_cast<std::size_t>(filled - batch.offset);
      batch.offset = filled;
    }
    if (static_cast<std::size_t>(got.bytes) < done.bytes && batch.offset < end) return false;  // short
    issue();  // into the slot just copied out
  }
  return true;
}

void DirectRead::read(const Shape& start, const Shape& extent, std::size_t itemsize, char* out,
                      const std::string& context) const {
  std::vector<ReadBatch> batches = plan_reads(pieces, start, extent, itemsize, out);
  // Large batches not in the page cache read directly; the others buffered,
  // the kernel first asked for all of their bytes (POSIX_FADV_WILLNEED
  // queues them at once), so the disk works on later batches while earlier
  // ones are copied.
  const DirectReads choice = direct_reads();
  std::vector<bool> direct(batches.size(), false);
  std::size_t staging_bytes = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const ReadBatch& batch = batches[i];
    direct[i] = file->direct() >= 0 &&
                (choice == DirectReads::always ||
                 (choice == DirectReads::automatic && batch.bytes >= kMinDirectBytes &&
                  !in_page_cache(file->buffered(), batch.offset, batch.bytes)));
    if (direct[i])
      staging_bytes =
          std::max(staging_bytes,
                   kSpansInFlight * std::min(kSpanBytes, round_up(batch.bytes, kDirectAlignment) + kDirectAlignment));
    else
      ::posix_fadvise(file->buffered(), batch.offset, static_cast<off_t>(batch.bytes), POSIX_FADV_WILLNEED);  // advice only
  }
  const std::shared_ptr<void> staging = staging_bytes > 0 ? array::detail::allocate_large(staging_bytes) : nullptr;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    ReadBatch& batch = batches[i];
    std::size_t first = 0;
    if (direct[i]) {
      const int fd = file->direct();
      if (fd >= 0 && read_batch_directly(fd, batch, first, static_cast<char*>(staging.get()), staging_bytes, context))
        continue;
      if (fd >= 0) file->direct_refused();
    }
    preadv_fully(file->buffered(), batch.buffers, first, batch.offset, context);
  }
}

std::optional<DirectRead> find_direct_read(const std::string& path, const std::vector<std::string>& datasets,
                                           DType dtype, const Shape& shape, const Shape& start, const Shape& extent) {
  OpenFile file;
  try {
    file = OpenFiles::instance().open(path, "find_direct_read");
  } catch (const IoError&) {
    return std::nullopt;  // not HDF5 to this library
  }
  for (const std::string& name : datasets) {
    if (H5Lexists(file.file, name.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      continue;
    }
    Handle dataset(H5Dopen2(file.file, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!dataset.valid()) break;
    Handle space(H5Dget_space(dataset.get()), H5Sclose);
    std::vector<hsize_t> dims(shape.size());
    if (H5Sget_simple_extent_ndims(space.get()) != static_cast<int>(shape.size()) ||
        H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0 || Shape(dims.begin(), dims.end()) != shape)
      break;
    std::optional<std::vector<StoredPiece>> pieces =
        stored_pieces(file.file, dataset.get(), dtype, shape, start, extent);
    if (!pieces) break;
    return DirectRead{file.posix, std::move(*pieces)};
  }
  H5Eclear2(H5E_DEFAULT);
  return std::nullopt;
}

// The read task of one block. Under hdf5_mutex it checks the dataset and finds
// where the block lies in the file; unfiltered data it then copies with POSIX
// reads outside the mutex, straight into the block (HDF5 would copy each chunk
// through its cache, one thread of the rank at a time: docs/benchmarks.md).
NDArray read_hdf5_block(const Hdf5ReadSpec& spec, const Shape& start, const Shape& extent) {
  NDArray out(spec.dtype, extent);
  const std::string context = "from_hdf5: cannot read block at " + array::shape_str(start) + " of dataset '" +
                              spec.dataset + "' of '" + spec.path + "'";
  std::optional<DirectRead> direct;
  {
    Hdf5Lock lock;
    const OpenFile file = OpenFiles::instance().open(spec.path, "from_hdf5");
    Handle dataset = open_dataset(file.file, spec.path, spec.dataset, "from_hdf5", spec.chunk_bytes);
    const DatasetInfo now = inspect(dataset.get(), spec.path, spec.dataset, "from_hdf5");
    if (now.shape != spec.shape || now.dtype != spec.dtype)
      throw IoError("cannot-read", "from_hdf5: dataset '" + spec.dataset + "' of '" + spec.path +
                                       "' changed after the array was made: it was " +
                                       std::string(array::dtype_name(spec.dtype)) + " " + array::shape_str(spec.shape) +
                                       ", it is " + std::string(array::dtype_name(now.dtype)) + " " +
                                       array::shape_str(now.shape));
    if (out.size() == 0) return out;
    std::optional<std::vector<StoredPiece>> pieces =
        stored_pieces(file.file, dataset.get(), spec.dtype, spec.shape, start, extent);
    if (!pieces) {
      Handle file_space(H5Dget_space(dataset.get()), H5Sclose);
      Handle selection = select_block(file_space.get(), start, extent);
      Handle memory = memory_space(extent);
      Handle type = native_type(spec.dtype);
      check_status(H5Dread(dataset.get(), type.get(), memory.get(), selection.get(), H5P_DEFAULT, out.raw_data()),
                   "cannot-read", context);
      return out;
    }
    direct = DirectRead{file.posix, std::move(*pieces)};
  }
  direct->read(start, extent, array::itemsize(spec.dtype), static_cast<char*>(out.raw_data()), context);
  return out;
}

}  // namespace detail

array::Array from_hdf5(const std::string& path, const std::string& dataset, std::optional<array::ChunkSpec> chunks) {
  using namespace detail;
  check_dataset_name(dataset, "from_hdf5");
  Hdf5ReadSpec spec{fs::absolute(path).string(), absolute_name(dataset), {}, DType::float64, 0};
  DatasetInfo info;
  struct stat st {};
  {
    Hdf5Lock lock;
    const hid_t file = OpenFiles::instance().open(spec.path, "from_hdf5").file;
    Handle ds = open_dataset(file, spec.path, spec.dataset, "from_hdf5");
    info = inspect(ds.get(), spec.path, spec.dataset, "from_hdf5");
    ::stat(spec.path.c_str(), &st);
  }
  spec.shape = info.shape;
  spec.dtype = info.dtype;
  if (info.chunk)
    spec.chunk_bytes = static_cast<std::uint64_t>(array::shape_size(*info.chunk)) * array::itemsize(info.dtype);
  // The dataset's chunking as block sizes, so that "auto" keeps whole chunks.
  Chunks previous;
  if (info.chunk && array::shape_size(info.shape) > 0) {
    for (std::size_t axis = 0; axis < info.shape.size(); ++axis) {
      std::vector<std::int64_t> sizes;
      for (std::int64_t at = 0, c = (*info.chunk)[axis]; at < info.shape[axis]; at += c)
        sizes.push_back(std::min(c, info.shape[axis] - at));
      previous.push_back(std::move(sizes));
    }
  }
  Chunks block_chunks = array::normalize_chunks(chunks.value_or(array::ChunkSpec("auto")), info.shape, info.dtype,
                                                std::nullopt, previous.empty() ? nullptr : &previous);
  // The file's identity and modification time are part of the token: a
  // rewritten file is another array.
  const Token token = array::detail::op_token("from-hdf5", spec.path, spec.dataset, info.shape, info.dtype,
                                              block_chunks, static_cast<std::int64_t>(st.st_ino),
                                              static_cast<std::int64_t>(st.st_size),
                                              static_cast<std::int64_t>(st.st_mtim.tv_sec),
                                              static_cast<std::int64_t>(st.st_mtim.tv_nsec));
  std::vector<std::vector<std::int64_t>> offsets;
  for (const auto& axis : block_chunks) offsets.push_back(array::block_offsets(axis));
  return array::make_array(
      array::detail::ArrayMeta{"from-hdf5", token, info.shape, block_chunks, info.dtype},
      [spec, block_chunks, offsets](std::span<const std::int64_t> index, Key key) {
        Shape start(index.size());
        for (std::size_t axis = 0; axis < index.size(); ++axis)
          start[axis] = offsets[axis][static_cast<std::size_t>(index[axis])];
        return weft::detail::make_call_task(std::move(key), false, &detail::read_hdf5_block, spec, start,
                                            array::block_shape(block_chunks, index));
      });
}

void close_hdf5_files() {
  detail::Hdf5Lock lock;
  detail::OpenFiles::instance().close_all();
}

}  // namespace weft::io
