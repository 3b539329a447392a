// src/io/netcdf.cpp - from_netcdf and to_netcdf (weft/io/netcdf.hpp) on
// NetCDF-C's MPI flavour.
//
// libnetcdf_mpi is not thread-safe and runs on the same libhdf5_openmpi as
// the HDF5 reader and writer, so every nc_* call holds hdf5_mutex (hdf5_mutex.hpp). Open files
// are RAII (NcFile); every failing call becomes an exception naming the path
// and NetCDF's reason (nc_strerror).
#include "weft/io/netcdf.hpp"

#include <netcdf.h>
#include <netcdf_par.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <variant>
#include <system_error>
#include <tuple>
#include <utility>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "blocks.hpp"
#include "hdf5_library.hpp"
#include "hdf5_mutex.hpp"
#include "hdf5_read.hpp"
#include "open_files.hpp"
#include "staging.hpp"
#include "weft/collective.hpp"
#include "weft/error.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io {

namespace detail {

namespace fs = std::filesystem;
using array::DType;
using array::NDArray;
using array::Shape;

// --- NetCDF plumbing ---------------------------------------------------------

void check_nc(int status, std::string_view error_id, const std::string& context) {
  if (status != NC_NOERR) throw IoError(error_id, context + ": " + nc_strerror(status));
}

// An open NetCDF file, closed when destroyed.
class NcFile {
 public:
  NcFile() = default;
  explicit NcFile(int id) : id_(id) {}
  NcFile(NcFile&& o) noexcept : id_(std::exchange(o.id_, -1)) {}
  NcFile& operator=(NcFile&& o) noexcept {
    std::swap(id_, o.id_);
    return *this;
  }
  ~NcFile() {
    if (id_ >= 0) nc_close(id_);
  }
  int get() const noexcept { return id_; }
  /// Closes now, returning nc_close's status (its flush can fail: a full disk).
  int close() noexcept { return id_ < 0 ? NC_NOERR : nc_close(std::exchange(id_, -1)); }

 private:
  int id_ = -1;
};

// The file at `path` opened read-only (hdf5_mutex held). IoError
// "cannot-open" naming the path for a missing, unreadable or non-NetCDF file.
NcFile open_for_reading(const std::string& path, std::string_view op) {
  const std::string context = std::string(op) + ": cannot open '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw IoError("cannot-open", context + ": " + std::generic_category().message(errno));
  int id = -1;
  const int status = nc_open(path.c_str(), NC_NOWRITE, &id);
  if (status == NC_ENOTNC) throw IoError("cannot-open", context + ": not a NetCDF file");
  check_nc(status, "cannot-open", context);
  return NcFile(id);
}

// The files read tasks keep open in this process (OpenFileCache), so that a
// task does not open its file again: NetCDF's open reads the file's metadata
// (0.45-0.6 ms for one variable here, a tenth of reading an 8 MB chunk from
// the page cache). Never destroyed: HDF5 closes what is still open when it
// shuts down, after which nc_close would fail.
class OpenNetcdfFiles {
 public:
  static OpenNetcdfFiles& instance() {
    static OpenNetcdfFiles* files = new OpenNetcdfFiles;
    return *files;
  }
  // The file at `path` open read-only (hdf5_mutex held); open_for_reading's errors.
  int open(const std::string& path, std::string_view op) {
    struct stat st {};
    // Stamped before opening: a file replaced in between is opened again next time.
    const Cache::Stamp stamp = ::stat(path.c_str(), &st) == 0 ? Cache::stamp_of(st) : Cache::Stamp{};
    if (const NcFile* open = cache_.find(path, stamp)) return open->get();
    return cache_.add(path, stamp, open_for_reading(path, op)).get();
  }
  void close_all() { cache_.clear(); }

