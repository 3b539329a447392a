// src/io/hdf5.cpp - from_hdf5 and to_hdf5 (weft/io/hdf5.hpp) on HDF5's C API.
//
// Debian's parallel HDF5 is built without thread safety, so every HDF5 call
// of the process happens under one mutex (hdf5_mutex): threads of a rank take
// turns, ranks run in parallel. Handles are RAII (Handle) and errors come
// from HDF5's error stack (its automatic printing is off), so every failure
// is an exception naming the path.
#include "weft/io/hdf5.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <system_error>
#include <tuple>
#include <utility>

#include <cereal/types/variant.hpp>

#include "blocks.hpp"
#include "hdf5_mutex.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/config.hpp"
#include "weft/error.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::Chunks;
using array::DType;
using array::NDArray;
using array::Shape;

// --- HDF5 plumbing -----------------------------------------------------------

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Holds hdf5_mutex; the first holder turns HDF5's printing of errors off.
// It also asks HDF5 not to close what is left open at exit (when weft is the
// first to use the library): an H5Fclose whose flush failed (a full disk)
// leaves an identifier that HDF5 1.10 cannot close again, and its exit
// handler crashed on it. weft closes every file it opens itself.
class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(hdf5_mutex()) {
    static const bool quiet = (H5dont_atexit(), H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0);
    (void)quiet;
  }

 private:
  std::lock_guard<std::mutex> lock_;
};

// An HDF5 identifier and the function that closes it.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(close_, o.close_);
    return *this;
  }
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  /// Closes now, reporting failure (H5Fclose's flush can fail: a full disk).
  bool close() noexcept { return id_ < 0 || close_(std::exchange(id_, H5I_INVALID_HID)) >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// The innermost description on HDF5's error stack (the most specific one,
// e.g. "unable to open file: ... error message = 'No such file or directory'").
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD,
           [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
             auto& text = *static_cast<std::string*>(out);
             if (text.empty() && e->desc != nullptr && *e->desc != '\0') text = e->desc;
             return 0;
           },
           &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? "HDF5 reported an error" : reason;
}

// `id` when valid; otherwise IoError `error_id` "<context>: <HDF5's reason>".
hid_t check(hid_t id, std::string_view error_id, const std::string& context) {
  if (id < 0) throw IoError(error_id, context + ": " + hdf5_reason());
  return id;
}
void check_status(herr_t status, std::string_view error_id, const std::string& context) {
  if (status < 0) throw IoError(error_id, context + ": " + hdf5_reason());
}

// --- Types: as h5py stores NumPy's ------------------------------------------

Handle complex_type(hid_t part) {
  const std::size_t size = H5Tget_size(part);
  Handle t(H5Tcreate(H5T_COMPOUND, 2 * size), H5Tclose);
  H5Tinsert(t.get(), "r", 0, part);
  H5Tinsert(t.get(), "i", size, part);
  return t;
}

