// src/io/hdf5_library.cpp - the HDF5 plumbing and type mapping that
// hdf5_read.cpp and hdf5_write.cpp share (hdf5_library.hpp).
#include "hdf5_library.hpp"

#include <cstdint>
#include <vector>

#include "weft/error.hpp"

namespace weft::io::detail {

using array::DType;
using array::Shape;

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}



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

hid_t check(hid_t id, std::string_view error_id, const std::string& context) {
  if (id < 0) throw IoError(error_id, context + ": " + hdf5_reason());
  return id;
}
void check_status(herr_t status, std::string_view error_id, const std::string& context) {
  if (status < 0) throw IoError(error_id, context + ": " + hdf5_reason());
}

// --- Types: as h5py stores NumPy's ------------------------------------------

static Handle complex_type(hid_t part) {
  const std::size_t size = H5Tget_size(part);
  Handle t(H5Tcreate(H5T_COMPOUND, 2 * size), H5Tclose);
  H5Tinsert(t.get(), "r", 0, part);
  H5Tinsert(t.get(), "i", size, part);
  return t;
}

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

static std::string member_name(hid_t type, unsigned i) {
  char* name = H5Tget_member_name(type, i);
  std::string out = name ? name : "";
  H5free_memory(name);
  return out;
}

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

std::string absolute_name(const std::string& name) { return name.front() == '/' ? name : "/" + name; }

}  // namespace weft::io::detail