 private:
  using Cache = OpenFileCache<NcFile>;
  Cache cache_;
};

int variable_id(int file, const std::string& path, const std::string& name, std::string_view op) {
  int id = -1;
  if (name.empty() || nc_inq_varid(file, name.c_str(), &id) != NC_NOERR)
    throw IoError("no-such-variable", std::string(op) + ": '" + path + "' has no variable '" + name + "'");
  return id;
}

// --- Types -------------------------------------------------------------------

// The NetCDF type a dtype is stored as (bool as NC_BYTE, marked by the
// attribute dtype = "bool" as xarray marks it); nullopt for complex.
std::optional<nc_type> nc_type_of(DType dtype) {
  switch (dtype) {
    case DType::bool_:
    case DType::int8: return NC_BYTE;
    case DType::int16: return NC_SHORT;
    case DType::int32: return NC_INT;
    case DType::int64: return NC_INT64;
    case DType::uint8: return NC_UBYTE;
    case DType::uint16: return NC_USHORT;
    case DType::uint32: return NC_UINT;
    case DType::uint64: return NC_UINT64;
    case DType::float32: return NC_FLOAT;
    case DType::float64: return NC_DOUBLE;
    case DType::complex64:
    case DType::complex128: return std::nullopt;
  }
  return std::nullopt;
}

// The dtype of the values as they lie in the file (bool's bytes as int8).
DType stored_dtype(DType dtype) { return dtype == DType::bool_ ? DType::int8 : dtype; }

std::optional<DType> dtype_of_nc_type(nc_type type) {
  switch (type) {
    case NC_BYTE: return DType::int8;
    case NC_SHORT: return DType::int16;
    case NC_INT: return DType::int32;
    case NC_INT64: return DType::int64;
    case NC_UBYTE: return DType::uint8;
    case NC_USHORT: return DType::uint16;
    case NC_UINT: return DType::uint32;
    case NC_UINT64: return DType::uint64;
    case NC_FLOAT: return DType::float32;
    case NC_DOUBLE: return DType::float64;
    default: return std::nullopt;
  }
}

// --- Attributes ----------------------------------------------------------------

NetcdfAttributes read_attributes(int file, int varid) {
  NetcdfAttributes out;
  int count = 0;
  nc_inq_varnatts(file, varid, &count);
  for (int i = 0; i < count; ++i) {
    char name[NC_MAX_NAME + 1] = {};
    nc_type type = NC_NAT;
    std::size_t length = 0;
    if (nc_inq_attname(file, varid, i, name) != NC_NOERR || nc_inq_att(file, varid, name, &type, &length) != NC_NOERR)
      continue;
    if (type == NC_CHAR) {
      std::string text(length, '\0');
      nc_get_att_text(file, varid, name, text.data());
      out[name] = text.substr(0, text.find('\0'));
    } else if (type == NC_STRING && length == 1) {
      char* text = nullptr;
      nc_get_att_string(file, varid, name, &text);
      out[name] = std::string(text ? text : "");
      nc_free_string(1, &text);
    } else if (type == NC_FLOAT || type == NC_DOUBLE) {
      std::vector<double> values(length);
      nc_get_att_double(file, varid, name, values.data());
      if (length == 1) out[name] = values[0];
      else out[name] = std::move(values);
    } else if (dtype_of_nc_type(type)) {
      std::vector<long long> values(length);
      nc_get_att_longlong(file, varid, name, values.data());
      if (length == 1) out[name] = static_cast<std::int64_t>(values[0]);
      else out[name] = std::vector<std::int64_t>(values.begin(), values.end());
    }
  }
  return out;
}

void write_attribute(int file, int varid, const std::string& name, const NetcdfAttribute& value,
                     const std::string& context) {
  const int status = std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        static_assert(sizeof(long long) == sizeof(std::int64_t));
        if constexpr (std::is_same_v<V, std::int64_t>) {
          const long long n = v;
          return nc_put_att_longlong(file, varid, name.c_str(), NC_INT64, 1, &n);
        } else if constexpr (std::is_same_v<V, double>) {
          return nc_put_att_double(file, varid, name.c_str(), NC_DOUBLE, 1, &v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          return nc_put_att_text(file, varid, name.c_str(), v.size(), v.data());
        } else if constexpr (std::is_same_v<V, std::vector<std::int64_t>>) {
          const std::vector<long long> n(v.begin(), v.end());
          return nc_put_att_longlong(file, varid, name.c_str(), NC_INT64, n.size(), n.data());
        } else {
          return nc_put_att_double(file, varid, name.c_str(), NC_DOUBLE, v.size(), v.data());
        }
      },
      value);
  check_nc(status, "cannot-write", context + ": cannot write attribute '" + name + "'");
}

// --- Variables as they are in a file ---------------------------------------------

struct VariableInfo {
  std::vector<std::string> dims;
  Shape shape;
  DType dtype = DType::float64;
  std::optional<Shape> chunk;  // the variable's chunk shape, when chunked
};