// The native HDF5 type of a dtype: bool is an int8 enum FALSE/TRUE, complex a
// compound {r, i}, as h5py writes them.
Handle native_type(DType dtype) {
  switch (dtype) {
    case DType::bool_: {
      Handle t(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
      const std::int8_t no = 0, yes = 1;
      H5Tenum_insert(t.get(), "FALSE", &no);
      H5Tenum_insert(t.get(), "TRUE", &yes);
      return t;
    }
    case DType::int8: return {H5Tcopy(H5T_NATIVE_INT8), H5Tclose};
    case DType::int16: return {H5Tcopy(H5T_NATIVE_INT16), H5Tclose};
    case DType::int32: return {H5Tcopy(H5T_NATIVE_INT32), H5Tclose};
    case DType::int64: return {H5Tcopy(H5T_NATIVE_INT64), H5Tclose};
    case DType::uint8: return {H5Tcopy(H5T_NATIVE_UINT8), H5Tclose};
    case DType::uint16: return {H5Tcopy(H5T_NATIVE_UINT16), H5Tclose};
    case DType::uint32: return {H5Tcopy(H5T_NATIVE_UINT32), H5Tclose};
    case DType::uint64: return {H5Tcopy(H5T_NATIVE_UINT64), H5Tclose};
    case DType::float32: return {H5Tcopy(H5T_NATIVE_FLOAT), H5Tclose};
    case DType::float64: return {H5Tcopy(H5T_NATIVE_DOUBLE), H5Tclose};
    case DType::complex64: return complex_type(H5T_NATIVE_FLOAT);
    case DType::complex128: return complex_type(H5T_NATIVE_DOUBLE);
  }
  return {};
}

std::string member_name(hid_t type, unsigned i) {
  char* name = H5Tget_member_name(type, i);
  std::string out = name ? name : "";
  H5free_memory(name);
  return out;
}

// The dtype weft reads a dataset of file type `type` as, if it has one.
std::optional<DType> dtype_of_file_type(hid_t type) {
  const std::size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type) != H5T_SGN_NONE;
      switch (size) {
        case 1: return is_signed ? DType::int8 : DType::uint8;
        case 2: return is_signed ? DType::int16 : DType::uint16;
        case 4: return is_signed ? DType::int32 : DType::uint32;
        case 8: return is_signed ? DType::int64 : DType::uint64;
        default: return std::nullopt;
      }
    }
    case H5T_FLOAT:
      if (size == 4) return DType::float32;
      if (size == 8) return DType::float64;
      return std::nullopt;
    case H5T_ENUM:
      if (size == 1 && H5Tget_nmembers(type) == 2 && member_name(type, 0) == "FALSE" &&
          member_name(type, 1) == "TRUE")
        return DType::bool_;
      return std::nullopt;
    case H5T_COMPOUND: {
      if (H5Tget_nmembers(type) != 2 || member_name(type, 0) != "r" || member_name(type, 1) != "i")
        return std::nullopt;
      Handle re(H5Tget_member_type(type, 0), H5Tclose), im(H5Tget_member_type(type, 1), H5Tclose);
      if (H5Tget_class(re.get()) != H5T_FLOAT || H5Tequal(re.get(), im.get()) <= 0) return std::nullopt;
      if (H5Tget_size(re.get()) == 4) return DType::complex64;
      if (H5Tget_size(re.get()) == 8) return DType::complex128;
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

std::string type_class_name(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    default: return "unknown";
  }
}

// --- Reading -------------------------------------------------------------------

// A file descriptor of its own beside HDF5's handle of the same file: read
// tasks copy unfiltered chunks with it outside hdf5_mutex, so the threads of
// a rank read at once. Shared, so a read in progress outlives its cache entry.
class PosixFile {
 public:
  explicit PosixFile(int fd) noexcept : fd_(fd) {}
  ~PosixFile() { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

// A file open for reading: HDF5's handle and the descriptor for direct reads.
struct OpenFile {
  hid_t file = H5I_INVALID_HID;
  std::shared_ptr<const PosixFile> posix;
};

// Files the read tasks of this process keep open, by path. An entry is
// reopened when the file at the path is another one or was changed (inode,
// size or modification time differ), so a file replaced by to_hdf5 or by
// another program is never read through a stale handle.
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
    const Stamp stamp = stamp_of(st);
    for (auto it = files_.begin(); it != files_.end(); ++it) {
      if (it->path != path) continue;
      if (it->stamp == stamp) {
        files_.splice(files_.begin(), files_, it);  // most recently used first
        return {files_.front().file.get(), files_.front().posix};
      }
      files_.erase(it);
      break;
    }
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw IoError("cannot-open", std::string(op) + ": cannot open '" + path + "': not an HDF5 file");
    }
    Handle file(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "cannot-open",
                      std::string(op) + ": cannot open '" + path + "'"),
                H5Fclose);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw cannot_open(std::generic_category().message(errno));
    auto posix = std::make_shared<const PosixFile>(fd);
    // Both handles must see the file that was stamped (a rename can replace it).
    if (::fstat(fd, &st) != 0 || stamp_of(st) != stamp) throw cannot_open("it was replaced while being opened");
    if (files_.size() >= kMaxOpen) files_.pop_back();
    files_.push_front(Entry{path, stamp, std::move(file), std::move(posix)});
    return {files_.front().file.get(), files_.front().posix};
  }
  void close_all() { files_.clear(); }

 private:
  static constexpr std::size_t kMaxOpen = 32;
  using Stamp = std::tuple<dev_t, ino_t, off_t, time_t, long>;
  static Stamp stamp_of(const struct stat& st) {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  }
  struct Entry {
    std::string path;
    Stamp stamp;
    Handle file;
    std::shared_ptr<const PosixFile> posix;
  };
  std::list<Entry> files_;
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

