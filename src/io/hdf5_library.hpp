// src/io/hdf5_library.hpp - what the HDF5 reader and writer share: the
// process's lock around the library, RAII handles, errors from HDF5's error
// stack, and the file types h5py uses for NumPy's dtypes.
//
// Debian's parallel HDF5 is built without thread safety, so every HDF5 call
// of the process happens under one mutex (hdf5_mutex): threads of a rank take
// turns, ranks run in parallel. Handles are RAII (Handle) and errors come
// from HDF5's error stack (its automatic printing is off), so every failure
// is an exception naming the path.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "hdf5_mutex.hpp"
#include "weft/array/chunks.hpp"
#include "weft/array/dtype.hpp"

namespace weft::io::detail {

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
std::string hdf5_reason();

// `id` when valid; otherwise IoError `error_id` "<context>: <HDF5's reason>".
hid_t check(hid_t id, std::string_view error_id, const std::string& context);
void check_status(herr_t status, std::string_view error_id, const std::string& context);

// The native HDF5 type of a dtype: bool is an int8 enum FALSE/TRUE, complex a
// compound {r, i}, as h5py writes them.
Handle native_type(array::DType dtype);
// The dtype weft reads a dataset of file type `type` as, if it has one.
std::optional<array::DType> dtype_of_file_type(hid_t type);
// "integer", "compound", ...: for messages about unsupported types.
std::string type_class_name(hid_t type);

// A file dataspace of `shape` with the hyperslab [start, start + extent)
// selected (everything for a 0-d one).
Handle select_block(hid_t file_space, const array::Shape& start, const array::Shape& extent);
Handle memory_space(const array::Shape& extent);

// ValueError "bad-dataset-name" unless `name` is a dataset path.
void check_dataset_name(const std::string& name, std::string_view op);
// A dataset name as HDF5 takes it: absolute.
std::string absolute_name(const std::string& name);

}  // namespace weft::io::detail