VariableInfo inspect(int file, int varid, const std::string& path, const std::string& name, std::string_view op) {
  VariableInfo info;
  nc_type type = NC_NAT;
  int ndims = 0;
  check_nc(nc_inq_var(file, varid, nullptr, &type, &ndims, nullptr, nullptr), "cannot-read",
           std::string(op) + ": variable '" + name + "' of '" + path + "'");
  std::vector<int> dimids(static_cast<std::size_t>(ndims));
  nc_inq_vardimid(file, varid, dimids.data());
  for (const int dimid : dimids) {
    char dim_name[NC_MAX_NAME + 1] = {};
    std::size_t length = 0;
    nc_inq_dim(file, dimid, dim_name, &length);
    info.dims.emplace_back(dim_name);
    info.shape.push_back(static_cast<std::int64_t>(length));
  }
  const std::optional<DType> dtype = dtype_of_nc_type(type);
  if (!dtype) {
    char type_name[NC_MAX_NAME + 1] = {};
    nc_inq_type(file, type, type_name, nullptr);
    throw TypeError("unsupported-dtype", std::string(op) + ": variable '" + name + "' of '" + path + "' holds " +
                                             type_name + " values, which no weft dtype holds");
  }
  info.dtype = *dtype;
  if (type == NC_BYTE) {
    const NetcdfAttributes attributes = read_attributes(file, varid);
    const auto marked = attributes.find("dtype");
    if (marked != attributes.end() && marked->second == NetcdfAttribute(std::string("bool"))) info.dtype = DType::bool_;
  }
  int storage = NC_CONTIGUOUS;
  std::vector<std::size_t> chunk(dimids.size());
  if (ndims > 0 && nc_inq_var_chunking(file, varid, &storage, chunk.data()) == NC_NOERR && storage == NC_CHUNKED)
    info.chunk = Shape(chunk.begin(), chunk.end());
  return info;
}

std::vector<std::size_t> sizes(const Shape& shape) { return {shape.begin(), shape.end()}; }

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// --- Reading -------------------------------------------------------------------

/// What a read task needs: the file, the variable and what from_netcdf saw.
struct NetcdfReadSpec {
  std::string path;
  std::string variable;
  array::Shape shape;
  array::DType dtype = array::DType::float64;
  bool hdf5 = false;  // a NetCDF-4 file, which HDF5 reads too
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path, variable, shape, dtype, hdf5);
  }
};

// The read task of one block: reads the block's hyperslab from the file
// (kept open by OpenNetcdfFiles). A NetCDF-4 file is an HDF5 file, so a
// variable stored as it is (no filter, native byte order, every chunk of the
// block written) is copied as from_hdf5 copies a dataset: located under the
// lock, read outside it, the threads of a rank at once (hdf5_read.hpp);
// nc_get_vara reads everything else. NetCDF-C stores a variable that shares
// its name with a dimension it is not the coordinate of as the HDF5 dataset
// "_nc4_non_coord_<name>", beside the dimension's own dataset "<name>".
NDArray read_netcdf_block(const NetcdfReadSpec& spec, const Shape& start, const Shape& extent) {
  const DType stored_type = stored_dtype(spec.dtype);
  NDArray stored(stored_type, extent);
  const std::string context = "from_netcdf: cannot read block at " + array::shape_str(start) + " of variable '" +
                              spec.variable + "' of '" + spec.path + "'";
  std::optional<DirectRead> direct;
  {
    Hdf5Lock lock;
    const int file = OpenNetcdfFiles::instance().open(spec.path, "from_netcdf");
    const int varid = variable_id(file, spec.path, spec.variable, "from_netcdf");
    const VariableInfo now = inspect(file, varid, spec.path, spec.variable, "from_netcdf");
    if (now.shape != spec.shape || now.dtype != spec.dtype)
      throw IoError("cannot-read", "from_netcdf: variable '" + spec.variable + "' of '" + spec.path +
                                       "' changed after the array was made: it was " +
                                       std::string(array::dtype_name(spec.dtype)) + " " +
                                       array::shape_str(spec.shape) + ", it is " +
                                       std::string(array::dtype_name(now.dtype)) + " " + array::shape_str(now.shape));
    if (stored.size() == 0) return stored.astype(spec.dtype);
    if (spec.hdf5)
      direct = find_direct_read(spec.path, {"/_nc4_non_coord_" + spec.variable, "/" + spec.variable}, stored_type,
                                spec.shape, start, extent);
    if (!direct)
      check_nc(nc_get_vara(file, varid, sizes(start).data(), sizes(extent).data(), stored.raw_data()), "cannot-read",
               context);
  }
  if (direct) direct->read(start, extent, array::itemsize(stored_type), static_cast<char*>(stored.raw_data()), context);
  return spec.dtype == DType::bool_ ? stored.astype(DType::bool_) : stored;
}

}  // namespace detail