// A file dataspace of `shape` with the hyperslab [start, start + extent)
// selected (everything for a 0-d one).
Handle select_block(hid_t file_space, const Shape& start, const Shape& extent) {
  Handle space(H5Scopy(file_space), H5Sclose);
  if (!extent.empty()) {
    std::vector<hsize_t> offset(start.begin(), start.end()), count(extent.begin(), extent.end());
    H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, offset.data(), nullptr, count.data(), nullptr);
  }
  return space;
}

Handle memory_space(const Shape& extent) {
  if (extent.empty()) return {H5Screate(H5S_SCALAR), H5Sclose};
  std::vector<hsize_t> dims(extent.begin(), extent.end());
  return {H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
}

void check_dataset_name(const std::string& name, std::string_view op) {
  if (name.empty() || name == "/" || name.back() == '/' || name.find("//") != std::string::npos)
    throw ValueError("bad-dataset-name", std::string(op) + ": '" + name + "' is not a dataset path");
}

// A dataset name as HDF5 takes it: absolute.
std::string absolute_name(const std::string& name) { return name.front() == '/' ? name : "/" + name; }

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

// A piece of a dataset's storage that lies in the file byte for byte: one
// chunk, or the whole of a contiguous dataset. Edge chunks are stored whole.
struct StoredPiece {
  Shape origin;  // its first element in the dataset
  Shape shape;
  haddr_t address = HADDR_UNDEF;  // of its first byte in the file
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

// Reads bytes from `offset` on into the buffers `iov` (consumed), all of them
// (pread may return fewer).
void preadv_fully(int fd, std::vector<iovec>& iov, off_t offset, const std::string& context) {
  for (std::size_t first = 0; first < iov.size();) {
    const ssize_t got = ::preadv(fd, iov.data() + first, static_cast<int>(std::min(iov.size() - first, kMaxBuffers)), offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw IoError("cannot-read", context + ": " + std::generic_category().message(errno));
    if (got == 0) throw IoError("cannot-read", context + ": the file ends before the data (truncated?)");
    offset += got;
    for (auto left = static_cast<std::size_t>(got); left > 0;) {
      iovec& v = iov[first];
      const std::size_t step = std::min(left, v.iov_len);
      v.iov_base = static_cast<char*>(v.iov_base) + step;
      v.iov_len -= step;
      left -= step;
      if (v.iov_len == 0) ++first;
    }
  }
}

// Copies the block [start, start + extent) out of `pieces` of the file into
// `out` (C order) with POSIX reads, no HDF5 and no buffer between: each run of
// the block's last axis inside a piece is one destination, and runs that follow
// each other in the file are one preadv (a 1000 x 1000 chunk of a wider block:
// 1000 destinations, one call).
void read_pieces(int fd, const std::vector<StoredPiece>& pieces, const Shape& start, const Shape& extent,
                 std::size_t itemsize, char* out, const std::string& context) {
  const std::size_t ndim = extent.size();
  const array::Strides block_strides = array::c_strides(extent);
  std::vector<iovec> batch;
  off_t batch_offset = 0, batch_end = 0;
  const auto flush = [&] {
    if (!batch.empty()) preadv_fully(fd, batch, batch_offset, context);
    batch.clear();
  };
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
      if (batch.empty() || offset != batch_end || batch.size() == kMaxBuffers) {
        flush();
        batch_offset = offset;
      }
      if (!batch.empty() && static_cast<char*>(batch.back().iov_base) + batch.back().iov_len == to)
        batch.back().iov_len += run;  // contiguous in the block too
      else
        batch.push_back({to, run});
      batch_end = offset + static_cast<off_t>(run);
      std::size_t a = ndim - 1;  // the last axis is the run
      while (a-- > 0 && ++at[a] >= hi[a]) at[a] = lo[a];
      if (a == static_cast<std::size_t>(-1)) break;
    }
  }
  flush();
}

// The memory of a block about to be read. A large one is mapped with
// transparent huge pages: the kernel's copy into fresh memory then faults once
// per 2 MiB instead of once per 4 KiB page, and those faults were most of a
// read's time (perf: docs/benchmarks.md, "Array I/O").
NDArray block_buffer(DType dtype, const Shape& extent) {
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  const std::size_t bytes = static_cast<std::size_t>(array::shape_size(extent)) * array::itemsize(dtype);
  if (extent.empty() || bytes < kHugePage) return NDArray(dtype, extent);
  // One huge page more than needed, to start the block on a huge-page boundary.
  const std::size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage + kHugePage;
  void* base = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) throw std::bad_alloc();
  std::shared_ptr<void> owner(base, [mapped](void* p) { ::munmap(p, mapped); });
  const auto at = (reinterpret_cast<std::uintptr_t>(base) + kHugePage - 1) / kHugePage * kHugePage;
  void* data = reinterpret_cast<void*>(at);
  ::madvise(data, mapped - (at - reinterpret_cast<std::uintptr_t>(base)), MADV_HUGEPAGE);  // advice only
  return NDArray::wrap(data, dtype, extent, {}, std::move(owner));
}

