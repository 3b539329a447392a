// weft/io/netcdf.hpp - arrays from and to NetCDF-4 files (xarray's
// Dataset.to_netcdf and open_dataset, in spirit): named dimensions,
// coordinate variables, CF attributes, and appending along an unlimited
// dimension (a time series written step by step).
//
//   namespace wa = weft::array;
//   wio::to_netcdf("t.nc",
//                  {{"t", temperature, {"time", "lat", "lon"}, {{"units", "K"}}}},   // variables
//                  {{"time", time, {"time"}, {{"units", "days since 2000-01-01"}}},  // coordinates
//                   {"lat", lat, {"lat"}, {{"units", "degrees_north"}}},
//                   {"lon", lon, {"lon"}, {{"units", "degrees_east"}}}});
//   wio::to_netcdf("t.nc", {{"t", next, {"time", "lat", "lon"}}}, {{"time", t1, {"time"}}},
//                  {.append = true});                  // two more records along "time"
//   wa::Array t = wio::from_netcdf("t.nc", "t");       // chunks: the variable's
//
// Writing computes the variables and writes them in one pass, as to_hdf5
// does (weft/io/hdf5.hpp): into `<path>.weft-tmp-<token>`, renamed over the
// target only when every block is written and synced. On the distributed
// scheduler every worker writes the blocks it holds into the same file in one
// collective step (nc_create_par on the workers' communicator, NetCDF-4 on
// parallel HDF5). Fixed-size unfiltered variables are written with
// NC_INDEPENDENT access (each rank its own blocks, whole chunks: twice as
// fast as collective on 2 writers). NetCDF-C needs NC_COLLECTIVE access to
// extend an unlimited dimension and to write filtered (deflated) variables,
// so for those every rank issues as many nc_put_vara calls as the rank with
// the most blocks of each variable (empty ones pad the shorter lists). On
// the local schedulers one task writes with the serial nc_create. Variables
// are chunked like the arrays (each axis's first block size).
//
// Appending (`append = true`) adds the variables' records after those of the
// file along `unlimited_dim`; variables without that dimension are rewritten
// in place (same shape); the file's attributes stay as they are (those given
// are for new files). It copies the file to the temporary name, appends
// there and renames, so a failure leaves the file as it was: the price is a
// copy of the whole file per append (appending in place could leave a file
// half-extended). Appending to a missing file creates it.
//
// Types: the integer and float dtypes map to NetCDF's (int8 NC_BYTE ...
// float64 NC_DOUBLE); bool is stored as NC_BYTE with the attribute
// dtype = "bool", as xarray stores it, and read back as bool; complex has no
// NetCDF type (TypeError "unsupported-dtype"). Reading returns the stored
// values: CF packing (scale_factor, add_offset) and _FillValue masking are
// not applied.
//
// Errors name the path and the problem: IoError "cannot-open" (missing or not
// NetCDF), "no-such-variable", "cannot-read", "cannot-write",
// "target-exists"; TypeError "unsupported-dtype"; ValueError
// "dim-mismatch" (dimension names or lengths that do not fit the data or the
// file appended to), "duplicate-variable", "bad-option".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/chunks.hpp"
#include "weft/compute.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io {

/// An attribute value: a number, a text or a 1-d list of numbers (the same
/// values as HDF5 attributes).
using NetcdfAttribute = Hdf5Attribute;
using NetcdfAttributes = Hdf5Attributes;

/// A variable: its name, its data, one dimension name per axis, attributes
/// (units, long_name, standard_name ...). A coordinate variable is a 1-d
/// variable named like its dimension.
struct NetcdfVariable {
  std::string name;
  array::Array data;
  std::vector<std::string> dims;
  NetcdfAttributes attributes{};
};

struct NetcdfWriteOptions {
  /// Replace an existing file at the path (without it: IoError "target-exists").
  bool overwrite = false;
  /// Append records along `unlimited_dim` to the file at the path (above).
  bool append = false;
  /// The dimension made unlimited when a variable uses it (and appended along).
  std::string unlimited_dim = "time";
  /// zlib (deflate) level 1-9 for every variable, with the shuffle filter
  /// (as xarray's zlib=True); 0 writes unfiltered.
  int deflate_level = 0;
  /// Global attributes; Conventions = "CF-1.8" unless given.
  NetcdfAttributes global_attributes{};
};

/// Writes `variables` and the coordinate variables `coords` into a new
/// NetCDF-4 file at `path` (or appends to it), computed in one pass.
void to_netcdf(const std::string& path, const std::vector<NetcdfVariable>& variables,
               const std::vector<NetcdfVariable>& coords = {}, const NetcdfWriteOptions& options = {},
               const ComputeOptions& compute = {});

/// The array stored in `variable` of the NetCDF file at `path` (read when
/// computed, one task per block; a process keeps the files its tasks read
/// open). `chunks` defaults to "auto" growing the variable's own chunking by
/// whole multiples (plain "auto" if contiguous). A NetCDF-4 variable stored
/// unfiltered is copied straight from the file as from_hdf5 copies a
/// dataset (io.direct-reads); others are read with nc_get_vara.
array::Array from_netcdf(const std::string& path, const std::string& variable,
                         std::optional<array::ChunkSpec> chunks = std::nullopt);

/// Closes the files that read tasks keep open in this process (at most 32,
/// reopened when needed), e.g. before another program rewrites them in place;
/// also those HDF5 keeps open for them (close_hdf5_files: NetCDF-4 variables
/// stored as they are read like HDF5 datasets, and HDF5 holds a lock).
void close_netcdf_files();

/// The dimension names of `variable` in the file at `path`.
std::vector<std::string> netcdf_dims(const std::string& path, const std::string& variable);

/// The attributes of `variable` (the global ones for an empty name). Text
/// attributes read as text, integer ones as int64, float ones as double (a
/// list when they hold more than one value); other types are left out.
NetcdfAttributes netcdf_attributes(const std::string& path, const std::string& variable = "");

}  // namespace weft::io