array::Array from_netcdf(const std::string& path, const std::string& variable, std::optional<array::ChunkSpec> chunks) {
  using namespace detail;
  NetcdfReadSpec spec{fs::absolute(path).string(), variable, {}, DType::float64};
  VariableInfo info;
  struct stat st {};
  {
    std::lock_guard lock(hdf5_mutex());
    const int file = OpenNetcdfFiles::instance().open(spec.path, "from_netcdf");
    info = inspect(file, variable_id(file, spec.path, variable, "from_netcdf"), spec.path, variable, "from_netcdf");
    int format = 0;
    spec.hdf5 = nc_inq_format(file, &format) == NC_NOERR &&
                (format == NC_FORMAT_NETCDF4 || format == NC_FORMAT_NETCDF4_CLASSIC);
    ::stat(spec.path.c_str(), &st);
  }
  spec.shape = info.shape;
  spec.dtype = info.dtype;
  // The variable's chunking as block sizes, so that "auto" keeps whole chunks.
  array::Chunks previous;
  if (info.chunk && array::shape_size(info.shape) > 0) {
    for (std::size_t axis = 0; axis < info.shape.size(); ++axis) {
      std::vector<std::int64_t> block_sizes;
      for (std::int64_t at = 0, c = std::max<std::int64_t>((*info.chunk)[axis], 1); at < info.shape[axis]; at += c)
        block_sizes.push_back(std::min(c, info.shape[axis] - at));
      previous.push_back(std::move(block_sizes));
    }
  }
  array::Chunks block_chunks = array::normalize_chunks(chunks.value_or(array::ChunkSpec("auto")), info.shape,
                                                       info.dtype, std::nullopt, previous.empty() ? nullptr : &previous);
  // The file's identity and modification time are part of the token: a
  // rewritten (or appended to) file is another array.
  const Token token = array::detail::op_token("from-netcdf", spec.path, spec.variable, info.shape, info.dtype,
                                              block_chunks, static_cast<std::int64_t>(st.st_ino),
                                              static_cast<std::int64_t>(st.st_size),
                                              static_cast<std::int64_t>(st.st_mtim.tv_sec),
                                              static_cast<std::int64_t>(st.st_mtim.tv_nsec));
  return array::make_array(
      array::detail::ArrayMeta{"from-netcdf", token, info.shape, block_chunks, info.dtype},
      [spec, blocks = ArrayBlocks(block_chunks, 0)](std::span<const std::int64_t> index, Key key) {
        const std::vector<std::int64_t> at(index.begin(), index.end());
        return weft::detail::make_call_task(std::move(key), false, &detail::read_netcdf_block, spec, blocks.start(at),
                                            blocks.extent(at));
      });
}

std::vector<std::string> netcdf_dims(const std::string& path, const std::string& variable) {
  using namespace detail;
  std::lock_guard lock(hdf5_mutex());
  NcFile file = open_for_reading(path, "netcdf_dims");
  const int varid = variable_id(file.get(), path, variable, "netcdf_dims");
  int ndims = 0;
  nc_inq_varndims(file.get(), varid, &ndims);
  std::vector<int> dimids(static_cast<std::size_t>(ndims));
  nc_inq_vardimid(file.get(), varid, dimids.data());
  std::vector<std::string> names;
  for (const int dimid : dimids) {
    char name[NC_MAX_NAME + 1] = {};
    nc_inq_dimname(file.get(), dimid, name);
    names.emplace_back(name);
  }
  return names;
}

void close_netcdf_files() {
  {
    std::lock_guard lock(detail::hdf5_mutex());
    detail::OpenNetcdfFiles::instance().close_all();
  }
  close_hdf5_files();  // the direct reads' handles of the same files
}

NetcdfAttributes netcdf_attributes(const std::string& path, const std::string& variable) {
  using namespace detail;
  std::lock_guard lock(hdf5_mutex());
  NcFile file = open_for_reading(path, "netcdf_attributes");
  return read_attributes(file.get(),
                         variable.empty() ? NC_GLOBAL : variable_id(file.get(), path, variable, "netcdf_attributes"));
}

// --- Writing -------------------------------------------------------------------

namespace detail {

struct NetcdfDimPlan {
  std::string name;
  std::int64_t length = 0;
  bool unlimited = false;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, length, unlimited);
  }
};

/// One variable of a write, as every writing rank sees it.
struct NetcdfVariablePlan {
  std::string name;
  std::vector<std::string> dims;
  array::Shape shape;
  array::Chunks chunks;
  array::DType dtype = array::DType::float64;
  NetcdfAttributes attributes;
  std::size_t first_part = 0;  // its first block's position among the step's parts
  int record_axis = -1;        // the axis along the unlimited dimension, if any
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, dims, shape, chunks, dtype, attributes, first_part, record_axis);
  }
};

