// src/io/hdf5_write.hpp - the HDF5 writer's plan and its file writing, which
// to_hdf5's shared file (hdf5_write.cpp) and its part files
// (hdf5_partitioned.cpp) share.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <cereal/types/variant.hpp>

#include "hdf5_library.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/collective.hpp"
#include "weft/io/hdf5.hpp"

namespace weft::io::detail {

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

/// Creates dataset `d` in `file` with the creation properties `dcpl` (its
/// groups made as needed) and writes its attributes. Errors are IoError
/// "cannot-write" starting with `context`.
Handle create_dataset(hid_t file, const Hdf5DatasetPlan& d, hid_t dcpl, const std::string& context);

/// Makes the file `temporary` and writes every dataset of `plan` into it:
/// the blocks in `mine`, each rank of ctx the same HDF5 calls (the file is
/// opened on ctx.comm with MPI-IO; the serial driver when it is
/// MPI_COMM_NULL). mine.owner gives each block's writer as a rank of ctx; a
/// negative owner marks a block no rank of ctx writes. Returns normally,
/// having written nothing more, when another rank failed.
void write_file(const CollectiveContext& ctx, const LocalParts<array::NDArray>& mine, const Hdf5WritePlan& plan,
                const std::filesystem::path& temporary);

/// to_hdf5 with Hdf5WriteOptions::partitioned (hdf5_partitioned.cpp): part
/// files in node-local folders and a virtual file at plan.target.
void write_partitioned(const Hdf5WritePlan& plan, const std::vector<Delayed<array::NDArray>>& parts,
                       Partition partition, bool overwrite, const ComputeOptions& compute);

}  // namespace weft::io::detail