// The read task of one block. Under hdf5_mutex it checks the dataset and finds
// where the block lies in the file; unfiltered data it then copies with POSIX
// reads outside the mutex, straight into the block (HDF5 would copy each chunk
// through its cache, one thread of the rank at a time: docs/benchmarks.md).
NDArray read_hdf5_block(const Hdf5ReadSpec& spec, const Shape& start, const Shape& extent) {
  NDArray out = block_buffer(spec.dtype, extent);
  const std::string context = "from_hdf5: cannot read block at " + array::shape_str(start) + " of dataset '" +
                              spec.dataset + "' of '" + spec.path + "'";
  std::optional<std::vector<StoredPiece>> pieces;
  std::shared_ptr<const PosixFile> posix;
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
    pieces = stored_pieces(file.file, dataset.get(), spec.dtype, spec.shape, start, extent);
    if (!pieces) {
      Handle file_space(H5Dget_space(dataset.get()), H5Sclose);
      Handle selection = select_block(file_space.get(), start, extent);
      Handle memory = memory_space(extent);
      Handle type = native_type(spec.dtype);
      check_status(H5Dread(dataset.get(), type.get(), memory.get(), selection.get(), H5P_DEFAULT, out.raw_data()),
                   "cannot-read", context);
      return out;
    }
    posix = file.posix;
  }
  read_pieces(posix->fd(), *pieces, start, extent, array::itemsize(spec.dtype), static_cast<char*>(out.raw_data()),
              context);
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

// --- Writing -------------------------------------------------------------------

namespace detail {

/// One dataset of a write, as every writing rank sees it.
struct Hdf5DatasetPlan {
  std::string name;
  array::Shape shape;
  array::Chunks chunks;
  array::DType dtype = array::DType::float64;
  Hdf5Attributes attributes;
  std::size_t first_part = 0;  // its first block's position among the step's parts
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, shape, chunks, dtype, attributes, first_part);
  }
};

/// A whole write: the target, the temporary name's token, the datasets and
/// the settings read from the configuration when the write was built.
struct Hdf5WritePlan {
  std::string target;
  std::string token;
  std::vector<Hdf5DatasetPlan> datasets;
  int gzip_level = 0;
  bool shuffle = false;
  bool file_locking = false;
  bool collective_transfer = false;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(target, token, datasets, gzip_level, shuffle, file_locking, collective_transfer);
  }
  // The token is fresh for every write: it names the write.
  void tokenize(Hasher& h) const { tokenize_into(h, token); }
};