/// A whole write: the target, the temporary name's token, what to define.
struct NetcdfWritePlan {
  std::string target;
  std::string token;
  bool append = false;  // to the existing target (copied to the temporary name first)
  std::string unlimited_dim;
  std::vector<NetcdfDimPlan> dims;
  std::vector<NetcdfVariablePlan> variables;
  NetcdfAttributes global_attributes;
  int deflate_level = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(target, token, append, unlimited_dim, dims, variables, global_attributes, deflate_level);
  }
  // The token is fresh for every write: it names the write.
  void tokenize(Hasher& h) const { tokenize_into(h, token); }
};

// Defines the dimensions, variables and attributes of a new file.
std::vector<int> define_file(int file, const NetcdfWritePlan& plan, const std::string& context) {
  std::map<std::string, int> dim_ids;
  for (const NetcdfDimPlan& d : plan.dims)
    check_nc(nc_def_dim(file, d.name.c_str(), d.unlimited ? NC_UNLIMITED : static_cast<std::size_t>(d.length),
                        &dim_ids[d.name]),
             "cannot-write", context + ": cannot define dimension '" + d.name + "'");
  std::vector<int> ids;
  for (const NetcdfVariablePlan& v : plan.variables) {
    const std::string where = context + ": variable '" + v.name + "'";
    std::vector<int> dims;
    for (const std::string& d : v.dims) dims.push_back(dim_ids.at(d));
    int varid = -1;
    check_nc(nc_def_var(file, v.name.c_str(), *nc_type_of(v.dtype), static_cast<int>(dims.size()), dims.data(), &varid),
             "cannot-write", where + ": cannot define it");
    if (!v.shape.empty()) {
      // Chunks as the array's blocks (each axis's first block size).
      std::vector<std::size_t> chunk;
      for (const auto& axis : v.chunks) chunk.push_back(static_cast<std::size_t>(std::max<std::int64_t>(axis.front(), 1)));
      check_nc(nc_def_var_chunking(file, varid, NC_CHUNKED, chunk.data()), "cannot-write", where + ": bad chunk shape");
      if (plan.deflate_level > 0)
        check_nc(nc_def_var_deflate(file, varid, 1, 1, plan.deflate_level), "cannot-write", where + ": cannot deflate");
    }
    // Every element of a fixed-size variable is written: filling it first is
    // wasted I/O. Record variables keep their fill value for records that a
    // later append leaves out.
    if (v.record_axis < 0) nc_def_var_fill(file, varid, NC_NOFILL, nullptr);
    for (const auto& [name, value] : v.attributes) write_attribute(file, varid, name, value, where);
    ids.push_back(varid);
  }
  for (const auto& [name, value] : plan.global_attributes) write_attribute(file, NC_GLOBAL, name, value, context);
  check_nc(nc_enddef(file), "cannot-write", context + ": cannot end its definition");
  return ids;
}

// Whether the ranks write variable `v` with collective access. NetCDF-C
// needs it to extend an unlimited dimension and to write filtered (deflated)
// variables. Fixed-size unfiltered variables are written independently:
// every block is whole chunks, so MPI-IO's two-phase aggregation has nothing
// to merge and only sends every block through an aggregator (2 writers,
// 800 MB: 4.1-5.2 s collective, 2.1-2.4 s independent; docs/benchmarks.md).
// 0-d variables are written independently by their owner (a scalar cannot
// be padded with an empty selection).
bool collective_access(const CollectiveContext& ctx, const NetcdfWritePlan& plan, const NetcdfVariablePlan& v) {
  return ctx.comm != MPI_COMM_NULL && !v.shape.empty() && (v.record_axis >= 0 || plan.deflate_level > 0);
}

// One block this rank writes: where it goes in its variable and its elements.
struct NcBlockWrite {
  std::vector<std::int64_t> index;
  std::vector<std::size_t> start, count;
  const NDArray* block = nullptr;
};

// This rank's non-empty blocks of variable `v`, `records` records after the
// start along its unlimited dimension, each checked against the variable's
// chunks (ValueError "block-mismatch") before anything is written.
std::vector<NcBlockWrite> blocks_to_write(const NetcdfWritePlan& plan, const NetcdfVariablePlan& v,
                                          const ArrayBlocks& blocks, std::size_t records,
                                          const LocalParts<NDArray>& mine) {
  std::vector<NcBlockWrite> out;
  for (std::size_t i = 0; i < mine.index.size(); ++i) {
    if (!blocks.holds(mine.index[i])) continue;
    std::vector<std::int64_t> index = blocks.index(mine.index[i]);
    const NDArray& given = *mine.values[i];
    const Shape extent =
        blocks.checked_extent(index, given, "to_netcdf: variable '" + v.name + "' of '" + plan.target + "'");
    if (given.size() == 0) continue;
    std::vector<std::size_t> start = sizes(blocks.start(index));
    if (v.record_axis >= 0) start[static_cast<std::size_t>(v.record_axis)] += records;
    out.push_back({std::move(index), std::move(start), sizes(extent), &given});
  }
  return out;
}

