// weft/io/hdf5.hpp - arrays from and to HDF5 files (dask.array.from_array on
// an h5py dataset, dask.array.to_hdf5), read and written in parallel.
//
//   namespace wa = weft::array;
//   wa::Array t = weft::io::from_hdf5("in.h5", "/temperature");   // chunks: the dataset's
//   weft::io::to_hdf5("out.h5", "/grp/t", t * 2.0, {.gzip_level = 4, .shuffle = true});
//   weft::io::to_hdf5("out.h5", {{"/x", x}, {"/y", y}}, {.overwrite = true});
//
// Reading: from_hdf5 opens the file when it is called (on the calling rank)
// and takes the dataset's shape, dtype and chunking from it, so a missing
// file, a wrong dataset name or an unsupported type is an error before any
// task exists. Each block is one task that reads its hyperslab (on whichever
// rank runs it, with POSIX I/O; files stay open in a per-process cache).
// Unfiltered data is copied straight from the file, with O_DIRECT where it
// is not in the page cache (config io.direct-reads: auto, always, never).
//
// Writing computes the arrays and writes them in one pass: the file is made
// as `<path>.weft-tmp-<token>` beside `path` and renamed over `path` only when
// every block is written and synced, so a failure (a task error, a full
// disk) leaves no partial file and an existing file untouched. On the local
// schedulers one task writes with HDF5's serial driver; on the distributed
// scheduler every worker writes the blocks it holds into the same file with
// parallel HDF5 (MPI-IO) in one collective step, and no block moves between
// ranks. Datasets are chunked like the arrays (the first block size of each
// axis, as dask.array.to_hdf5), so each block is whole HDF5 chunks.
//
// Partitioned output for node-local scratch: with {.partitioned =
// Partition::node} every node's workers (Partition::worker: every worker
// alone) write the blocks they hold into one part file of their own,
// `<local-directory>/<stem>.<id>.part<G>.h5` (stem: path's file name without
// its extension; id: 8 hex digits of a hash of path's absolute form, so the
// parts of /a/run.h5 and /b/run.h5 differ and a rewrite of one path meets
// its own parts; G: 0, 1, ... in the order of each group's lowest worker
// rank; local-directory: that worker's --local-directory, on the local
// schedulers distributed.worker.local-directory or its default, one part), and `path`
// becomes a small file of HDF5 virtual datasets mapping every block to its
// part by the parts' absolute paths: h5py and h5dump read it on that node as
// one dataset per array. Parts and virtual file are written under temporary
// names and renamed only when every rank succeeded, the virtual file last;
// `overwrite` covers the parts too. stage_out(path, folder) then copies the
// parts into a shared folder and writes there a virtual file naming them
// by their bare file names, which HDF5 looks up beside the virtual file, so
// the folder can be moved whole. On the distributed scheduler it is one
// collective step: every worker copies the parts it sees (one copy per part),
// and a part no worker sees is IoError "missing-part" naming it and the host
// that wrote it. `weft stage-out VIRTUAL_FILE DEST [--overwrite]` runs the
// same, one task per node under srun/mpirun (man weft.1), for a job whose
// main step ran out of time (jobscripts/stage_out.slurm, stage_out.pbs).
//
//   weft::io::to_hdf5(scratch + "/t.h5", "/t", t, {.partitioned = weft::io::Partition::node});
//   weft::io::stage_out(scratch + "/t.h5", "/project/run42");   // /project/run42/t.h5
//
// Types: the 13 dtypes of weft::array, stored as h5py stores them (bool as
// an int8 enum FALSE/TRUE, complex as a compound of "r" and "i"), so h5py
// and NumPy read the files as their own. Errors name the path and problem:
// IoError "cannot-open" (missing or not HDF5), "no-such-dataset",
// "cannot-read", "cannot-write", "target-exists", "missing-part",
// "not-partitioned" (stage_out of a file to_hdf5 did not partition); TypeError
// "unsupported-dtype"; ValueError "bad-dataset-name", "duplicate-dataset".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "weft/array/array.hpp"
#include "weft/array/chunks.hpp"
#include "weft/compute.hpp"

namespace weft::io {

/// An attribute value: a number, a text or a 1-d list of numbers.
using Hdf5Attribute = std::variant<std::int64_t, double, std::string, std::vector<std::int64_t>, std::vector<double>>;
using Hdf5Attributes = std::map<std::string, Hdf5Attribute>;

/// Where to_hdf5 puts the blocks: one shared file at the path (none), or
/// part files in node-local folders, one per node or per worker, with a
/// virtual file at the path (see above).
enum class Partition { none, node, worker };

struct Hdf5WriteOptions {
  /// Replace an existing file at the path (without it: IoError "target-exists").
  bool overwrite = false;
  /// gzip (deflate) level 1-9 for every dataset; 0 writes unfiltered.
  int gzip_level = 0;
  /// The shuffle filter before gzip (bytes of each element grouped).
  bool shuffle = false;
  /// Attributes of every dataset written.
  Hdf5Attributes attributes{};
  /// Part files in node-local folders and a virtual file at the path.
  Partition partitioned = Partition::none;
};

struct StageOutOptions {
  /// Replace files of the same names in the destination (without it:
  /// IoError "target-exists" naming them, before anything is copied).
  bool overwrite = false;
};

/// One dataset of a multi-dataset write: its path in the file ("/x",
/// "/grp/x": groups are made as needed), the array, and attributes of its
/// own (added to Hdf5WriteOptions::attributes).
struct Hdf5Dataset {
  std::string name;
  array::Array array;
  Hdf5Attributes attributes{};
};

/// The array stored in `dataset` of the HDF5 file at `path`. `chunks`
/// defaults to "auto" growing the dataset's own chunking by whole multiples
/// (dask's from_array of an h5py dataset; plain "auto" for a contiguous one).
array::Array from_hdf5(const std::string& path, const std::string& dataset,
                       std::optional<array::ChunkSpec> chunks = std::nullopt);

/// Closes the files that read tasks keep open in this process (at most 32,
/// reopened when needed), e.g. before another program rewrites them in place.
void close_hdf5_files();

/// Writes `x` as `dataset` of a new HDF5 file at `path` (dask.array.to_hdf5).
void to_hdf5(const std::string& path, const std::string& dataset, const array::Array& x,
             const Hdf5WriteOptions& options = {}, const ComputeOptions& compute = {});
/// Writes several arrays into one new file, computed in one pass (da.store).
void to_hdf5(const std::string& path, const std::vector<Hdf5Dataset>& datasets,
             const Hdf5WriteOptions& options = {}, const ComputeOptions& compute = {});

/// Copies the parts of the partitioned virtual file `virtual_file` into the
/// folder `destination` (made if missing; its parent must exist) and writes
/// there `<destination>/<virtual file's name>`, naming the parts by their
/// bare file names, so the folder is self-contained. Every file appears
/// whole or not at all, the virtual file last.
void stage_out(const std::string& virtual_file, const std::string& destination, const StageOutOptions& options = {},
               const ComputeOptions& compute = {});

}  // namespace weft::io