bool filtered(const Hdf5WritePlan& plan) { return plan.gzip_level > 0 || plan.shuffle; }

void write_attribute(hid_t dataset, const std::string& name, const Hdf5Attribute& value, const std::string& context) {
  const auto create_and_write = [&](hid_t type, hid_t space, const void* data) {
    Handle attribute(check(H5Acreate2(dataset, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "cannot-write",
                           context + ": cannot make attribute '" + name + "'"),
                     H5Aclose);
    check_status(H5Awrite(attribute.get(), type, data), "cannot-write",
                 context + ": cannot write attribute '" + name + "'");
  };
  const auto list_space = [](std::size_t n) {
    const hsize_t dims[1] = {n};
    return Handle(H5Screate_simple(1, dims, nullptr), H5Sclose);
  };
  Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::int64_t>) {
          create_and_write(H5T_NATIVE_INT64, scalar.get(), &v);
        } else if constexpr (std::is_same_v<V, double>) {
          create_and_write(H5T_NATIVE_DOUBLE, scalar.get(), &v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          // Variable-length UTF-8, as h5py writes str attributes (read back as str).
          Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
          H5Tset_size(type.get(), H5T_VARIABLE);
          H5Tset_cset(type.get(), H5T_CSET_UTF8);
          const char* text = v.c_str();
          create_and_write(type.get(), scalar.get(), &text);
        } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>) {
          create_and_write(H5T_NATIVE_INT64, list_space(v.size()).get(), v.data());
        } else {
          create_and_write(H5T_NATIVE_DOUBLE, list_space(v.size()).get(), v.data());
        }
      },
      value);
}

// Creates a dataset of the plan in `file` (every rank, collectively).
Handle create_dataset(hid_t file, const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d) {
  const std::string context = "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'";
  Handle space = memory_space(d.shape);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Chunks as the array's (dask's to_hdf5 takes each axis's first block);
  // 0-d and empty datasets cannot be chunked, so they stay unfiltered.
  if (!d.shape.empty() && array::shape_size(d.shape) > 0) {
    std::vector<hsize_t> chunk;
    for (const auto& axis : d.chunks) chunk.push_back(static_cast<hsize_t>(std::max<std::int64_t>(axis.front(), 1)));
    check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "cannot-write",
                 context + ": bad chunk shape");
    if (plan.shuffle) H5Pset_shuffle(dcpl.get());
    if (plan.gzip_level > 0) H5Pset_deflate(dcpl.get(), static_cast<unsigned>(plan.gzip_level));
    // Chunks are written whole by their blocks: filling them first is wasted I/O.
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  }
  H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_LATE);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle type = native_type(d.dtype);
  Handle dataset(check(H5Dcreate2(file, d.name.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
                       "cannot-write", context + ": cannot make it"),
                 H5Dclose);
  for (const auto& [name, value] : d.attributes) write_attribute(dataset.get(), name, value, context);
  return dataset;
}

// One block this rank writes: where it goes and its elements.
struct BlockWrite {
  std::vector<std::int64_t> index;
  Shape start, extent;
  const NDArray* block = nullptr;
};

// This rank's non-empty blocks of dataset `d`, each checked against the
// dataset's chunks (ValueError "block-mismatch") before anything is written.
std::vector<BlockWrite> blocks_to_write(const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d, const ArrayBlocks& blocks,
                                        const LocalParts<NDArray>& mine) {
  std::vector<BlockWrite> out;
  for (std::size_t i = 0; i < mine.index.size(); ++i) {
    if (!blocks.holds(mine.index[i])) continue;
    std::vector<std::int64_t> index = blocks.index(mine.index[i]);
    const Shape extent = blocks.extent(index);
    const NDArray& given = *mine.values[i];
    if (given.shape() != extent)
      throw ValueError("block-mismatch", "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "': block " +
                                             array::shape_str(index) + " has shape " + array::shape_str(given.shape()) +
                                             ", expected " + array::shape_str(extent));
    if (given.size() == 0) continue;
    Shape start = blocks.start(index);
    out.push_back({std::move(index), std::move(start), extent, &given});
  }
  return out;
}