// Writes this rank's blocks of variable `v`. With collective access every
// rank makes as many nc_put_vara calls as the rank with the most blocks
// (empty ones pad) and the ranks agree after each call; independent writes
// agree once, after each rank's last block. So a write that failed on one
// rank (a full disk) stops all of them, instead of leaving the others in a
// collective call or closing the file (collective too) while others write.
// Returns false when another rank failed; this rank's own failure throws.
bool write_blocks(int file, int varid, const NetcdfWritePlan& plan, const NetcdfVariablePlan& v,
                  const ArrayBlocks& blocks, const std::vector<NcBlockWrite>& writes, const CollectiveContext& ctx,
                  const LocalParts<NDArray>& mine, const EarlyWriteback& writeback) {
  const std::string context = "to_netcdf: variable '" + v.name + "' of '" + plan.target + "'";
  const bool collective = collective_access(ctx, plan, v);
  if (ctx.comm != MPI_COMM_NULL)
    check_nc(nc_var_par_access(file, varid, collective ? NC_COLLECTIVE : NC_INDEPENDENT), "cannot-write",
             context + ": cannot set parallel access");
  const std::size_t calls =
      collective ? blocks.most_per_rank(mine.owner, ctx.size) : writes.size();
  const std::vector<std::size_t> none(v.shape.size(), 0);
  const double dummy = 0;  // a buffer for the empty selections
  std::exception_ptr error;
  bool all_ok = true;
  for (std::size_t call = 0; call < calls; ++call) {
    try {
      if (call < writes.size()) {
        const NcBlockWrite& w = writes[call];
        const NDArray block = w.block->astype(stored_dtype(v.dtype));  // contiguous, of the file's type
        check_nc(nc_put_vara(file, varid, w.start.data(), w.count.data(), block.raw_data()), "cannot-write",
                 context + ": cannot write block " + array::shape_str(w.index));
        writeback.start();
      } else {
        check_nc(nc_put_vara(file, varid, none.data(), none.data(), &dummy), "cannot-write",
                 context + ": cannot take part in a collective write");
      }
    } catch (...) {
      error = std::current_exception();
    }
    if (collective) all_ok = all_ranks_ok(ctx, !error);
    if (error || !all_ok) break;
  }
  if (!collective) all_ok = all_ranks_ok(ctx, !error);
  if (error) std::rethrow_exception(error);
  return all_ok;
}

// Opens the temporary file: a new one, or (appending) a copy of the target
// that rank 0 makes while the others wait. False on ranks other than 0 when
// the copy failed (rank 0 throws; the step then fails on every rank).
bool open_file(const CollectiveContext& ctx, const NetcdfWritePlan& plan, const fs::path& temporary, NcFile& file) {
  const std::string context = "to_netcdf: '" + plan.target + "'";
  int id = -1;
  if (!plan.append) {
    const int mode = NC_NETCDF4 | NC_NOCLOBBER;
    check_nc(ctx.comm == MPI_COMM_NULL ? nc_create(temporary.c_str(), mode, &id)
                                       : nc_create_par(temporary.c_str(), mode, ctx.comm, MPI_INFO_NULL, &id),
             "cannot-write", context + ": cannot create '" + temporary.string() + "'");
    file = NcFile(id);
    return true;
  }
  std::error_code copy_error;
  if (ctx.rank == 0) fs::copy_file(plan.target, temporary, copy_error);
  int copied = copy_error ? 0 : 1;
  if (ctx.comm != MPI_COMM_NULL) MPI_Bcast(&copied, 1, MPI_INT, 0, ctx.comm);
  if (copy_error)
    throw IoError("cannot-write", context + ": cannot copy it to '" + temporary.string() + "' to append: " +
                                      copy_error.message());
  if (!copied) return false;
  check_nc(ctx.comm == MPI_COMM_NULL ? nc_open(temporary.c_str(), NC_WRITE, &id)
                                     : nc_open_par(temporary.c_str(), NC_WRITE, ctx.comm, MPI_INFO_NULL, &id),
           "cannot-write", context + ": cannot open its copy '" + temporary.string() + "'");
  file = NcFile(id);
  return true;
}

// Makes (or copies) the temporary file and writes every variable; every rank
// of ctx makes the same collective NetCDF calls.
void write_file(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const NetcdfWritePlan& plan,
                const fs::path& temporary) {
  const std::string context = "to_netcdf: '" + plan.target + "'";
  NcFile file;
  if (!open_file(ctx, plan, temporary, file)) return;
  std::vector<int> ids;
  std::size_t records = 0;  // already in the file along the unlimited dimension
  if (plan.append) {
    for (const NetcdfVariablePlan& v : plan.variables)
      ids.push_back(variable_id(file.get(), plan.target, v.name, "to_netcdf"));
    int dimid = -1;
    if (nc_inq_dimid(file.get(), plan.unlimited_dim.c_str(), &dimid) == NC_NOERR)
      nc_inq_dimlen(file.get(), dimid, &records);
  } else {
    ids = define_file(file.get(), plan, context);
  }
  // Every rank checks its blocks before the first write and the ranks agree,
  // so a bad block on one rank stops all of them before a collective call.
  std::vector<ArrayBlocks> blocks;
  std::vector<std::vector<NcBlockWrite>> writes;
  std::exception_ptr error;
  try {
    for (const NetcdfVariablePlan& v : plan.variables) {
      blocks.emplace_back(v.chunks, v.first_part);
      writes.push_back(blocks_to_write(plan, v, blocks.back(), records, mine));
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (!all_ranks_ok(ctx, !error)) {
    if (error) std::rethrow_exception(error);
    return;
  }
  // A disk too small for the data fails here, before NetCDF's collective
  // calls could fail on one rank only (measured: a full disk while an append
  // extended the record dimension left the ranks apart in H5Dset_extent).
  // Deflated data may need less: its uncompressed size is the bound reserved.
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    bytes += blocks[i].elements_written(mine.owner) * array::itemsize(stored_dtype(plan.variables[i].dtype));
  if (!reserve_space(ctx, temporary, bytes, "NetCDF file", plan.target)) return;
  const EarlyWriteback writeback(temporary);
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (!write_blocks(file.get(), ids[i], plan, plan.variables[i], blocks[i], writes[i], ctx, mine, writeback)) return;
  check_nc(file.close(), "cannot-write", context + ": cannot finish '" + temporary.string() + "'");
}

// The collective step: every worker writes its blocks into the temporary
// file; rank 0 renames it into place once all succeeded.
void write_netcdf_step(const CollectiveContext& ctx, const LocalParts<NDArray>& mine, const NetcdfWritePlan& plan) {
  std::lock_guard lock(hdf5_mutex());
  StagedFile stage(plan.target, plan.token);
  write_staged(ctx, stage, "NetCDF file", [&] { write_file(ctx, mine, plan, stage.temporary()); });
}

// Checks that the variables fit the file they are appended to (ValueError
// "append-mismatch" naming the file and the variable).
void check_append(const NetcdfWritePlan& plan) {
  std::lock_guard lock(hdf5_mutex());
  NcFile file = open_for_reading(plan.target, "to_netcdf");
  const auto mismatch = [&](const std::string& what) {
    return ValueError("append-mismatch", "to_netcdf: cannot append to '" + plan.target + "': " + what);
  };
  int dimid = -1, unlimited = 0;
  int unlimited_ids[NC_MAX_DIMS];
  if (nc_inq_dimid(file.get(), plan.unlimited_dim.c_str(), &dimid) != NC_NOERR ||
      nc_inq_unlimdims(file.get(), &unlimited, unlimited_ids) != NC_NOERR ||
      std::find(unlimited_ids, unlimited_ids + unlimited, dimid) == unlimited_ids + unlimited)
    throw mismatch("it has no unlimited dimension '" + plan.unlimited_dim + "'");
  for (const NetcdfVariablePlan& v : plan.variables) {
    const VariableInfo info =
        inspect(file.get(), variable_id(file.get(), plan.target, v.name, "to_netcdf"), plan.target, v.name, "to_netcdf");
    if (info.dims != v.dims)
      throw mismatch("variable '" + v.name + "' has dimensions (" + joined(info.dims) + ") there, not (" +
                     joined(v.dims) + ")");
    if (info.dtype != v.dtype)
      throw mismatch("variable '" + v.name + "' is " + std::string(array::dtype_name(info.dtype)) + " there, not " +
                     std::string(array::dtype_name(v.dtype)));
    for (std::size_t axis = 0; axis < v.shape.size(); ++axis)
      if (static_cast<int>(axis) != v.record_axis && info.shape[axis] != v.shape[axis])
        throw mismatch("dimension '" + v.dims[axis] + "' of variable '" + v.name + "' has length " +
                       std::to_string(info.shape[axis]) + " there, not " + std::to_string(v.shape[axis]));
  }
}

// Adds a variable's plan (ValueError / TypeError for data that does not fit).
void add_variable(NetcdfWritePlan& plan, const NetcdfVariable& given, bool coordinate, std::size_t first_part) {
  const std::string what = std::string(coordinate ? "coordinate '" : "variable '") + given.name + "'";
  if (given.name.empty()) throw ValueError("bad-option", "to_netcdf: a variable without a name");
  for (const NetcdfVariablePlan& seen : plan.variables)
    if (seen.name == given.name) throw ValueError("duplicate-variable", "to_netcdf: " + what + " is given twice");
  const array::Array& x = given.data;
  if (!nc_type_of(x.dtype()))
    throw TypeError("unsupported-dtype", "to_netcdf: " + what + " is " + std::string(array::dtype_name(x.dtype())) +
                                             ", which NetCDF cannot store");
  if (array::has_unknown(x.chunks()))
    throw ValueError("unknown-chunks", "to_netcdf: " + what + " has unknown chunk sizes " +
                                           array::chunks_str(x.chunks()) + "; call compute_chunk_sizes first");
  if (given.dims.size() != x.shape().size())
    throw ValueError("dim-mismatch", "to_netcdf: " + what + " has " + std::to_string(x.shape().size()) +
                                         " axes but " + std::to_string(given.dims.size()) + " dimension names");
  if (coordinate && given.dims != std::vector<std::string>{given.name})
    throw ValueError("dim-mismatch", "to_netcdf: " + what + " must be 1-d along a dimension of its own name");
  NetcdfVariablePlan v{given.name, given.dims, x.shape(), x.chunks(), x.dtype(), given.attributes, first_part, -1};
  if (x.dtype() == DType::bool_) v.attributes["dtype"] = std::string("bool");
  for (std::size_t axis = 0; axis < v.dims.size(); ++axis) {
    const std::string& name = v.dims[axis];
    if (name.empty()) throw ValueError("dim-mismatch", "to_netcdf: " + what + " has an empty dimension name");
    const bool unlimited = name == plan.unlimited_dim;
    if (unlimited) v.record_axis = static_cast<int>(axis);
    const auto known = std::find_if(plan.dims.begin(), plan.dims.end(), [&](const auto& d) { return d.name == name; });
    if (known == plan.dims.end()) {
      // NetCDF takes a length of 0 for unlimited: a fixed dimension cannot be empty.
      if (!unlimited && v.shape[axis] == 0)
        throw ValueError("dim-mismatch", "to_netcdf: dimension '" + name + "' of " + what +
                                             " has length 0, which only the unlimited dimension may have");
      plan.dims.push_back({name, v.shape[axis], unlimited});
    } else if (known->length != v.shape[axis]) {
      throw ValueError("dim-mismatch", "to_netcdf: dimension '" + name + "' has length " +
                                           std::to_string(known->length) + " elsewhere but " +
                                           std::to_string(v.shape[axis]) + " in " + what);
    }
  }
  plan.variables.push_back(std::move(v));
}

}  // namespace detail

void to_netcdf(const std::string& path, const std::vector<NetcdfVariable>& variables,
               const std::vector<NetcdfVariable>& coords, const NetcdfWriteOptions& options,
               const ComputeOptions& compute) {
  using namespace detail;
  if (options.deflate_level < 0 || options.deflate_level > 9)
    throw ValueError("bad-option", "to_netcdf: deflate_level " + std::to_string(options.deflate_level) +
                                       " is not 0 (off) to 9");
  if (variables.empty() && coords.empty())
    throw ValueError("bad-option", "to_netcdf: no variables to write to '" + path + "'");
  NetcdfWritePlan plan;
  plan.target = check_output_target(path, options.overwrite || options.append, "to_netcdf").string();
  plan.token = staging_token();
  std::error_code ec;
  plan.append = options.append && fs::exists(plan.target, ec);
  plan.unlimited_dim = options.unlimited_dim;
  plan.deflate_level = options.deflate_level;
  plan.global_attributes = options.global_attributes;
  plan.global_attributes.try_emplace("Conventions", std::string("CF-1.8"));
  std::vector<Delayed<NDArray>> parts;
  for (const bool coordinate : {true, false})
    for (const NetcdfVariable& v : coordinate ? coords : variables) {
      add_variable(plan, v, coordinate, parts.size());
      for (Delayed<NDArray>& block : array::to_delayed(v.data)) parts.push_back(std::move(block));
    }
  if (plan.append) check_append(plan);
  partitioned_collective(&write_netcdf_step, DelayedOptions{.name = "to-netcdf", .pure = false})(parts, plan)
      .compute(compute);
}

}  // namespace weft::io