// Writes this rank's blocks of dataset `d`. With a collective transfer every
// rank issues as many H5Dwrite calls as the rank with the most blocks of the
// dataset (the extra ones with empty selections), and the ranks agree after
// each call, so that a write that failed on one rank stops all of them
// instead of leaving the others in the next collective call. Returns false
// when another rank failed; this rank's own failure throws.
bool write_blocks(hid_t dataset, const Hdf5WritePlan& plan, const Hdf5DatasetPlan& d, const ArrayBlocks& blocks,
                  const std::vector<BlockWrite>& writes, hid_t dxpl, const CollectiveContext& ctx,
                  const LocalParts<NDArray>& mine, const EarlyWriteback& writeback) {
  const std::string context = "to_hdf5: dataset '" + d.name + "' of '" + plan.target + "'";
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  Handle type = native_type(d.dtype);
  const std::size_t calls = plan.collective_transfer ? blocks.most_per_rank(mine.owner, ctx.size) : writes.size();
  for (std::size_t call = 0; call < calls; ++call) {
    std::exception_ptr error;
    try {
      if (call < writes.size()) {
        const BlockWrite& w = writes[call];
        const NDArray block = w.block->astype(d.dtype);  // contiguous, of the dataset's dtype
        Handle selection = select_block(file_space.get(), w.start, w.extent);
        Handle memory = memory_space(w.extent);
        check_status(H5Dwrite(dataset, type.get(), memory.get(), selection.get(), dxpl, block.raw_data()),
                     "cannot-write", context + ": cannot write block " + array::shape_str(w.index));
        writeback.start();
      } else {
        Handle none(H5Scopy(file_space.get()), H5Sclose);
        H5Sselect_none(none.get());
        const double dummy = 0;  // HDF5 wants a buffer even for an empty selection
        check_status(H5Dwrite(dataset, type.get(), none.get(), none.get(), dxpl, &dummy), "cannot-write",
                     context + ": cannot take part in a collective write");
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (plan.collective_transfer ? !all_ranks_ok(ctx, !error) : error != nullptr) {
      if (error) std::rethrow_exception(error);
      return false;
    }
  }
  return true;
}

// Makes the temporary file and writes every dataset; every rank of ctx the
// same HDF5 calls (the file is opened on ctx.comm with MPI-IO). Returns
// normally, having written nothing more, when another rank failed.
void write_file(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const Hdf5WritePlan& plan,
                const fs::path& temporary) {
  const std::string context = "to_hdf5: '" + plan.target + "'";
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (ctx.comm != MPI_COMM_NULL) H5Pset_fapl_mpio(fapl.get(), ctx.comm, MPI_INFO_NULL);
  // Nobody else knows the temporary name, and flock fails or hangs on some
  // Lustre/NFS mounts: locking is off unless io.hdf5.file-locking asks.
  H5Pset_file_locking(fapl.get(), plan.file_locking, true);
  Handle file(check(H5Fcreate(temporary.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), "cannot-write",
                    context + ": cannot create '" + temporary.string() + "'"),
              H5Fclose);
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (ctx.comm != MPI_COMM_NULL)
    H5Pset_dxpl_mpio(dxpl.get(), plan.collective_transfer ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
  std::vector<Handle> datasets;
  for (const Hdf5DatasetPlan& d : plan.datasets) datasets.push_back(create_dataset(file.get(), plan, d));
  // Every rank checks its blocks before the first write and the ranks agree,
  // so a bad block on one rank stops all of them before a collective call.
  std::vector<ArrayBlocks> blocks;
  std::vector<std::vector<BlockWrite>> writes;
  std::exception_ptr error;
  try {
    for (const Hdf5DatasetPlan& d : plan.datasets) {
      blocks.emplace_back(d.chunks, d.first_part);
      writes.push_back(blocks_to_write(plan, d, blocks.back(), mine));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (!all_ranks_ok(ctx, !error)) {
    if (error) std::rethrow_exception(error);
    return;
  }
  const EarlyWriteback writeback(temporary);
  for (std::size_t i = 0; i < datasets.size(); ++i)
    if (!write_blocks(datasets[i].get(), plan, plan.datasets[i], blocks[i], writes[i], dxpl.get(), ctx, mine, writeback))
      return;
  for (Handle& d : datasets)
    if (!d.close()) check_status(-1, "cannot-write", context + ": cannot close a dataset");
  if (!file.close()) check_status(-1, "cannot-write", context + ": cannot finish '" + temporary.string() + "'");
}

// The collective step: every worker writes its blocks into the temporary
// file; rank 0 renames it into place once all succeeded.
void write_hdf5_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const Hdf5WritePlan& plan) {
  Hdf5Lock lock;
  StagedFile stage(plan.target, plan.token);
  write_staged(ctx, stage, "HDF5 file", [&] { write_file(ctx, mine, plan, stage.temporary()); });
}

// io.hdf5.transfer: how unfiltered datasets are written on several ranks.
bool collective_transfer(bool filters) {
  const std::string choice = config::get<std::string>("io.hdf5.transfer");
  if (choice == "collective") return true;
  if (choice == "independent") return filters;  // HDF5 1.10 writes filtered data collectively only
  if (choice == "auto") return filters;
  throw ConfigError("bad-value", "bad value for 'io.hdf5.transfer': '" + choice +
                                     "' (use auto, collective or independent)");
}

}  // namespace detail

void to_hdf5(const std::string& path, const std::vector<Hdf5Dataset>& datasets, const Hdf5WriteOptions& options,
             const ComputeOptions& compute) {
  using namespace detail;
  if (options.gzip_level < 0 || options.gzip_level > 9)
    throw ValueError("bad-option", "to_hdf5: gzip_level " + std::to_string(options.gzip_level) +
                                       " is not 0 (off) to 9");
  Hdf5WritePlan plan;
  plan.target = check_output_target(path, options.overwrite, "to_hdf5").string();
  plan.token = staging_token();
  plan.gzip_level = options.gzip_level;
  plan.shuffle = options.shuffle;
  plan.file_locking = config::get<bool>("io.hdf5.file-locking");
  plan.collective_transfer = collective_transfer(filtered(plan));
  std::vector<Delayed<NDArray>> parts;
  for (const Hdf5Dataset& d : datasets) {
    check_dataset_name(d.name, "to_hdf5");
    const std::string name = absolute_name(d.name);
    for (const Hdf5DatasetPlan& seen : plan.datasets)
      if (seen.name == name)
        throw ValueError("duplicate-dataset", "to_hdf5: dataset '" + name + "' is given twice");
    if (array::has_unknown(d.array.chunks()))
      throw ValueError("unknown-chunks", "to_hdf5: dataset '" + name + "' has unknown chunk sizes " +
                                             array::chunks_str(d.array.chunks()) + "; call compute_chunk_sizes first");
    Hdf5Attributes attributes = d.attributes;
    attributes.insert(options.attributes.begin(), options.attributes.end());  // the dataset's own win
    plan.datasets.push_back({name, d.array.shape(), d.array.chunks(), d.array.dtype(), std::move(attributes),
                             parts.size()});
    for (Delayed<NDArray>& block : array::to_delayed(d.array)) parts.push_back(std::move(block));
  }
  if (plan.datasets.empty()) throw ValueError("bad-option", "to_hdf5: no datasets to write to '" + path + "'");
  partitioned_collective(&write_hdf5_step, DelayedOptions{.name = "to-hdf5", .pure = false})(parts, plan)
      .compute(compute);
}

void to_hdf5(const std::string& path, const std::string& dataset, const array::Array& x,
             const Hdf5WriteOptions& options, const ComputeOptions& compute) {
  to_hdf5(path, std::vector<Hdf5Dataset>{{dataset, x, {}}}, options, compute);
}

}  // namespace weft::io
